//! `degrade-train`: train (or resume) the learned degradation GAN.

use anyhow::Result;
use faceenhance_train::train::degrade_gan::{train_gan, DegradeGanConfig};

use crate::commands::RunArgs;

pub fn run(run: RunArgs) -> Result<()> {
    let cfg = DegradeGanConfig::load(&run.config)?;
    let st = train_gan(&cfg, &run.options())?;
    tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
    Ok(())
}
