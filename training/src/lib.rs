//! `faceenhance-train`: data preparation, degradations, GAN training, evaluation and ONNX
//! export for the faceenhance generators.
//!
//! Everything runs on the CPU through burn's `flex` backend (autodiff on top); exported
//! models are checked against ONNX Runtime, the library the pipeline loads.

pub mod aga;
#[cfg(feature = "core")]
pub mod align_error;
pub mod attributes;
pub mod config;
pub mod data;
pub mod degrade;
pub mod edit;
pub mod eval;
pub mod export;
pub mod faceprior;
pub mod facerec;
pub mod image;
pub mod learned;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod ortrt;
pub mod plot;
#[cfg(feature = "core")]
pub mod prepare;
pub mod train;
