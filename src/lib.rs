//! faceenhance core: find faces in video frames, align them to a generator's template,
//! restore them with an ONNX GAN through ONNX Runtime, and blend them back.
//!
//! The data flow is one module per stage:
//! [`frame`] (pixel layouts) -> [`detect`] (where: [`search`]) -> [`track`] -> [`align`] -> [`model`] -> [`blend`]
//! (onto the frame, or onto an [`upscale`]d one),
//! tied together on one thread by [`enhancer`]; [`gallery`] keeps each tracked face's best crop. No
//! GStreamer type appears in this API: the plugin crate
//! maps buffers onto [`frame::Frame`] and metadata onto [`detect::Face`] by the contract in
//! [`facemeta`].

pub mod align;
pub mod blend;
pub mod detect;
pub mod edit;
pub mod enhancer;
pub mod facemeta;
pub mod frame;
pub mod gallery;
pub mod live;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod restore;
pub mod search;
pub mod track;
pub mod upscale;

pub use detect::Face;
pub use frame::{Frame, PixelFormat};
