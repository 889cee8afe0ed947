//! What every training loop shares for one invocation: its options (resume, time and step
//! limits), the RNG of each step (a pure function of seed and step, so a resumed run draws
//! what an unbroken one would), the learning-rate schedule, and the CSV logs.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Options for one training invocation (a chunk of a possibly longer run).
pub struct RunOptions {
    pub resume: bool,
    /// Stop (after a checkpoint) when this chunk has run this many minutes.
    pub max_minutes: Option<f64>,
    /// Stop at this step instead of `cfg.steps` (the schedule still uses `cfg.steps`).
    pub stop_at: Option<usize>,
    pub progress: bool,
}

/// RNG of step `step` of a run seeded with `seed`.
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Linear warm-up over `warmup` steps to `lr`, then cosine decay to `lr_min` at `steps`.
pub fn warmup_cosine(lr: f64, lr_min: f64, warmup: usize, steps: usize, step: usize) -> f64 {
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let t = (step - warmup) as f64 / (steps.saturating_sub(warmup)).max(1) as f64;
    lr_min + 0.5 * (lr - lr_min) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
}

/// Appends `row` to the CSV file at `path`, writing `header` first when the file is new.
pub fn append_csv(path: &Path, header: &str, row: &str) -> Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if new {
        writeln!(f, "{header}")?;
    }
    writeln!(f, "{row}")?;
    Ok(())
}
