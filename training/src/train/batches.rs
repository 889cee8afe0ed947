//! Where a generator run's clean crops come from (the whole crops of one cache, or patches
//! of several caches at random scales), and the batch of each step: a pure function of
//! (seed, step), so a resumed run sees the same data.

use anyhow::Result;
use rand::Rng;

use crate::data::augment::{flip, jitter, Jitter};
use crate::data::cache::{CropSet, Split};
use crate::data::learned::LearnedDegrader;
use crate::data::pairs::make_pair;
use crate::image::Img;
use crate::train::config::{Source, TrainConfig};
use crate::train::run::step_rng;

/// Where clean training crops come from: the whole crops of one cache, or (patch mode)
/// `patch` px patches of several caches at random scales.
pub struct TrainData {
    sets: Vec<(CropSet, Source)>,
    /// 0: whole crops.
    patch: usize,
}

impl TrainData {
    /// The caches a config names, checked against its sizes.
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        if cfg.sources.is_empty() {
            let set = CropSet::load(&cfg.cache, Split::Train)?;
            anyhow::ensure!(
                set.size == cfg.output_size,
                "cache crops are {} px, config wants {}",
                set.size,
                cfg.output_size
            );
            let src = Source { cache: cfg.cache.clone(), weight: 1.0, scale: [1.0, 1.0] };
            return Ok(Self { sets: vec![(set, src)], patch: 0 });
        }
        let mut sets = Vec::new();
        for src in &cfg.sources {
            let set = CropSet::load(&src.cache, Split::Train)?;
            anyhow::ensure!(!set.is_empty(), "{}: no training crops", src.cache.display());
            anyhow::ensure!(
                set.size >= cfg.output_size,
                "{}: {} px crops cannot give {} px patches",
                src.cache.display(),
                set.size,
                cfg.output_size
            );
            sets.push((set, src.clone()));
        }
        Ok(Self { sets, patch: cfg.output_size })
    }

    pub fn from_set(set: CropSet) -> Self {
        Self { sets: vec![(set, Source { cache: "memory".into(), weight: 1.0, scale: [1.0, 1.0] })], patch: 0 }
    }

    pub fn len(&self) -> usize {
        self.sets.iter().map(|(s, _)| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One clean crop or patch, drawn from `rng` (whole-crop mode draws exactly the crop
    /// index, as before patch mode existed).
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Result<Img> {
        let k = if self.sets.len() == 1 {
            0
        } else {
            let total: f64 = self.sets.iter().map(|(_, s)| s.weight).sum();
            let mut u = rng.gen::<f64>() * total;
            self.sets
                .iter()
                .position(|(_, s)| {
                    u -= s.weight;
                    u < 0.0
                })
                .unwrap_or(self.sets.len() - 1)
        };
        let (set, src) = &self.sets[k];
        let img = set.get(rng.gen_range(0..set.len()));
        if self.patch == 0 {
            return Ok(img);
        }
        let [lo, hi] = src.scale;
        let s = if hi > lo { (lo.ln() + rng.gen::<f64>() * (hi.ln() - lo.ln())).exp() } else { lo };
        let side = ((set.size as f64 * s).round() as usize).clamp(self.patch, set.size);
        let img = if side < set.size { img.resize(side, side, opencv::imgproc::INTER_AREA)?.clamp() } else { img };
        let (x0, y0) = (rng.gen_range(0..=side - self.patch), rng.gen_range(0..=side - self.patch));
        Ok(img.crop(x0, y0, self.patch, self.patch))
    }
}

/// The batch of `step`: a pure function of (seed, step), so a resumed run sees the same data.
pub fn batch_for_step(
    data: &TrainData,
    cfg: &TrainConfig,
    step: usize,
    learned: Option<&LearnedDegrader>,
) -> Result<(Vec<Img>, Vec<Img>)> {
    let mut rng = step_rng(cfg.seed, step);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..cfg.batch_size {
        let mut clean = data.sample(&mut rng)?;
        if rng.gen_bool(0.5) {
            clean = flip(&clean);
        }
        if cfg.jitter != Jitter::default() {
            clean = jitter(&clean, &cfg.jitter, &mut rng)?;
        }
        let (x, y) = make_pair(&clean, cfg.generator.scale(), &cfg.degrade, learned, &mut rng)?;
        xs.push(x);
        ys.push(y);
    }
    Ok((xs, ys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.4)
    }

    #[test]
    fn patches_come_from_every_source_at_their_scales() {
        let dir = std::env::temp_dir().join(format!("fe-train-patch-{}", std::process::id()));
        // two caches: 64 px crops of a constant 0.2 image and 96 px crops of a constant 0.8
        for (name, size, v) in [("a", 64usize, 0.2f32), ("b", 96, 0.8)] {
            let d = dir.join(name);
            crate::data::cache::Manifest {
                source: "test".into(),
                size,
                template: "ffhq5".into(),
                detector: "none".into(),
                train: crate::data::cache::SplitManifest { files: vec!["0.png".into()], ..Default::default() },
                val: crate::data::cache::SplitManifest::default(),
                split_rule: "test".into(),
            }
            .save(&d)
            .unwrap();
            std::fs::write(d.join("train.u8"), Img::filled(size, size, [v; 3]).to_rgb8()).unwrap();
            std::fs::write(d.join("val.u8"), []).unwrap();
        }
        let src = |n: &str, weight: f64, scale: [f64; 2]| Source { cache: dir.join(n), weight, scale };
        let cfg = TrainConfig {
            output_size: 48,
            sources: vec![src("a", 1.0, [0.5, 1.0]), src("b", 3.0, [0.25, 1.0])],
            ..Default::default()
        };
        let data = TrainData::load(&cfg).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut from_b = 0;
        for _ in 0..200 {
            let p = data.sample(&mut rng).unwrap();
            assert_eq!((p.w, p.h), (48, 48));
            from_b += usize::from(p.data[0] > 0.5);
        }
        // weights 1 : 3
        assert!((120..180).contains(&from_b), "{from_b} of 200 from the second source");
        // a patch larger than a cache's crops is refused with the reason
        let big = TrainConfig { output_size: 80, ..cfg };
        let err = TrainData::load(&big).err().unwrap().to_string();
        assert!(err.contains("cannot give 80 px patches"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn batches_are_a_function_of_seed_and_step() {
        let dir = std::env::temp_dir().join(format!("fe-train-batch-{}", std::process::id()));
        let imgs: Vec<Img> = (0..5).map(|k| smooth(64, k)).collect();
        let manifest = crate::data::cache::Manifest {
            source: "test".into(),
            size: 64,
            template: "ffhq5".into(),
            detector: "none".into(),
            train: crate::data::cache::SplitManifest {
                files: (0..5).map(|i| format!("{i}.png")).collect(),
                no_face: vec![],
                too_soft: vec![],
            },
            val: crate::data::cache::SplitManifest::default(),
            split_rule: "test".into(),
        };
        manifest.save(&dir).unwrap();
        let bytes: Vec<u8> = imgs.iter().flat_map(|i| i.to_rgb8()).collect();
        std::fs::write(dir.join("train.u8"), bytes).unwrap();
        std::fs::write(dir.join("val.u8"), []).unwrap();
        let set = TrainData::from_set(CropSet::load(&dir, Split::Train).unwrap());
        assert_eq!(set.len(), 5);
        let cfg = TrainConfig { batch_size: 3, ..Default::default() };
        let a = batch_for_step(&set, &cfg, 7, None).unwrap();
        let b = batch_for_step(&set, &cfg, 7, None).unwrap();
        let c = batch_for_step(&set, &cfg, 8, None).unwrap();
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, c.0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
