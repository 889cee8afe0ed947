//! `degrade-export`: export the EMA degradation generator to ONNX.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use faceenhance_train::nets::degrade::export;
use faceenhance_train::train::degrade_gan::{load_ema, DegradeGanConfig};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let Args { config, out } = a;
    let cfg = DegradeGanConfig::load(&config)?;
    let g = load_ema(&cfg, &Device::flex())?;
    export(&g, cfg.clean_size, &out)?;
    tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
    Ok(())
}
