//! Measures of what a viewer sees (temporal change: flicker), for tests and benches.

use anyhow::{ensure, Result};
use opencv::core::{self, Mat, Rect};
use opencv::prelude::*;

/// Mean absolute change between consecutive frames inside `region` (x, y, w, h), in grey
/// levels per channel. Flicker of an enhancer on a clip = this on its output divided by
/// this on its input: 1.0 means it adds no temporal change, above 1 it flickers.
pub fn temporal_change(frames: &[Mat], region: [i32; 4]) -> Result<f64> {
    ensure!(frames.len() >= 2, "need at least two frames");
    let rect = Rect::new(region[0], region[1], region[2], region[3]);
    let mut total = 0.0;
    for pair in frames.windows(2) {
        let (a, b) = (Mat::roi(&pair[0], rect)?, Mat::roi(&pair[1], rect)?);
        let mut diff = Mat::default();
        core::absdiff(&a, &b, &mut diff)?;
        let mean = core::mean_def(&diff)?;
        let ch = pair[0].channels().clamp(1, 4) as usize;
        total += (0..ch).map(|c| mean[c]).sum::<f64>() / ch as f64;
    }
    Ok(total / (frames.len() - 1) as f64)
}
