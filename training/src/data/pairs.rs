//! (input, target) pairs: a clean crop degraded for the generator's scale, by the synthetic
//! pipeline or the learned model; the fixed validation pairs; and the baseline a model must
//! beat.

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::cache::CropSet;
use crate::data::degrade::{degrade_restore, degrade_sr, DegradeConfig};
use crate::data::learned::LearnedDegrader;
use crate::image::Img;

/// Degrades one clean crop into (input, target) for the configured generator. For SR with
/// `cfg.learned_prob > 0`, the input is the learned degradation generator's output with that
/// probability (`learned` must then be given); with `learned_prob == 0` nothing extra is
/// drawn from `rng`.
pub fn make_pair<R: Rng>(
    clean: &Img,
    scale: usize,
    cfg: &DegradeConfig,
    learned: Option<&LearnedDegrader>,
    rng: &mut R,
) -> Result<(Img, Img)> {
    if scale > 1 && cfg.learned_prob > 0.0 && rng.gen::<f32>() < cfg.learned_prob {
        let g = learned.context("degrade.learned_prob > 0 needs the learned degradation model")?;
        anyhow::ensure!(g.scale() == scale, "learned degradation is x{}, the generator x{scale}", g.scale());
        return Ok((g.degrade(clean, rng)?, clean.clone()));
    }
    if scale == 1 {
        degrade_restore(clean, cfg, rng)
    } else {
        degrade_sr(clean, scale, cfg, rng)
    }
}

/// Fixed validation pairs: crop `i` degraded with seed `val_seed + i`, always through the
/// synthetic pipeline (`learned_prob` is ignored), so validation numbers compare across runs.
pub fn validation_pairs(
    set: &CropSet,
    scale: usize,
    cfg: &DegradeConfig,
    seed: u64,
    count: usize,
) -> Result<Vec<(Img, Img)>> {
    let cfg = DegradeConfig { learned_prob: 0.0, ..cfg.clone() };
    (0..count.min(set.len()))
        .map(|i| make_pair(&set.get(i), scale, &cfg, None, &mut ChaCha8Rng::seed_from_u64(seed + i as u64)))
        .collect()
}

/// The baseline a model must beat: the degraded input itself (1x) or its bicubic up-scaling.
pub fn baseline(input: &Img, out_size: usize) -> Result<Img> {
    if input.w == out_size {
        Ok(input.clone())
    } else {
        input.bicubic(out_size, out_size)
    }
}
