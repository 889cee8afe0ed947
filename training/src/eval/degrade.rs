//! The exported degradation model against real low-resolution crops (`degrade-eval`):
//! statistics of the real crops, of plain area down-scales, of the synthetic pipeline and of
//! the learned model (through ONNX Runtime), with their distances to the real distribution.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::cache::{CropSet, Split};
use crate::data::degrade::{area, DegradeConfig};
use crate::data::learned::LearnedDegrader;
use crate::data::pairs::make_pair;
use crate::image::{from_tensor, grid, to_tensor, Img};
use crate::losses::frequency::low_pass;
use crate::metrics::degradation::{mean_l1, set_stats, SetStats};
use crate::train::degrade_gan::{load_real, DegradeGanConfig};

pub struct GanEvalArgs {
    pub model: PathBuf,
    pub count: usize,
    pub seed: u64,
    /// The synthetic pipeline to compare with (an SR run's `degrade` section).
    pub synthetic: Option<DegradeConfig>,
    pub grid: Option<PathBuf>,
    pub grid_rows: usize,
    /// A PNG of every real crop (train then validation), 16 a row.
    pub real_grid: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct GanEvalReport {
    pub model: String,
    pub clean_val_crops: usize,
    pub real_train: SetStats,
    pub real_val: SetStats,
    pub area: SetStats,
    pub synthetic: Option<SetStats>,
    pub learned: SetStats,
    /// Mean |low-pass(G(x)) - low-pass(area(x))| (RGB, [0, 1]): the colours and identity kept.
    pub learned_low_pass_l1_to_area: f32,
    /// Mean |G(x) - area(x)| (RGB, [0, 1]).
    pub learned_l1_to_area: f32,
    pub ms_per_face_batch1: f64,
}

/// Statistics of real crops (train and held-out frames), plain area down-scales, the
/// synthetic pipeline and the exported generator (through ONNX Runtime) on clean validation
/// crops; all compared with the real crops of *all* splits (the real distribution).
pub fn evaluate_gan(cfg: &DegradeGanConfig, a: &GanEvalArgs) -> Result<GanEvalReport> {
    let s = cfg.generator.scale;
    let clean_val = CropSet::load(&cfg.clean_cache, Split::Val)?;
    let clean: Vec<Img> = (0..a.count.min(clean_val.len())).map(|i| clean_val.get(i)).collect();
    let real_train = load_real(cfg, Split::Train)?;
    let real_val = load_real(cfg, Split::Val)?;
    let real_all: Vec<Img> = real_train.iter().chain(&real_val).cloned().collect();
    let areas: Vec<Img> = clean.iter().map(|c| area(c, s)).collect::<Result<_>>()?;
    let g = LearnedDegrader::load(&a.model)?;
    anyhow::ensure!(g.scale() == s, "model is x{}, config x{s}", g.scale());
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let mut learned = Vec::with_capacity(clean.len());
    for chunk in clean.chunks(32) {
        learned.extend(g.degrade_batch(chunk, &mut rng)?);
    }
    let t0 = Instant::now();
    let timed = clean.len().min(100);
    for c in &clean[..timed] {
        g.degrade(c, &mut rng)?;
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0 / timed.max(1) as f64;
    let synthetic: Option<Vec<Img>> = match &a.synthetic {
        Some(dc) => {
            let dc = DegradeConfig { learned_prob: 0.0, ..dc.clone() };
            Some(
                clean
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        make_pair(c, s, &dc, None, &mut ChaCha8Rng::seed_from_u64(a.seed + i as u64)).map(|p| p.0)
                    })
                    .collect::<Result<_>>()?,
            )
        }
        None => None,
    };
    let lp = |v: &[Img]| from_tensor(low_pass(to_tensor(v, &Device::flex()), cfg.split_sigma));
    let report = GanEvalReport {
        model: a.model.display().to_string(),
        clean_val_crops: clean.len(),
        real_train: set_stats(&real_train, &real_all),
        real_val: set_stats(&real_val, &real_all),
        area: set_stats(&areas, &real_all),
        synthetic: synthetic.as_ref().map(|v| set_stats(v, &real_all)),
        learned: set_stats(&learned, &real_all),
        learned_low_pass_l1_to_area: mean_l1(&lp(&learned), &lp(&areas)),
        learned_l1_to_area: mean_l1(&learned, &areas),
        ms_per_face_batch1: ms,
    };
    if let Some(path) = &a.real_grid {
        let rows: Vec<Vec<Img>> = real_all.chunks(16).map(<[Img]>::to_vec).collect();
        grid(&rows, cfg.lr_size() * 2, 2).save_png(path)?;
    }
    if let Some(path) = &a.grid {
        let mut rows = Vec::new();
        let mut rng2 = ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed);
        for r in 0..a.grid_rows.min(clean.len()) {
            let mut row =
                vec![clean[r].clone(), areas[r].clone(), learned[r].clone(), g.degrade(&clean[r], &mut rng2)?];
            if let Some(sy) = &synthetic {
                row.push(sy[r].clone());
            }
            row.push(real_all[(r * 37) % real_all.len()].clone());
            rows.push(row);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        grid(&rows, cfg.clean_size, 4).save_png(path)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.3)
    }

    /// The shipped degradation model (`training/models/degrade-x4-16.onnx`): x4, 16 px
    /// outputs in [0, 1], seeded, near the area down-scale but not equal to it.
    #[test]
    fn shipped_degradation_model_runs() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/degrade-x4-16.onnx");
        if !p.is_file() {
            return;
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 2 * 1024 * 1024, "over 2 MB");
        let g = LearnedDegrader::load(&p).unwrap();
        assert_eq!(g.scale(), 4);
        let clean: Vec<Img> = (0..4).map(|k| smooth(64, k)).collect();
        let a = g.degrade_batch(&clean, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let b = g.degrade_batch(&clean, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|o| o.w == 16 && o.h == 16 && o.data.iter().all(|v| (0.0..=1.0).contains(v))));
        let areas: Vec<Img> = clean.iter().map(|c| area(c, 4).unwrap()).collect();
        let d = mean_l1(&a, &areas);
        assert!(d > 1e-3 && d < 0.1, "mean |G(x) - area(x)| = {d}");
    }
}
