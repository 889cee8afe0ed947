//! `train`: train (or resume) a generator from a TOML config.

use anyhow::Result;
use faceenhance_train::train::config::TrainConfig;
use faceenhance_train::train::generator;

use crate::commands::RunArgs;

pub fn run(run: RunArgs) -> Result<()> {
    let cfg = TrainConfig::load(&run.config)?;
    let st = generator::train(&cfg, &run.options())?;
    tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, best_val_psnr = st.best_val_psnr, "stopped");
    Ok(())
}
