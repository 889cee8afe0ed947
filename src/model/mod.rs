//! Generators through ONNX Runtime: one process-wide environment ([`runtime`]), execution
//! providers tried in order with reasons ([`provider`]), model profiles that say how to
//! feed each generator ([`profile`]), and batched inference on aligned crops ([`restorer`]).

pub mod attributes;
pub mod identity;
pub mod onnx_dims;
pub mod profile;
pub mod provider;
pub mod recognise;
pub mod restorer;
pub mod runtime;
pub mod shared;

pub use profile::Profile;
pub use provider::{Provider, ProviderOptions, ProviderReport};
pub use restorer::Restorer;
