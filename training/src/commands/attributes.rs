//! `attributes`: train (or resume) the face attribute predictor from a TOML config.

use anyhow::Result;
use faceenhance_train::nets::attributes::AttrConfig;
use faceenhance_train::train::attributes;

use crate::commands::RunArgs;

pub fn run(run: RunArgs) -> Result<()> {
    let cfg = AttrConfig::load(&run.config)?;
    let st = attributes::train(&cfg, run.resume, run.max_minutes, run.stop_at)?;
    tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
    Ok(())
}
