//! ONNX: trained nets leave burn as ONNX files ([`export`]) and are run, checked against
//! burn and evaluated through ONNX Runtime ([`runtime`]), the library the pipeline loads.

pub mod export;
pub mod runtime;
