//! The training loop: seeded, resumable from checkpoints, with progress bar, tracing logs,
//! CSV logs of losses and validation metrics, and a loss-curve PNG.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{AdvKind, Jitter, Source, TrainConfig};
use crate::data::{CropSet, Split};
use crate::degrade::{degrade_restore, degrade_sr, DegradeConfig};
use crate::image::{from_tensor, to_tensor, Img};
use crate::learned::LearnedDegrader;
use crate::loss;
use crate::metrics::Scores;
use crate::model::{Generator, GeneratorConfig, PatchDiscriminator, RestoreConfig};

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

pub fn flip(img: &Img) -> Img {
    let mut out = img.clone();
    for y in 0..img.h {
        for x in 0..img.w {
            for c in 0..3 {
                out.data[(y * img.w + x) * 3 + c] = img.at(img.w - 1 - x, y, c);
            }
        }
    }
    out
}

/// RNG of step `step` of a run seeded with `seed`.
pub fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

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

/// `img` moved by a random similarity (see `Jitter`), edges replicated as `crop_face` does.
pub fn jitter<R: Rng>(img: &Img, j: &Jitter, rng: &mut R) -> Result<Img> {
    use opencv::core::{Mat, Point2f, Scalar, Size, BORDER_REPLICATE};
    use opencv::prelude::MatTrait;
    let n = |rng: &mut R, sd: f64| rng.sample::<f64, _>(rand_distr::StandardNormal) * sd;
    let (dx, dy) = (n(rng, j.shift) * img.w as f64, n(rng, j.shift) * img.h as f64);
    let (scale, angle) = (n(rng, j.scale).exp(), n(rng, j.rotate));
    let centre = Point2f::new(img.w as f32 / 2.0, img.h as f32 / 2.0);
    let mut m = opencv::imgproc::get_rotation_matrix_2d(centre, angle, scale)?;
    *m.at_2d_mut::<f64>(0, 2)? += dx;
    *m.at_2d_mut::<f64>(1, 2)? += dy;
    let mut out = Mat::default();
    opencv::imgproc::warp_affine(
        &img.to_mat_f32()?,
        &mut out,
        &m,
        Size::new(img.w as i32, img.h as i32),
        opencv::imgproc::INTER_LINEAR,
        BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Img::from_mat_f32(&out)
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

/// Runs `gen` (plain device) over validation pairs; returns (model scores, baseline scores,
/// the clamped outputs).
pub fn validate(
    gen: &Generator,
    pairs: &[(Img, Img)],
    out_size: usize,
    device: &Device,
) -> Result<(Scores, Scores, Vec<Img>)> {
    let (mut ms, mut bs) = (Scores::default(), Scores::default());
    let mut all = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(32) {
        let xs: Vec<Img> = chunk.iter().map(|p| p.0.clone()).collect();
        let outs = from_tensor(gen.forward(to_tensor(&xs, device)));
        for ((x, y), o) in chunk.iter().zip(outs) {
            let o = o.clamp();
            ms.add_fast(&o, y);
            bs.add_fast(&baseline(x, out_size)?, y);
            all.push(o);
        }
    }
    Ok((ms.mean(), bs.mean(), all))
}

/// Collects every float parameter (flattened) in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

/// `ema <- decay * ema + (1 - decay) * source`, parameter by parameter in visiting order.
struct EmaUpdate {
    src: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for EmaUpdate {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let src = self.src.next().expect("same module structure");
        let decay = self.decay;
        param.map(|t| {
            let dims = t.dims();
            t.mul_scalar(decay) + src.reshape(dims).mul_scalar(1.0 - decay)
        })
    }
}

pub fn ema_update<M: Module>(ema: M, current: &M, decay: f64) -> M {
    let mut c = Collect(Vec::new());
    current.visit(&mut c);
    ema.map(&mut EmaUpdate { src: c.0.into_iter(), decay })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub elapsed_s: f64,
    pub best_val_psnr: f64,
}

pub(crate) struct Ckpt {
    pub dir: PathBuf,
}

/// Generator, discriminator, EMA generator and their two optimizers: what a checkpoint holds
/// besides the run state.
pub(crate) type Nets<G, D> = (G, D, G, ModuleOptimizer, ModuleOptimizer);

impl Ckpt {
    pub fn p(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
    pub fn exists(&self) -> bool {
        self.p("state.json").is_file()
    }

    /// With `resume`, the nets and run state from the checkpoint; without, the fresh nets
    /// and a default state, unless a checkpoint is there (never train over one silently).
    pub fn resume<G: Module, D: Module, S: DeserializeOwned + Default>(
        &self,
        resume: bool,
        fresh: Nets<G, D>,
    ) -> Result<(Nets<G, D>, S)> {
        if !self.exists() {
            return Ok((fresh, S::default()));
        }
        if !resume {
            anyhow::bail!("{} has a checkpoint: pass --resume or remove it", self.dir.display());
        }
        let (g, d, ema, opt_g, opt_d) = fresh;
        let state = serde_json::from_str(&std::fs::read_to_string(self.p("state.json"))?)?;
        // A checkpoint kept small for git may leave out the optimizer states: Adam then
        // starts afresh (its moments rebuild within a few hundred steps).
        let opt = |opt: ModuleOptimizer, f: &str| -> Result<ModuleOptimizer> {
            if !self.p(f).is_file() {
                tracing::warn!("{} has no {f}: the optimizer starts afresh", self.dir.display());
                return Ok(opt);
            }
            opt.load(self.p(f)).map_err(|e| anyhow::anyhow!("{f}: {e:?}"))
        };
        let nets = (
            g.load_file(self.p("g.bpk")),
            d.load_file(self.p("d.bpk")),
            ema.load_file(self.p("ema.bpk")),
            opt(opt_g, "opt_g.bpk")?,
            opt(opt_d, "opt_d.bpk")?,
        );
        Ok((nets, state))
    }

    /// Writes the nets and the run state.
    pub fn save<G: Module, D: Module, S: Serialize>(
        &self,
        (g, d, ema): (&G, &D, &G),
        opt_g: &ModuleOptimizer,
        opt_d: &ModuleOptimizer,
        state: &S,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let e = |e: burn::store::RecordError| anyhow::anyhow!("{e:?}");
        g.clone().save_file(self.p("g.bpk")).map_err(e)?;
        d.clone().save_file(self.p("d.bpk")).map_err(e)?;
        ema.clone().save_file(self.p("ema.bpk")).map_err(e)?;
        opt_g.save(self.p("opt_g.bpk")).map_err(e)?;
        opt_d.save(self.p("opt_d.bpk")).map_err(e)?;
        std::fs::write(self.p("state.json"), serde_json::to_string_pretty(state)?)?;
        Ok(())
    }
}

pub fn append_csv(path: &Path, header: &str, row: &str) -> Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if new {
        writeln!(f, "{header}")?;
    }
    writeln!(f, "{row}")?;
    Ok(())
}

/// Options for one training invocation (a chunk of a possibly longer run).
pub struct RunOptions {
    pub resume: bool,
    /// Stop (after a checkpoint) when this chunk has run this many minutes.
    pub max_minutes: Option<f64>,
    /// Stop at this step instead of `cfg.steps` (the schedule still uses `cfg.steps`).
    pub stop_at: Option<usize>,
    pub progress: bool,
}

pub fn train(cfg: &TrainConfig, opts: &RunOptions) -> Result<TrainState> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let train_set = TrainData::load(cfg)?;
    let val_set = CropSet::load(&cfg.cache, Split::Val)?;
    let scale = cfg.generator.scale();
    let out = &cfg.out_dir;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("config.toml"), toml::to_string(cfg)?)?;
    let ck = Ckpt { dir: out.join("checkpoint") };
    let learned = match (cfg.degrade.learned_prob > 0.0, &cfg.degrade.learned_model) {
        (false, _) => None,
        (true, Some(p)) => Some(LearnedDegrader::load(p)?),
        (true, None) => anyhow::bail!("degrade.learned_prob > 0 needs degrade.learned_model"),
    };

    let adam = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.99).with_epsilon(1e-8);
    let mut g = cfg.generator.init_fresh(&ad)?;
    if let (Some(from), false) = (&cfg.init_from, ck.exists()) {
        let p = from.join("ema.bpk");
        anyhow::ensure!(p.is_file(), "init_from: no EMA generator at {}", p.display());
        g = match (&cfg.init_stem, &cfg.generator) {
            (None, _) => g.load_file(p),
            (Some(s), GeneratorConfig::Restore(c)) => {
                let from = GeneratorConfig::Restore(RestoreConfig { stem: *s, ..c.clone() });
                match from.init(&ad).load_file(p) {
                    Generator::Restore(m) => Generator::Restore(m.restem(c.stem)),
                    _ => unreachable!("a restore config builds a RestoreNet"),
                }
            }
            (Some(_), _) => anyhow::bail!("init_stem applies to restoration generators only"),
        };
        tracing::info!("generator initialised from {}", from.display());
    }
    let ema = g.valid();
    let fresh = (
        g,
        PatchDiscriminator::with_downs(cfg.d_channels, 2, if cfg.d_detail { 6 } else { 3 }, &ad),
        ema,
        adam.init(),
        AdamConfig::new().with_beta_1(0.5).with_beta_2(0.99).with_epsilon(1e-8).init(),
    );
    let ((mut g, mut d, mut ema, mut opt_g, mut opt_d), mut state): (_, TrainState) = ck.resume(opts.resume, fresh)?;
    if state.step > 0 {
        tracing::info!(step = state.step, "resumed from {}", ck.dir.display());
    }
    tracing::info!(
        params_g = g.num_params(),
        params_d = d.num_params(),
        train = train_set.len(),
        val = val_set.len(),
        "training {} for {} steps (batch {})",
        cfg.name,
        cfg.steps,
        cfg.batch_size
    );

    let perceptual = match (&cfg.perceptual_net, cfg.perceptual_weight > 0.0) {
        (Some(dir), true) => Some(crate::attributes::Features::load(dir, &ad)?),
        (None, true) => anyhow::bail!("perceptual_weight > 0 needs perceptual_net"),
        _ => None,
    };
    let mut face = match cfg.uses_face_prior() {
        true => Some(crate::faceprior::FacePhase::new(cfg, &ad)?.resume(&ck.dir)?),
        false => None,
    };
    // identity on the validation pairs, with the same frozen net on the plain device
    let identity = match cfg.uses_face_prior() {
        true => {
            Some(crate::facerec::Identity::load(&cfg.face_net.clone().unwrap_or_else(crate::facerec::default_dir))?)
        }
        false => None,
    };
    let val_pairs = validation_pairs(&val_set, scale, &cfg.degrade, cfg.val_seed, cfg.val_count)?;
    let val_size = val_set.size;
    let stop_at = opts.stop_at.unwrap_or(cfg.steps).min(cfg.steps);
    let steps_per_epoch = (train_set.len() as f64 / cfg.batch_size as f64).max(1.0);
    let chunk_start = Instant::now();
    let base_elapsed = state.elapsed_s;
    let pb = if opts.progress { ProgressBar::new(stop_at as u64) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed_precise} eta {eta}]").unwrap());
    pb.set_position(state.step as u64);
    let mut acc = [0.0f64; 4];
    let mut acc_n = 0usize;
    let mut last_log = Instant::now();

    while state.step < stop_at {
        let step = state.step;
        let t0 = Instant::now();
        let (xs, ys) = batch_for_step(&train_set, cfg, step, learned.as_ref())?;
        let x = to_tensor(&xs, &ad);
        let y = to_tensor(&ys, &ad);
        let gan = cfg.adv != AdvKind::None && step >= cfg.gan_start;

        // generator step
        let fake = g.forward(x);
        let pix = loss::charbonnier(fake.clone(), y.clone(), cfg.charbonnier_eps);
        let mut total = pix.clone().mul_scalar(cfg.pixel_weight);
        if cfg.hf_weight > 0.0 {
            total = total + loss::laplacian_l1(fake.clone(), y.clone()).mul_scalar(cfg.hf_weight);
        }
        if cfg.hf_energy_weight > 0.0 {
            total = total + loss::hf_energy_gap(fake.clone(), y.clone()).mul_scalar(cfg.hf_energy_weight);
        }
        if let Some(f) = &perceptual {
            let p = f.loss(fake.clone(), y.clone());
            if (state.step + 1) % cfg.log_every == 0 {
                tracing::debug!(step = state.step + 1, perceptual = p.clone().into_scalar::<f32>(), "feature loss");
            }
            total = total + p.mul_scalar(cfg.perceptual_weight);
        }
        let face_step = match face.as_mut() {
            Some(f) => {
                let (t, st) = f.g_loss(fake.clone(), y.clone(), step);
                if let Some(t) = t {
                    total = total + t;
                }
                Some(st)
            }
            None => None,
        };
        let (mut adv_v, mut fm_v) = (0.0, 0.0);
        if gan {
            let (fl, ff) = d.forward(d_input(fake.clone(), cfg.d_detail));
            let (rl, rf) = d.forward(d_input(y.clone(), cfg.d_detail));
            let rl = rl.detach();
            let rf: Vec<Tensor<4>> = rf.into_iter().map(|t| t.detach()).collect();
            let adv = match cfg.adv {
                AdvKind::Lsgan => loss::lsgan_g(fl),
                _ => loss::relativistic_g(rl, fl),
            };
            let fm = loss::feature_matching(&ff, &rf);
            adv_v = adv.clone().into_scalar::<f32>() as f64;
            fm_v = fm.clone().into_scalar::<f32>() as f64;
            total = total + adv.mul_scalar(cfg.adv_weight) + fm.mul_scalar(cfg.fm_weight);
        }
        let pix_v = pix.into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(total.backward(), &g);
        g = opt_g.step(cfg.lr_at(step), g, grads);

        // discriminator steps
        if let (Some(f), Some(st)) = (face.as_mut(), face_step) {
            let (p, i, a, pa) = (st.perceptual, st.identity, st.adv, st.parts_adv);
            let ds = f.d_step(y.clone(), st, step);
            append_csv(
                &out.join("face.csv"),
                "step,perceptual,identity,adv,parts_adv,d_loss,d_acc,parts_d_loss,parts_d_acc",
                &format!(
                    "{},{:.5},{:.5},{:.5},{:.5},{:.5},{:.4},{:.5},{:.4}",
                    step + 1,
                    p,
                    i,
                    a,
                    pa,
                    ds.loss,
                    ds.acc,
                    ds.parts_loss,
                    ds.parts_acc
                ),
            )?;
            if (step + 1) % cfg.log_every == 0 {
                tracing::info!(
                    step = step + 1,
                    perceptual = format!("{p:.4}"),
                    identity = format!("{i:.4}"),
                    d_acc = format!("{:.3}", ds.acc),
                    parts_d_acc = format!("{:.3}", ds.parts_acc),
                    "face prior"
                );
            }
        }
        let mut d_v = 0.0;
        if gan {
            let (rl, _) = d.forward(d_input(y, cfg.d_detail));
            let (fl, _) = d.forward(d_input(fake.detach(), cfg.d_detail));
            let ld = match cfg.adv {
                AdvKind::Lsgan => loss::lsgan_d(rl, fl),
                _ => loss::relativistic_d(rl, fl),
            };
            d_v = ld.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(ld.backward(), &d);
            d = opt_d.step(cfg.d_lr, d, grads);
        }
        ema = ema_update(ema, &g.valid(), if step < cfg.warmup_steps { 0.0 } else { cfg.ema_decay });
        state.step += 1;
        let dt = t0.elapsed().as_secs_f64();
        acc[0] += pix_v;
        acc[1] += adv_v;
        acc[2] += fm_v;
        acc[3] += d_v;
        acc_n += 1;
        state.elapsed_s = base_elapsed + chunk_start.elapsed().as_secs_f64();
        pb.set_position(state.step as u64);
        pb.set_message(format!("pix {:.4} {:.2}s/step", pix_v, dt));

        if state.step % cfg.log_every == 0 || state.step == stop_at {
            let n = acc_n.max(1) as f64;
            let sps = last_log.elapsed().as_secs_f64() / n;
            append_csv(
                &out.join("losses.csv"),
                "step,epoch,lr,pixel,adv,fm,d,s_per_step,elapsed_s",
                &format!(
                    "{},{:.4},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1}",
                    state.step,
                    state.step as f64 / steps_per_epoch,
                    cfg.lr_at(step),
                    acc[0] / n,
                    acc[1] / n,
                    acc[2] / n,
                    acc[3] / n,
                    sps,
                    state.elapsed_s
                ),
            )?;
            tracing::debug!(step = state.step, pixel = acc[0] / n, adv = acc[1] / n, d = acc[3] / n, s_per_step = sps);
            acc = [0.0; 4];
            acc_n = 0;
            last_log = Instant::now();
        }
        let done =
            state.step == stop_at || opts.max_minutes.is_some_and(|m| chunk_start.elapsed().as_secs_f64() > m * 60.0);
        if state.step % cfg.val_every == 0 || state.step == cfg.steps {
            let (ms, bs, outs) = validate(&ema, &val_pairs, val_size, &device)?;
            if let Some(id) = &identity {
                let (ins, truths): (Vec<Img>, Vec<Img>) = val_pairs.iter().cloned().unzip();
                let s = id.scores(&outs, &ins, &truths)?;
                tracing::info!(
                    step = state.step,
                    out = format!("{:.4}", s.out_dist),
                    input = format!("{:.4}", s.in_dist),
                    closer = format!("{:.2}", s.closer),
                    "validation identity (descriptor distance to the truth)"
                );
                append_csv(
                    &out.join("val_identity.csv"),
                    "step,out_dist,in_dist,closer,n",
                    &format!("{},{:.5},{:.5},{:.4},{}", state.step, s.out_dist, s.in_dist, s.closer, s.n),
                )?;
            }
            state.best_val_psnr = state.best_val_psnr.max(ms.psnr);
            tracing::info!(
                step = state.step,
                psnr = format!("{:.3}", ms.psnr),
                ssim = format!("{:.4}", ms.ssim),
                hf = format!("{:.3}", ms.hf),
                base_psnr = format!("{:.3}", bs.psnr),
                base_ssim = format!("{:.4}", bs.ssim),
                "validation (EMA generator, {} crops)",
                ms.n
            );
            append_csv(
                &out.join("val.csv"),
                "step,epoch,psnr,ssim,baseline_psnr,baseline_ssim,n,elapsed_s,hf",
                &format!(
                    "{},{:.4},{:.4},{:.5},{:.4},{:.5},{},{:.1},{:.4}",
                    state.step,
                    state.step as f64 / steps_per_epoch,
                    ms.psnr,
                    ms.ssim,
                    bs.psnr,
                    bs.ssim,
                    ms.n,
                    state.elapsed_s,
                    ms.hf
                ),
            )?;
            if let Err(e) = crate::plot::plot_run(out) {
                tracing::warn!("plot: {e:#}");
            }
        }
        if state.step % cfg.checkpoint_every == 0 || done {
            ck.save((&g, &d, &ema), &opt_g, &opt_d, &state).context("saving checkpoint")?;
            if let Some(f) = &face {
                f.save(&ck.dir).context("saving the face discriminators")?;
            }
        }
        if done {
            break;
        }
    }
    pb.finish();
    if let Err(e) = crate::plot::plot_run(out) {
        tracing::warn!("plot: {e:#}");
    }
    Ok(state)
}

/// What the discriminator sees: the batch, and with `detail` its high-pass part beside it.
fn d_input(x: Tensor<4>, detail: bool) -> Tensor<4> {
    if detail {
        Tensor::cat(vec![x.clone(), crate::learned::high_pass(x, 1.0)], 1)
    } else {
        x
    }
}

/// ESRGAN's network interpolation: the weights `(1 - alpha) * base + alpha * other`, a
/// continuous dial between a fidelity model and its GAN fine-tune, without retraining.
pub fn interpolate<M: Module>(base: M, other: &M, alpha: f64) -> M {
    ema_update(base, other, 1.0 - alpha)
}

/// The EMA generator of a run's checkpoint, on a plain device.
pub fn load_ema(cfg: &TrainConfig, device: &Device) -> Result<Generator> {
    load_generator(cfg, device, false)
}

/// The EMA generator of a run's checkpoint or, with `raw`, the generator itself (a GAN's
/// texture may live in the raw weights and be averaged away in the EMA's).
pub fn load_generator(cfg: &TrainConfig, device: &Device, raw: bool) -> Result<Generator> {
    let p = cfg.out_dir.join("checkpoint").join(if raw { "g.bpk" } else { "ema.bpk" });
    anyhow::ensure!(p.is_file(), "no checkpoint at {}", p.display());
    Ok(cfg.generator.init(device).load_file(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GeneratorConfig, RestoreConfig};
    use burn::optim::AdamConfig;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.4)
    }

    #[test]
    fn interpolation_is_a_weighted_mean_of_the_two_sets_of_weights() {
        let device = Device::flex();
        let cfg = GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 });
        device.seed(1);
        let a = cfg.init(&device);
        device.seed(2);
        let b = cfg.init(&device);
        let flat = |m: &Generator| {
            let mut c = Collect(Vec::new());
            m.visit(&mut c);
            c.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect::<Vec<f32>>()
        };
        let (wa, wb) = (flat(&a), flat(&b));
        assert!(wa.iter().zip(&wb).any(|(x, y)| (x - y).abs() > 1e-3), "two seeds, two nets");
        let mid = flat(&interpolate(a.clone(), &b, 0.25));
        for ((x, y), m) in wa.iter().zip(&wb).zip(&mid) {
            assert!((m - (0.75 * x + 0.25 * y)).abs() < 1e-5, "{m} vs {x} and {y}");
        }
        assert_eq!(flat(&interpolate(a.clone(), &b, 0.0)), wa);
    }

    #[test]
    fn loss_goes_down_on_a_fixed_batch() {
        let device = Device::flex();
        device.seed(5);
        let ad = device.clone().autodiff();
        let gen_cfg = GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 });
        let mut g = gen_cfg.init(&ad);
        let mut d = PatchDiscriminator::new(8, &ad);
        let dcfg = DegradeConfig {
            blur_prob: 1.0,
            blur_sigma: [1.5, 1.5],
            gauss_noise_prob: 1.0,
            noise_sigma: [8.0, 8.0],
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pairs: Vec<(Img, Img)> =
            (0..4).map(|k| degrade_restore(&smooth(32, k), &dcfg, &mut rng).unwrap()).collect();
        let xs: Vec<Img> = pairs.iter().map(|p| p.0.clone()).collect();
        let ys: Vec<Img> = pairs.iter().map(|p| p.1.clone()).collect();
        let mut opt = AdamConfig::new().init();
        let mut opt_d = AdamConfig::new().init();
        let mut losses = Vec::new();
        for step in 0..60 {
            let fake = g.forward(to_tensor(&xs, &ad));
            let y = to_tensor(&ys, &ad);
            let pix = loss::charbonnier(fake.clone(), y.clone(), 1e-3);
            losses.push(pix.clone().into_scalar::<f32>() as f64);
            let mut total = pix;
            if step % 5 == 4 {
                // exercise the adversarial path: relativistic + feature matching, then a D step
                let (fl, ff) = d.forward(fake.clone());
                let (rl, rf) = d.forward(y.clone());
                let rf: Vec<Tensor<4>> = rf.into_iter().map(|t| t.detach()).collect();
                total = total
                    + loss::relativistic_g(rl.detach(), fl).mul_scalar(1e-3)
                    + loss::feature_matching(&ff, &rf).mul_scalar(1e-3);
                let (rl, _) = d.forward(y);
                let (fl, _) = d.forward(fake.clone().detach());
                let ld = loss::lsgan_d(rl, fl);
                assert!(ld.clone().into_scalar::<f32>().is_finite());
                let gd = GradientsParams::from_grads(ld.backward(), &d);
                d = opt_d.step(1e-3, d, gd);
            }
            let gg = GradientsParams::from_grads(total.backward(), &g);
            g = opt.step(3e-3, g, gg);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.8 * first, "loss {first} -> {last}: {losses:?}");
        // EMA with decay 0 copies; with decay 1 keeps
        let v = g.valid();
        let e = ema_update(gen_cfg.init(&device), &v, 0.0);
        let x = to_tensor(&xs, &device);
        let diff = (e.forward(x.clone()) - v.forward(x)).abs().max().into_scalar::<f32>() as f64;
        assert!(diff < 1e-6);
    }

    #[test]
    fn patches_come_from_every_source_at_their_scales() {
        let dir = std::env::temp_dir().join(format!("fe-train-patch-{}", std::process::id()));
        // two caches: 64 px crops of a constant 0.2 image and 96 px crops of a constant 0.8
        for (name, size, v) in [("a", 64usize, 0.2f32), ("b", 96, 0.8)] {
            let d = dir.join(name);
            crate::data::Manifest {
                source: "test".into(),
                size,
                template: "ffhq5".into(),
                detector: "none".into(),
                train: crate::data::SplitManifest { files: vec!["0.png".into()], ..Default::default() },
                val: crate::data::SplitManifest::default(),
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
    fn jitter_moves_the_crop_and_none_is_the_identity() {
        let img = crate::image::test_pattern(64, 3, 0.4);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let same = jitter(&img, &Jitter::default(), &mut rng).unwrap();
        let diff = |a: &Img, b: &Img| {
            a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.data.len() as f32
        };
        assert!(diff(&same, &img) < 1e-4);
        let moved = jitter(&img, &Jitter { shift: 0.05, scale: 0.05, rotate: 3.0 }, &mut rng).unwrap();
        assert!(diff(&moved, &img) > 1e-3, "{}", diff(&moved, &img));
    }

    #[test]
    fn batches_are_a_function_of_seed_and_step() {
        let dir = std::env::temp_dir().join(format!("fe-train-batch-{}", std::process::id()));
        let imgs: Vec<Img> = (0..5).map(|k| smooth(64, k)).collect();
        let manifest = crate::data::Manifest {
            source: "test".into(),
            size: 64,
            template: "ffhq5".into(),
            detector: "none".into(),
            train: crate::data::SplitManifest {
                files: (0..5).map(|i| format!("{i}.png")).collect(),
                no_face: vec![],
                too_soft: vec![],
            },
            val: crate::data::SplitManifest::default(),
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
