//! `eval`: an exported generator through ONNX Runtime on the validation split.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::eval::generator::{evaluate, EvalArgs};
use faceenhance_train::train::config::TrainConfig;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long)]
    grid: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    grid_rows: usize,
    #[arg(long, default_value_t = 10)]
    drift_runs: usize,
    #[arg(long, default_value_t = 200)]
    drift_count: usize,
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Inputs from this learned degradation model (degrade-export) instead of the
    /// synthetic pipeline.
    #[arg(long)]
    learned_model: Option<PathBuf>,
    /// Targets from this cache instead of the config's.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Real pairs: inputs from the validation split of this cache (prepare --paired-out).
    #[arg(long, conflicts_with = "learned_model")]
    paired_inputs: Option<PathBuf>,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    grid_cell: usize,
    /// Real pictures without ground truth (a folder) ...
    #[arg(long, requires = "real_grid")]
    real: Option<PathBuf>,
    /// ... and the PNG their (input, output) rows go to.
    #[arg(long)]
    real_grid: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        model,
        count,
        grid,
        grid_rows,
        drift_runs,
        drift_count,
        threads,
        learned_model,
        cache,
        paired_inputs,
        json,
        grid_cell,
        real,
        real_grid,
    } = a;
    let cfg = TrainConfig::load(&config)?;
    let r = evaluate(&EvalArgs {
        model,
        cache: cache.unwrap_or_else(|| cfg.cache.clone()),
        scale: cfg.generator.scale(),
        count,
        seed: cfg.val_seed,
        degrade: cfg.degrade.clone(),
        grid,
        grid_rows,
        drift_runs,
        drift_count,
        threads,
        learned: learned_model,
        paired_inputs,
        grid_cell,
        real: real.zip(real_grid),
    })?;
    let s = serde_json::to_string_pretty(&r)?;
    println!("{s}");
    if let Some(p) = json {
        std::fs::write(p, s)?;
    }
    Ok(())
}
