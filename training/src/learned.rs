//! The learned high-to-low degradation (issue 3): a GAN that turns clean aligned faces into
//! low-resolution faces that look like *real* low-resolution faces, trained on unpaired
//! real crops (Bulat et al. 2018, "To learn image super-resolution, use a GAN to learn how
//! to do image degradation first"; the frequency split follows Fritsche et al. 2019,
//! "Frequency separation for real-world super-resolution").
//!
//! - Generator: [`DegradeNet`] (clean `H` px RGB + one N(0, 1) noise channel -> `H / s` px,
//!   area down-scale + learned residual).
//! - Discriminator: a [`PatchDiscriminator`] with one stride-2 stage (16 px -> 8 x 8 patch
//!   logits) that sees the *high-pass* part of its input (`x - gauss(x)`), real low-resolution
//!   crops against generated ones: it judges noise, blocking, ringing and sharpness, not the
//!   identity or the colours of the one person in a video.
//! - Content loss: L1 between the low-pass parts of the output and of the area down-scale, so
//!   identity and colours stay those of the clean face.
//!
//! [`LearnedDegrader`] runs the exported ONNX file through ONNX Runtime; `train.rs` uses it
//! as an alternative source of SR training inputs (`degrade.learned_prob`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::config::{warmup_cosine, AdvKind};
use crate::data::{CropSet, Split};
use crate::degrade::DegradeConfig;
use crate::image::{from_nchw, from_tensor, grid, to_nchw, to_tensor, Img};
use crate::loss;
use crate::model::{area_down, DegradeNet, DegradeNetConfig, PatchDiscriminator};
use crate::ortrt::OrtModel;
use crate::plot::PlotSpec;
use crate::train::{append_csv, ema_update, flip, make_pair, step_rng, Ckpt, RunOptions};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DegradeGanConfig {
    pub name: String,
    /// Cache of clean aligned crops (`prepare`, `clean_size` px), e.g. CelebA.
    pub clean_cache: PathBuf,
    /// Caches of real low-resolution aligned crops (`prepare --size clean_size / scale`).
    pub real_caches: Vec<PathBuf>,
    pub out_dir: PathBuf,
    pub seed: u64,
    pub generator: DegradeNetConfig,
    pub clean_size: usize,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub warmup_steps: usize,
    pub d_lr: f64,
    pub adv: AdvKind,
    pub adv_weight: f64,
    pub content_weight: f64,
    /// Sigma (low-resolution pixels) of the Gaussian that splits low and high frequencies.
    pub split_sigma: f64,
    pub d_channels: usize,
    /// Discriminator: `true` the 5 x 5 px texture discriminator (`PatchDiscriminator::local`),
    /// `false` the one-stride-2 patch discriminator (19 px receptive field, the whole face).
    pub d_local: bool,
    /// Also feed the discriminator the magnitude of the high-pass part (see [`d_input`]).
    pub d_energy: bool,
    pub ema_decay: f64,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub val_every: usize,
    /// Clean validation crops degraded at each validation.
    pub val_count: usize,
    pub val_seed: u64,
}

impl Default for DegradeGanConfig {
    fn default() -> Self {
        Self {
            name: "degrade-x4-16".into(),
            clean_cache: PathBuf::from("cache/celeba-64"),
            real_caches: vec![PathBuf::from("cache/carphone-16")],
            out_dir: PathBuf::from("runs/degrade-x4-16"),
            seed: 7,
            generator: DegradeNetConfig::default(),
            clean_size: 64,
            batch_size: 32,
            steps: 6000,
            lr: 1e-3,
            lr_min: 5e-5,
            warmup_steps: 100,
            d_lr: 2e-4,
            adv: AdvKind::Lsgan,
            adv_weight: 0.05,
            content_weight: 1.0,
            split_sigma: 1.0,
            d_channels: 32,
            d_local: true,
            d_energy: true,
            ema_decay: 0.995,
            checkpoint_every: 250,
            log_every: 10,
            val_every: 250,
            val_count: 256,
            val_seed: 34567,
        }
    }
}

impl DegradeGanConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&s).with_context(|| format!("parsing {}", path.display()))
    }
    pub fn lr_size(&self) -> usize {
        self.clean_size / self.generator.scale
    }
}

// ---------------------------------------------------------------------------------------
// Frequency split

/// Depthwise Gaussian low-pass of an RGB batch, normalised at the borders (the zero padding
/// is divided out), so flat images stay flat up to the edge.
pub fn low_pass(x: Tensor<4>, sigma: f64) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let r = (2.0 * sigma).ceil().max(1.0) as usize;
    let k = 2 * r + 1;
    let g: Vec<f32> = (0..k).map(|i| (-((i as f64 - r as f64).powi(2)) / (2.0 * sigma * sigma)).exp() as f32).collect();
    let s: f32 = g.iter().sum();
    let k2: Vec<f32> = (0..k * k).map(|i| g[i / k] * g[i % k] / (s * s)).collect();
    let device = x.device();
    let weight = |n: usize| {
        Tensor::<4>::from_data(
            TensorData::new(k2.iter().copied().cycle().take(n * k * k).collect(), [n, 1, k, k]),
            &device,
        )
    };
    let blurred = conv2d(x, weight(c), None, ConvOptions::new([1, 1], [r, r], [1, 1], c));
    let norm =
        conv2d(Tensor::<4>::ones([1, 1, h, w], &device), weight(1), None, ConvOptions::new([1, 1], [r, r], [1, 1], 1));
    blurred / norm
}

pub fn high_pass(x: Tensor<4>, sigma: f64) -> Tensor<4> {
    x.clone() - low_pass(x, sigma)
}

// ---------------------------------------------------------------------------------------
// Statistics that tell real low-resolution crops from plain down-scales

/// RMS of the 4-neighbour Laplacian of BT.601 luma (0..255) over interior pixels: the
/// high-frequency energy (noise, blocking, aliasing raise it; blur lowers it).
pub fn lap_rms(img: &Img) -> f32 {
    let y = img.luma();
    let (w, h) = (img.w, img.h);
    let mut s = 0.0f64;
    let mut n = 0usize;
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let l = 4.0 * y[r * w + c] - y[(r - 1) * w + c] - y[(r + 1) * w + c] - y[r * w + c - 1] - y[r * w + c + 1];
            s += (l as f64).powi(2);
            n += 1;
        }
    }
    (s / n.max(1) as f64).sqrt() as f32
}

/// RMS of the 4-neighbour Laplacian of the chroma planes (BT.601 Cb and Cr, 0..255 scale)
/// over interior pixels: colour detail, which 4:2:0 video coding at a coarse quantiser
/// removes (colour bleeding) while a down-scale of a sharper image keeps it.
pub fn chroma_lap_rms(img: &Img) -> f32 {
    let (w, h) = (img.w, img.h);
    let cb: Vec<f32> =
        img.data.chunks_exact(3).map(|p| 255.0 * (-0.168_736 * p[0] - 0.331_264 * p[1] + 0.5 * p[2])).collect();
    let cr: Vec<f32> =
        img.data.chunks_exact(3).map(|p| 255.0 * (0.5 * p[0] - 0.418_688 * p[1] - 0.081_312 * p[2])).collect();
    let mut s = 0.0f64;
    let mut n = 0usize;
    for plane in [&cb, &cr] {
        for r in 1..h - 1 {
            for c in 1..w - 1 {
                let l = 4.0 * plane[r * w + c]
                    - plane[(r - 1) * w + c]
                    - plane[(r + 1) * w + c]
                    - plane[r * w + c - 1]
                    - plane[r * w + c + 1];
                s += (l as f64).powi(2);
                n += 1;
            }
        }
    }
    (s / n.max(1) as f64).sqrt() as f32
}

/// Immerkær's fast noise estimate (1996) on luma (0..255):
/// `sigma = sqrt(pi / 2) / (6 (W-2)(H-2)) sum |I * N|`, `N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`
/// (blind to linear ramps, sensitive to pixel-level noise).
pub fn noise_sigma(img: &Img) -> f32 {
    let y = img.luma();
    let (w, h) = (img.w, img.h);
    let k = [[1.0f32, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]];
    let mut s = 0.0f64;
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let mut v = 0.0f32;
            for (dy, row) in k.iter().enumerate() {
                for (dx, kv) in row.iter().enumerate() {
                    v += kv * y[(r + dy - 1) * w + c + dx - 1];
                }
            }
            s += v.abs() as f64;
        }
    }
    ((std::f64::consts::PI / 2.0).sqrt() * s / (6.0 * ((w - 2) * (h - 2)) as f64)) as f32
}

/// 1-D Wasserstein-1 distance between two empirical distributions (mean absolute difference
/// of 200 matched quantiles).
pub fn wasserstein1(a: &[f32], b: &[f32]) -> f32 {
    let q = |v: &[f32]| {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        move |t: f32| s[((t * (s.len() - 1) as f32).round() as usize).min(s.len() - 1)]
    };
    let (qa, qb) = (q(a), q(b));
    let n = 200;
    (0..n).map(|i| (qa((i as f32 + 0.5) / n as f32) - qb((i as f32 + 0.5) / n as f32)).abs()).sum::<f32>() / n as f32
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SetStats {
    pub n: usize,
    pub lap_rms_mean: f32,
    pub lap_rms_std: f32,
    pub noise_sigma_mean: f32,
    pub noise_sigma_std: f32,
    /// W1 distance of the per-crop Laplacian RMS to that of the real crops.
    pub lap_w1_to_real: f32,
    /// W1 distance of the per-crop noise estimate to that of the real crops.
    pub noise_w1_to_real: f32,
    pub chroma_lap_rms_mean: f32,
    pub chroma_lap_rms_std: f32,
    /// W1 distance of the per-crop chroma Laplacian RMS to that of the real crops.
    pub chroma_w1_to_real: f32,
}

fn mean_std(v: &[f32]) -> (f32, f32) {
    let m = v.iter().sum::<f32>() / v.len().max(1) as f32;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len().max(1) as f32;
    (m, var.sqrt())
}

/// Statistics of a set of crops, with distances to a reference (real) set.
pub fn set_stats(imgs: &[Img], real: &[Img]) -> SetStats {
    let lap: Vec<f32> = imgs.iter().map(lap_rms).collect();
    let noise: Vec<f32> = imgs.iter().map(noise_sigma).collect();
    let rlap: Vec<f32> = real.iter().map(lap_rms).collect();
    let rnoise: Vec<f32> = real.iter().map(noise_sigma).collect();
    let chroma: Vec<f32> = imgs.iter().map(chroma_lap_rms).collect();
    let rchroma: Vec<f32> = real.iter().map(chroma_lap_rms).collect();
    let (cm, cs) = mean_std(&chroma);
    let (lm, ls) = mean_std(&lap);
    let (nm, ns) = mean_std(&noise);
    SetStats {
        n: imgs.len(),
        lap_rms_mean: lm,
        lap_rms_std: ls,
        noise_sigma_mean: nm,
        noise_sigma_std: ns,
        lap_w1_to_real: wasserstein1(&lap, &rlap),
        noise_w1_to_real: wasserstein1(&noise, &rnoise),
        chroma_lap_rms_mean: cm,
        chroma_lap_rms_std: cs,
        chroma_w1_to_real: wasserstein1(&chroma, &rchroma),
    }
}

/// Plain area down-scaling by `s` (OpenCV `INTER_AREA`, the block average for integer `s`).
pub fn area(img: &Img, s: usize) -> Result<Img> {
    img.resize(img.w / s, img.h / s, opencv::imgproc::INTER_AREA)
}

// ---------------------------------------------------------------------------------------
// Inputs of the generator

/// N(0, 1) noise planes, one `w * h` plane per image.
pub fn noise_planes<R: Rng>(n: usize, w: usize, h: usize, rng: &mut R) -> Vec<f32> {
    (0..n * w * h).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

/// `[n, 4, h, w]` NCHW buffer: the RGB planes of each image followed by its noise plane.
pub fn generator_input(imgs: &[Img], noise: &[f32]) -> Vec<f32> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    let rgb = to_nchw(imgs);
    let mut out = Vec::with_capacity(imgs.len() * 4 * w * h);
    for i in 0..imgs.len() {
        out.extend_from_slice(&rgb[i * 3 * w * h..(i + 1) * 3 * w * h]);
        out.extend_from_slice(&noise[i * w * h..(i + 1) * w * h]);
    }
    out
}

/// The generator's input tensor for a batch of clean crops, with noise drawn from `rng`.
pub fn input_tensor<R: Rng>(imgs: &[Img], rng: &mut R, device: &Device) -> Tensor<4> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    let noise = noise_planes(imgs.len(), w, h, rng);
    Tensor::from_data(TensorData::new(generator_input(imgs, &noise), [imgs.len(), 4, h, w]), device)
}

// ---------------------------------------------------------------------------------------
// The exported generator as a source of SR training inputs

/// The exported degradation generator, run through ONNX Runtime (1 thread).
pub struct LearnedDegrader {
    model: Mutex<OrtModel>,
    scale: usize,
}

impl LearnedDegrader {
    /// Loads the ONNX file and finds its down-scale factor from a probe run.
    pub fn load(path: &Path) -> Result<Self> {
        let mut model = OrtModel::load(path, 1)?;
        let probe = 64;
        let (shape, _) = model.run_raw([1, 4, probe, probe], vec![0.0; 4 * probe * probe])?;
        anyhow::ensure!(shape.len() == 4 && shape[1] == 3 && shape[2] > 0, "{}: output {shape:?}", path.display());
        Ok(Self { model: Mutex::new(model), scale: probe / shape[2] })
    }

    pub fn scale(&self) -> usize {
        self.scale
    }

    /// Degrades a batch of clean crops (all the same size) with noise from `rng`; outputs
    /// are clamped to [0, 1].
    pub fn degrade_batch<R: Rng>(&self, clean: &[Img], rng: &mut R) -> Result<Vec<Img>> {
        let (w, h) = (clean[0].w, clean[0].h);
        let noise = noise_planes(clean.len(), w, h, rng);
        let mut m = self.model.lock().map_err(|_| anyhow::anyhow!("poisoned ort session"))?;
        let (s, v) = m.run_raw([clean.len(), 4, h, w], generator_input(clean, &noise))?;
        Ok(from_nchw(&v, s[0], s[2], s[3]).into_iter().map(Img::clamp).collect())
    }

    pub fn degrade<R: Rng>(&self, clean: &Img, rng: &mut R) -> Result<Img> {
        Ok(self.degrade_batch(std::slice::from_ref(clean), rng)?.remove(0))
    }
}

// ---------------------------------------------------------------------------------------
// Training

/// The step's batch: clean crops (random, flipped half the time), real low-resolution crops
/// (same), and the generator input with its noise; a pure function of (seed, step).
fn gan_batch(
    clean: &CropSet,
    real: &[Img],
    cfg: &DegradeGanConfig,
    step: usize,
    device: &Device,
) -> (Vec<Img>, Tensor<4>, Vec<Img>) {
    let mut rng = step_rng(cfg.seed, step);
    let pick = |rng: &mut ChaCha8Rng, img: Img| if rng.gen_bool(0.5) { flip(&img) } else { img };
    let cs: Vec<Img> = (0..cfg.batch_size)
        .map(|_| {
            let i = rng.gen_range(0..clean.len());
            pick(&mut rng, clean.get(i))
        })
        .collect();
    let rs: Vec<Img> = (0..cfg.batch_size)
        .map(|_| {
            let i = rng.gen_range(0..real.len());
            pick(&mut rng, real[i].clone())
        })
        .collect();
    let x = input_tensor(&cs, &mut rng, device);
    (cs, x, rs)
}

/// Real crops of the given split of every real cache.
pub fn load_real(cfg: &DegradeGanConfig, split: Split) -> Result<Vec<Img>> {
    let mut out = Vec::new();
    for dir in &cfg.real_caches {
        let set = CropSet::load(dir, split)?;
        anyhow::ensure!(set.size == cfg.lr_size(), "{}: {} px crops, want {}", dir.display(), set.size, cfg.lr_size());
        out.extend((0..set.len()).map(|i| set.get(i)));
    }
    anyhow::ensure!(!out.is_empty(), "no real crops in {:?} ({split:?})", cfg.real_caches);
    Ok(out)
}

fn d_in(cfg: &DegradeGanConfig) -> usize {
    if cfg.d_energy {
        6
    } else {
        3
    }
}

/// What the discriminator sees: the high-pass part of an RGB batch and, with `d_energy`,
/// its magnitude as three more channels. The magnitude makes the discriminator's first
/// layer sensitive to local high-frequency *energy* (noise level, ringing, colour detail),
/// so its gradient correlates with the generator's noise input from the first steps; a
/// discriminator that is nearly linear in `x` gives the noise path no signal.
pub fn d_input(x: Tensor<4>, cfg: &DegradeGanConfig) -> Tensor<4> {
    let hp = high_pass(x, cfg.split_sigma);
    if cfg.d_energy {
        Tensor::cat(vec![hp.clone(), hp.abs()], 1)
    } else {
        hp
    }
}

/// The configured discriminator for `lr_size` px inputs.
pub fn discriminator(cfg: &DegradeGanConfig, device: &Device) -> PatchDiscriminator {
    if cfg.d_local {
        PatchDiscriminator::local(cfg.d_channels, d_in(cfg), device)
    } else {
        PatchDiscriminator::with_downs(cfg.d_channels, 1, d_in(cfg), device)
    }
}

/// One generator step and one discriminator step; returns (content, adversarial, D) losses.
#[allow(clippy::too_many_arguments)]
pub fn gan_step(
    g: DegradeNet,
    d: PatchDiscriminator,
    opt_g: &mut burn::optim::ModuleOptimizer,
    opt_d: &mut burn::optim::ModuleOptimizer,
    x: Tensor<4>,
    real: Tensor<4>,
    cfg: &DegradeGanConfig,
    lr: f64,
) -> (DegradeNet, PatchDiscriminator, [f64; 3]) {
    let s = cfg.generator.scale;
    let [b, _, hh, ww] = x.dims();
    let rgb = x.clone().slice([0..b, 0..3, 0..hh, 0..ww]);
    let target = area_down(rgb, s).detach();
    let fake = g.forward(x);
    let content = loss::l1(low_pass(fake.clone(), cfg.split_sigma), low_pass(target, cfg.split_sigma));
    let hp_real = d_input(real, cfg);
    let (fl, _) = d.forward(d_input(fake.clone(), cfg));
    let adv = match cfg.adv {
        AdvKind::Relativistic => loss::relativistic_g(d.forward(hp_real.clone()).0.detach(), fl),
        _ => loss::lsgan_g(fl),
    };
    let (cv, av) = (content.clone().into_scalar::<f32>() as f64, adv.clone().into_scalar::<f32>() as f64);
    let total = content.mul_scalar(cfg.content_weight) + adv.mul_scalar(cfg.adv_weight);
    let grads = GradientsParams::from_grads(total.backward(), &g);
    let g = opt_g.step(lr, g, grads);

    let (rl, _) = d.forward(hp_real);
    let (fl, _) = d.forward(d_input(fake.detach(), cfg));
    let ld = match cfg.adv {
        AdvKind::Relativistic => loss::relativistic_d(rl, fl),
        _ => loss::lsgan_d(rl, fl),
    };
    let dv = ld.clone().into_scalar::<f32>() as f64;
    let grads = GradientsParams::from_grads(ld.backward(), &d);
    let d = opt_d.step(cfg.d_lr, d, grads);
    (g, d, [cv, av, dv])
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GanState {
    pub step: usize,
    pub elapsed_s: f64,
}

pub const DEGRADE_PLOT: PlotSpec = PlotSpec {
    loss_title: "content loss (L1 of low-pass vs area down-scale)",
    loss_col: "content",
    val_title: "validation: Laplacian RMS of 16 px luma",
    val_y: "Laplacian RMS",
    val_series: &[("lap_gdeg", "G_deg (EMA)"), ("lap_real", "real LR (val)"), ("lap_area", "area down-scale")],
};

/// Degrades `clean` with the (plain-device) generator, noise from `seed`.
pub fn run_generator(g: &DegradeNet, clean: &[Img], seed: u64, device: &Device) -> Vec<Img> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(clean.len());
    for chunk in clean.chunks(64) {
        out.extend(from_tensor(g.forward(input_tensor(chunk, &mut rng, device))).into_iter().map(Img::clamp));
    }
    out
}

pub fn train_gan(cfg: &DegradeGanConfig, opts: &RunOptions) -> Result<GanState> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let clean = CropSet::load(&cfg.clean_cache, Split::Train)?;
    let clean_val = CropSet::load(&cfg.clean_cache, Split::Val)?;
    anyhow::ensure!(clean.size == cfg.clean_size, "clean crops are {} px, config wants {}", clean.size, cfg.clean_size);
    let real = load_real(cfg, Split::Train)?;
    let real_val = load_real(cfg, Split::Val)?;
    let s = cfg.generator.scale;
    let out = &cfg.out_dir;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("config.toml"), toml::to_string(cfg)?)?;
    let ck = Ckpt { dir: out.join("checkpoint") };

    let g = DegradeNet::new(&cfg.generator, &ad);
    let ema = g.valid();
    let adam = AdamConfig::new().with_beta_1(0.5).with_beta_2(0.99).with_epsilon(1e-8);
    let fresh = (g, discriminator(cfg, &ad), ema, adam.init(), adam.init());
    let ((mut g, mut d, mut ema, mut opt_g, mut opt_d), mut state): (_, GanState) = ck.resume(opts.resume, fresh)?;
    if state.step > 0 {
        tracing::info!(step = state.step, "resumed from {}", ck.dir.display());
    }
    tracing::info!(
        params_g = g.num_params(),
        params_d = d.num_params(),
        clean = clean.len(),
        real = real.len(),
        real_val = real_val.len(),
        "training {} for {} steps (batch {})",
        cfg.name,
        cfg.steps,
        cfg.batch_size
    );
    let val_clean: Vec<Img> = (0..cfg.val_count.min(clean_val.len())).map(|i| clean_val.get(i)).collect();
    let val_area: Vec<Img> = val_clean.iter().map(|c| area(c, s)).collect::<Result<_>>()?;
    let area_stats = set_stats(&val_area, &real_val);
    let real_stats = set_stats(&real_val, &real_val);

    let stop_at = opts.stop_at.unwrap_or(cfg.steps).min(cfg.steps);
    let chunk_start = Instant::now();
    let base_elapsed = state.elapsed_s;
    let pb = if opts.progress { ProgressBar::new(stop_at as u64) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed_precise} eta {eta}]").unwrap());
    pb.set_position(state.step as u64);
    let mut acc = [0.0f64; 3];
    let mut acc_n = 0usize;
    let mut last_log = Instant::now();
    let steps_per_epoch = (clean.len() as f64 / cfg.batch_size as f64).max(1.0);
    let lr_at = |step| warmup_cosine(cfg.lr, cfg.lr_min, cfg.warmup_steps, cfg.steps, step);

    while state.step < stop_at {
        let step = state.step;
        let (_, x, rs) = gan_batch(&clean, &real, cfg, step, &ad);
        let (g2, d2, l) = gan_step(g, d, &mut opt_g, &mut opt_d, x, to_tensor(&rs, &ad), cfg, lr_at(step));
        (g, d) = (g2, d2);
        ema = ema_update(ema, &g.valid(), if step < cfg.warmup_steps { 0.0 } else { cfg.ema_decay });
        state.step += 1;
        for k in 0..3 {
            acc[k] += l[k];
        }
        acc_n += 1;
        state.elapsed_s = base_elapsed + chunk_start.elapsed().as_secs_f64();
        pb.set_position(state.step as u64);
        pb.set_message(format!("content {:.4} adv {:.3} d {:.3}", l[0], l[1], l[2]));
        if state.step % cfg.log_every == 0 || state.step == stop_at {
            let n = acc_n.max(1) as f64;
            append_csv(
                &out.join("losses.csv"),
                "step,epoch,lr,content,adv,d,s_per_step,elapsed_s",
                &format!(
                    "{},{:.4},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1}",
                    state.step,
                    state.step as f64 / steps_per_epoch,
                    lr_at(step),
                    acc[0] / n,
                    acc[1] / n,
                    acc[2] / n,
                    last_log.elapsed().as_secs_f64() / n,
                    state.elapsed_s
                ),
            )?;
            acc = [0.0; 3];
            acc_n = 0;
            last_log = Instant::now();
        }
        let done =
            state.step == stop_at || opts.max_minutes.is_some_and(|m| chunk_start.elapsed().as_secs_f64() > m * 60.0);
        if state.step % cfg.val_every == 0 || state.step == cfg.steps {
            let fake = run_generator(&ema, &val_clean, cfg.val_seed, &device);
            let fs = set_stats(&fake, &real_val);
            let content = fake
                .iter()
                .zip(&val_area)
                .map(|(f, a)| f.data.iter().zip(&a.data).map(|(x, y)| (x - y).abs()).sum::<f32>() / f.data.len() as f32)
                .sum::<f32>()
                / fake.len().max(1) as f32;
            tracing::info!(
                step = state.step,
                lap_gdeg = format!("{:.2}", fs.lap_rms_mean),
                lap_real = format!("{:.2}", real_stats.lap_rms_mean),
                lap_area = format!("{:.2}", area_stats.lap_rms_mean),
                noise_gdeg = format!("{:.2}", fs.noise_sigma_mean),
                noise_real = format!("{:.2}", real_stats.noise_sigma_mean),
                noise_area = format!("{:.2}", area_stats.noise_sigma_mean),
                lap_w1 = format!("{:.2}", fs.lap_w1_to_real),
                "validation (EMA generator, {} crops; real: {})",
                fs.n,
                real_stats.n
            );
            append_csv(
                &out.join("val.csv"),
                "step,lap_gdeg,lap_real,lap_area,noise_gdeg,noise_real,noise_area,lap_w1_gdeg,lap_w1_area,l1_to_area,elapsed_s",
                &format!(
                    "{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.5},{:.1}",
                    state.step,
                    fs.lap_rms_mean,
                    real_stats.lap_rms_mean,
                    area_stats.lap_rms_mean,
                    fs.noise_sigma_mean,
                    real_stats.noise_sigma_mean,
                    area_stats.noise_sigma_mean,
                    fs.lap_w1_to_real,
                    area_stats.lap_w1_to_real,
                    content,
                    state.elapsed_s
                ),
            )?;
            if let Err(e) = crate::plot::plot_run_with(out, &DEGRADE_PLOT) {
                tracing::warn!("plot: {e:#}");
            }
        }
        if state.step % cfg.checkpoint_every == 0 || done {
            ck.save((&g, &d, &ema), &opt_g, &opt_d, &state)?;
        }
        if done {
            break;
        }
    }
    pb.finish();
    if let Err(e) = crate::plot::plot_run_with(out, &DEGRADE_PLOT) {
        tracing::warn!("plot: {e:#}");
    }
    Ok(state)
}

/// The EMA generator of a run's checkpoint, on a plain device.
pub fn load_ema(cfg: &DegradeGanConfig, device: &Device) -> Result<DegradeNet> {
    let p = cfg.out_dir.join("checkpoint").join("ema.bpk");
    anyhow::ensure!(p.is_file(), "no checkpoint at {}", p.display());
    Ok(DegradeNet::new(&cfg.generator, device).load_file(p))
}

/// Exports the generator: input `[batch, 4, clean_size, clean_size]`, output
/// `[batch, 3, clean_size / scale, clean_size / scale]`.
pub fn export(g: &DegradeNet, clean_size: usize, path: &Path) -> Result<()> {
    crate::export::export_module(g, DegradeNet::forward, [4, clean_size, clean_size], path)
}

// ---------------------------------------------------------------------------------------
// Evaluation

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

fn mean_l1(a: &[Img], b: &[Img]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()).sum::<f32>() / x.data.len() as f32)
        .sum::<f32>()
        / a.len().max(1) as f32
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
    use crate::degrade::gaussian_noise;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.3)
    }

    #[test]
    fn statistics_separate_noise_from_smooth_images() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let flat = Img::filled(32, 32, [0.5, 0.5, 0.5]);
        let sigma = 10.0 / 255.0;
        let noisy = gaussian_noise(&flat, sigma, true, &mut rng);
        // gray noise of sigma (in [0,1]) is luma noise of sigma * (65.481 + 128.553 + 24.966)
        let expect = 10.0 * (65.481 + 128.553 + 24.966) / 255.0;
        let est = noise_sigma(&noisy);
        assert!((est - expect).abs() < 0.15 * expect, "noise estimate {est}, expected {expect}");
        assert!(noise_sigma(&flat) < 1e-3 && lap_rms(&flat) < 1e-3);
        // gray noise has no chroma; colour noise has
        assert!(chroma_lap_rms(&noisy) < 1e-2 && chroma_lap_rms(&flat) < 1e-3);
        assert!(chroma_lap_rms(&gaussian_noise(&flat, sigma, false, &mut rng)) > 10.0);
        assert!(lap_rms(&noisy) > 10.0 * lap_rms(&smooth(32, 1)));
        // a linear ramp has no Laplacian and no noise
        let mut ramp = Img::new(16, 16);
        for (i, v) in ramp.data.iter_mut().enumerate() {
            *v = ((i / 3) % 16) as f32 / 20.0;
        }
        assert!(lap_rms(&ramp) < 1e-3 && noise_sigma(&ramp) < 1e-3);
        assert!(wasserstein1(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) < 1e-6);
        assert!((wasserstein1(&[1.0, 2.0, 3.0], &[3.0, 4.0, 5.0]) - 2.0).abs() < 1e-4);
    }

    #[test]
    fn low_pass_keeps_flat_images_and_splits_frequencies() {
        let device = Device::flex();
        let flat = to_tensor(&[Img::filled(8, 8, [0.2, 0.5, 0.9])], &device);
        let d = (low_pass(flat.clone(), 1.0) - flat).abs().max().into_scalar::<f32>();
        assert!(d < 1e-5, "flat image changed by {d}");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let noisy = gaussian_noise(&Img::filled(16, 16, [0.5, 0.5, 0.5]), 0.1, false, &mut rng);
        let t = to_tensor(std::slice::from_ref(&noisy), &device);
        let hp = from_tensor(high_pass(t.clone(), 1.0)).remove(0);
        let lp = from_tensor(low_pass(t, 1.0)).remove(0);
        let var = |img: &Img| {
            let m = img.data.iter().sum::<f32>() / img.data.len() as f32;
            img.data.iter().map(|v| (v - m).powi(2)).sum::<f32>() / img.data.len() as f32
        };
        assert!(var(&lp) < 0.2 * var(&noisy), "low-pass keeps {} of {}", var(&lp), var(&noisy));
        assert!(var(&hp) > 0.5 * var(&noisy));
    }

    fn tiny_cfg() -> DegradeGanConfig {
        DegradeGanConfig {
            generator: DegradeNetConfig { channels: 8, blocks: 1, scale: 4 },
            clean_size: 32,
            batch_size: 4,
            d_channels: 8,
            adv_weight: 0.2,
            content_weight: 1.0,
            d_lr: 2e-3,
            ..Default::default()
        }
    }

    /// On a fixed batch whose "real" low-resolution images are noisy, the GAN moves the
    /// generator's output statistics towards them while the low-pass content stays close to
    /// the area down-scale; the discriminator loss goes down from its start.
    #[test]
    fn gan_learns_the_noise_of_the_real_side_on_a_fixed_batch() {
        let device = Device::flex();
        device.seed(9);
        let ad = device.clone().autodiff();
        let cfg = tiny_cfg();
        let mut g = DegradeNet::new(&cfg.generator, &ad);
        let mut d = discriminator(&cfg, &ad);
        let mut opt_g = AdamConfig::new().with_beta_1(0.5).init();
        let mut opt_d = AdamConfig::new().with_beta_1(0.5).init();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let clean: Vec<Img> = (0..4).map(|k| smooth(32, k)).collect();
        let real: Vec<Img> = (0..4)
            .map(|k| gaussian_noise(&area(&smooth(32, k + 4), 4).unwrap(), 0.08, false, &mut rng).clamp())
            .collect();
        let lap_of = |g: &DegradeNet| {
            let out = run_generator(&g.valid(), &clean, 77, &device);
            out.iter().map(lap_rms).sum::<f32>() / out.len() as f32
        };
        let real_lap = real.iter().map(lap_rms).sum::<f32>() / 4.0;
        let start_lap = lap_of(&g);
        let mut dl = Vec::new();
        let mut content = 0.0;
        let mut laps = Vec::new();
        for step in 0..300 {
            let x = input_tensor(&clean, &mut rng, &ad);
            let (g2, d2, l) = gan_step(g, d, &mut opt_g, &mut opt_d, x, to_tensor(&real, &ad), &cfg, 1e-3);
            (g, d) = (g2, d2);
            assert!(l.iter().all(|v| v.is_finite()), "step {step}: {l:?}");
            dl.push(l[2]);
            content = l[0];
            if step % 20 == 19 {
                laps.push(lap_of(&g));
            }
        }
        eprintln!(
            "Laplacian RMS {start_lap} -> {laps:?} (real {real_lap}), content {content}, D {:.3} -> {:.3}",
            dl[0],
            dl[dl.len() - 1]
        );
        // a GAN oscillates around its target: ask that the generator gets close to the real
        // statistic at some point (from 10x below it) and that it ends near it on average
        let closest = laps.iter().map(|l| (l - real_lap).abs()).fold(f32::INFINITY, f32::min);
        assert!(closest < 0.25 * (real_lap - start_lap), "Laplacian RMS {start_lap} -> {laps:?}, real {real_lap}");
        let late = laps[laps.len() - 5..].iter().sum::<f32>() / 5.0;
        assert!(late > 0.5 * real_lap && late < 2.0 * real_lap, "late Laplacian RMS {late}, real {real_lap}");
        assert!(content < 0.05, "content loss {content}");
        let first: f64 = dl[..10].iter().sum::<f64>() / 10.0;
        assert!(dl.iter().all(|v| *v < 10.0 * first.max(0.1)), "discriminator diverged: {dl:?}");
    }

    #[test]
    fn export_matches_burn_through_ort_and_feeds_sr_pairs() {
        let device = Device::flex();
        device.seed(13);
        let cfg = tiny_cfg();
        let g = DegradeNet::new(&cfg.generator, &device.clone().autodiff()).valid();
        let path = std::env::temp_dir().join(format!("faceenhance-train-{}-degrade.onnx", std::process::id()));
        export(&g, 64, &path).unwrap();
        let mut ort = OrtModel::load(&path, 1).unwrap();
        for batch in [1usize, 4] {
            let x = Tensor::<4>::random([batch, 4, 64, 64], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
            let data = x.clone().into_data().try_to_vec::<f32>().unwrap();
            let ours = g.forward(x);
            let dims = ours.dims();
            let ours = ours.into_data().try_to_vec::<f32>().unwrap();
            let (shape, theirs) = ort.run_raw([batch, 4, 64, 64], data).unwrap();
            assert_eq!(shape, dims.to_vec());
            assert_eq!(shape, vec![batch, 3, 16, 16]);
            let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("degrade batch {batch}: max abs diff burn vs ort {max:e}");
            assert!(max <= 1e-4, "batch {batch}: max abs diff {max}");
        }

        // the SR pair path: with learned_prob = 1 the input is the generator's output
        let learned = LearnedDegrader::load(&path).unwrap();
        assert_eq!(learned.scale(), 4);
        let clean = smooth(64, 2);
        let dcfg = DegradeConfig { learned_prob: 1.0, ..Default::default() };
        let pair = |seed| make_pair(&clean, 4, &dcfg, Some(&learned), &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let (a, ta) = pair(5);
        let (b, _) = pair(5);
        let (c, _) = pair(6);
        assert_eq!((a.w, a.h), (16, 16));
        assert_eq!(ta, clean);
        assert_eq!(a, b, "same seed, same input");
        assert_ne!(a, c, "the noise channel depends on the seed");
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
        let plain = area(&clean, 4).unwrap();
        let diff = mean_l1(std::slice::from_ref(&a), &[plain]);
        assert!(diff > 1e-4, "learned input equals the area down-scale ({diff})");
        assert!(diff < 0.1, "learned input far from the face ({diff})");
        // without the model, learned_prob > 0 is an error, not a silent fallback
        assert!(make_pair(&clean, 4, &dcfg, None, &mut ChaCha8Rng::seed_from_u64(5)).is_err());
        // learned_prob = 0 draws nothing extra: the synthetic pipeline's output is unchanged
        let syn = DegradeConfig::default();
        let p0 = make_pair(&clean, 4, &syn, Some(&learned), &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
        let p1 = crate::degrade::degrade_sr(&clean, 4, &syn, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
        assert_eq!(p0, p1);
        std::fs::remove_file(&path).ok();
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
