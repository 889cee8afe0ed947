//! `edit`: train (or resume) the attribute editor.

use anyhow::Result;
use faceenhance_train::train::edit::{self, EditConfig};

use crate::commands::RunArgs;

pub fn run(run: RunArgs) -> Result<()> {
    let cfg = EditConfig::load(&run.config)?;
    let st = edit::train(&cfg, &run.options())?;
    tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
    Ok(())
}
