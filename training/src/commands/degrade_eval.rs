//! `degrade-eval`: statistics of real crops, down-scales, the synthetic pipeline and the
//! exported degradation generator.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::eval::degrade::{evaluate_gan, GanEvalArgs};
use faceenhance_train::train::config::TrainConfig;
use faceenhance_train::train::degrade_gan::DegradeGanConfig;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// An SR training config whose `degrade` section is the synthetic pipeline to compare.
    #[arg(long)]
    sr_config: Option<PathBuf>,
    #[arg(long)]
    grid: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    grid_rows: usize,
    /// Write every real crop into this PNG too.
    #[arg(long)]
    real_grid: Option<PathBuf>,
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args { config, model, count, sr_config, grid, grid_rows, real_grid, json } = a;
    let cfg = DegradeGanConfig::load(&config)?;
    let synthetic = match sr_config {
        Some(p) => Some(TrainConfig::load(&p)?.degrade),
        None => None,
    };
    let r =
        evaluate_gan(&cfg, &GanEvalArgs { model, count, seed: cfg.val_seed, synthetic, grid, grid_rows, real_grid })?;
    let s = serde_json::to_string_pretty(&r)?;
    println!("{s}");
    if let Some(p) = json {
        std::fs::write(p, s)?;
    }
    Ok(())
}
