//! `face-id-export`: dlib's face-recognition net as ONNX for the core's identity measure.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use faceenhance_train::nets::facerec::{default_dir, export, FaceRecNet};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    out: PathBuf,
    /// Folder of face_recognition_model.bin and its manifest (default: the set-up's cache).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args { out, dir } = a;
    let net = FaceRecNet::load(&dir.unwrap_or_else(default_dir), &Device::flex())?;
    export(&net, &out)?;
    tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
    Ok(())
}
