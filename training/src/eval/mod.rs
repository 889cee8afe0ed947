//! Trained models measured: exported generators through ONNX Runtime on the validation
//! split ([`generator`]), the exported degradation model against real low-resolution crops
//! ([`degrade`]), and the attribute predictor's and the editor's reports, each exported and
//! checked against burn first ([`attributes`], [`edit`]).

pub mod attributes;
pub mod degrade;
pub mod edit;
pub mod generator;
