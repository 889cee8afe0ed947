//! `export`: the EMA (or raw) generator of a run's checkpoint to ONNX, optionally
//! interpolated with another checkpoint's weights.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use faceenhance_train::nets::generator::export_generator;
use faceenhance_train::train::config::TrainConfig;
use faceenhance_train::train::ema::interpolate;
use faceenhance_train::train::generator::load_generator;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Output size of the exported graph (default: the config's `output_size`); a fully
    /// convolutional generator exports one rung per size from the same weights.
    #[arg(long)]
    size: Option<usize>,
    /// Network interpolation (ESRGAN): export `(1 - alpha) * base + alpha * this run`,
    /// where `base` is another checkpoint directory of the same generator (the fidelity
    /// model a GAN phase started from).
    #[arg(long, requires = "alpha")]
    base: Option<PathBuf>,
    /// Share of this run's weights when interpolating with `--base` (0..=1).
    #[arg(long)]
    alpha: Option<f64>,
    /// Export the raw generator instead of its EMA.
    #[arg(long)]
    raw: bool,
}

pub fn run(a: Args) -> Result<()> {
    let Args { config, out, size, base, alpha, raw } = a;
    let cfg = TrainConfig::load(&config)?;
    let device = Device::flex();
    let mut g = load_generator(&cfg, &device, raw)?;
    if let (Some(base), Some(alpha)) = (base, alpha) {
        anyhow::ensure!((0.0..=1.0).contains(&alpha), "--alpha {alpha} is not in 0..=1");
        let p = base.join("ema.bpk");
        anyhow::ensure!(p.is_file(), "--base: no EMA generator at {}", p.display());
        let b = cfg.generator.init(&device).load_file(p);
        g = interpolate(b, &g, alpha);
        tracing::info!(alpha, "interpolated with {}", base.display());
    }
    let size = size.unwrap_or(cfg.output_size);
    anyhow::ensure!(size % cfg.generator.scale() == 0, "size {size} is not a multiple of the scale");
    export_generator(&g, size / cfg.generator.scale(), &out)?;
    tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
    Ok(())
}
