//! `faceenhance attributes`: the attribute predictor on the faces of still images.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use faceenhance::detect::{Detector, DetectorConfig};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::attributes::AttributePredictor;
use faceenhance::model::ProviderOptions;

#[derive(Args)]
pub struct AttributesArgs {
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Attributes model (ONNX with its profile beside it); default: the shipped predictor.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// YuNet or CenterFace ONNX file for detection (default: the detector's default).
    #[arg(long)]
    pub detector_model: Option<PathBuf>,
    /// One JSON object per face with every attribute's probability.
    #[arg(long)]
    pub json: bool,
}

/// The shipped predictor.
pub fn default_model() -> PathBuf {
    faceenhance::paths::models_dir().join("attributes").join("attributes-64.onnx")
}

pub fn run(args: &AttributesArgs) -> Result<()> {
    let model = args.model.clone().unwrap_or_else(default_model);
    let mut predictor = AttributePredictor::load(&model, &ProviderOptions::default())?;
    let config = DetectorConfig { model: args.detector_model.clone(), ..Default::default() };
    let mut detector = Detector::new(config)?;
    for input in &args.inputs {
        let mut bgr = crate::image::read(input)?;
        let faces = detector.detect_frame(&frame_from_mat(&mut bgr)?)?;
        if faces.is_empty() && !args.json {
            println!("{}: no face", input.display());
        }
        for (i, face) in faces.iter().enumerate() {
            // A face that cannot be aligned (landmarks collapsed) is skipped, not the picture.
            match predictor.predict(&bgr, std::slice::from_ref(face)) {
                Ok(p) => print_face(input, i, face, &p[0], predictor.names(), args.json),
                Err(e) => tracing::warn!("{}: face {i} skipped: {e:#}", input.display()),
            }
        }
    }
    Ok(())
}

fn print_face(input: &Path, i: usize, face: &faceenhance::Face, p: &[f32], names: &[String], json: bool) {
    let [x, y, w, h] = face.bbox.map(|v| v.round() as i32);
    if json {
        let attrs: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(p)
            .map(|(n, &v)| (n.clone(), serde_json::json!((v as f64 * 1000.0).round() / 1000.0)))
            .collect();
        let line = serde_json::json!({ "input": input, "face": i, "box": [x, y, w, h], "attributes": attrs });
        println!("{line}");
        return;
    }
    let mut present: Vec<(&String, f32)> = names.iter().zip(p.iter().copied()).filter(|(_, v)| *v > 0.5).collect();
    present.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = present.iter().map(|(n, v)| format!("{n} {v:.2}")).collect();
    println!("{}: face {i} at {x},{y} {w}x{h}: {}", input.display(), list.join(", "));
}
