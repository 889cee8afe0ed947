//! One file per subcommand: its arguments and what it runs; `main.rs` parses the command
//! line and dispatches. The trainers share [`RunArgs`].

use std::path::PathBuf;

use clap::Args;
use faceenhance_train::train::run::RunOptions;

#[cfg(feature = "core")]
pub mod align_error;
pub mod attributes;
pub mod attributes_report;
pub mod degrade_eval;
pub mod degrade_export;
pub mod degrade_train;
pub mod edit;
pub mod edit_report;
pub mod eval;
pub mod export;
pub mod face_id_export;
#[cfg(feature = "core")]
pub mod prepare;
pub mod train;

/// One training invocation (a chunk of a possibly longer run); both trainers take these.
#[derive(Args)]
pub struct RunArgs {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many minutes (with a checkpoint); resume later with --resume.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// Stop at this step (the LR schedule still runs to the config's `steps`).
    #[arg(long)]
    pub stop_at: Option<usize>,
    #[arg(long)]
    pub no_progress: bool,
}

impl RunArgs {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            resume: self.resume,
            max_minutes: self.max_minutes,
            stop_at: self.stop_at,
            progress: !self.no_progress,
        }
    }
}
