//! `faceenhance-train`: data preparation, degradations, GAN training, evaluation and ONNX
//! export for the faceenhance generators.
//!
//! Everything runs on the CPU through burn's `flex` backend (autodiff on top); exported
//! models are checked against ONNX Runtime, the library the pipeline loads.
//!
//! The modules follow the data, and each uses only those listed before it:
//! - [`image`]: the image type everything passes around;
//! - [`onnx`]: models out of burn (export) and into ONNX Runtime;
//! - [`data`]: crop caches and labels, augmentation and degradations: the (input, target)
//!   pairs;
//! - [`nets`]: the networks: generators, discriminators, the frozen attribute predictor and
//!   face-recognition net;
//! - [`losses`]: what training minimises;
//! - [`metrics`]: what validation and evaluation measure;
//! - [`train`]: the training loops with their configs, checkpoints, EMA and logs;
//! - [`eval`]: trained models measured, exported and checked against burn.
//!
//! The binary's `commands` (one file per subcommand) sit on top.

pub mod data;
pub mod eval;
pub mod image;
pub mod losses;
pub mod metrics;
pub mod nets;
pub mod onnx;
pub mod train;
