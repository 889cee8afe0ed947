//! Training of the face attribute predictor (issue 16; the net and its run config are
//! `nets::attributes`): the 40 CelebA attributes learned from clean crops and from degraded,
//! low-resolution ones. Its checkpoint: `net.bpk`, `opt.bpk` and `state.json` in
//! `out_dir/checkpoint`.

use std::time::Instant;

use anyhow::{ensure, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::augment::flip;
use crate::data::cache::{CropSet, Split};
use crate::data::degrade;
use crate::data::labels::{labels_tensor, Labels};
use crate::image::{to_tensor, Img};
use crate::losses::attributes::bce_logits;
use crate::nets::attributes::{AttrConfig, AttrNet};
use crate::train::run::{append_csv, step_rng, warmup_cosine};

/// A training or validation input: the crop at `size`, degraded when `how` says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input {
    Clean,
    /// Blur, down-scale by this factor and back, noise and JPEG.
    Down(f32),
}

pub fn make_input<R: Rng>(crop: &Img, size: usize, how: Input, rng: &mut R) -> Result<Img> {
    let img = crop.resize(size, size, opencv::imgproc::INTER_AREA)?;
    let Input::Down(factor) = how else { return Ok(img) };
    let s = rng.gen_range(0.3..1.5);
    let img = degrade::gaussian_blur(&img, s, s, 0.0)?;
    let img = degrade::down_up(&img, factor, true, rng)?;
    let img = degrade::gaussian_noise(&img, rng.gen_range(0.0..8.0) / 255.0, rng.gen_bool(0.3), rng);
    degrade::jpeg(&img.clamp(), rng.gen_range(30..90))
}

/// Per-attribute accuracy of `net` on `set` (all of it), inputs made as `how` says (fixed
/// seed: the same degraded crops every time).
pub fn accuracy(net: &AttrNet, set: &CropSet, labels: &[Vec<f32>], size: usize, how: Input) -> Result<Vec<f64>> {
    let device = Device::flex();
    let n_attr = labels[0].len();
    let mut right = vec![0usize; n_attr];
    let mut rng = step_rng(4242, 0);
    for start in (0..set.len()).step_by(64) {
        let idx: Vec<usize> = (start..(start + 64).min(set.len())).collect();
        let imgs: Vec<Img> =
            idx.iter().map(|&i| make_input(&set.get(i), size, how, &mut rng)).collect::<Result<_>>()?;
        let logits = net.forward(to_tensor(&imgs, &device));
        let v: Vec<f32> = logits.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (k, &i) in idx.iter().enumerate() {
            for a in 0..n_attr {
                if (v[k * n_attr + a] > 0.0) == (labels[i][a] > 0.5) {
                    right[a] += 1;
                }
            }
        }
    }
    Ok(right.iter().map(|&r| r as f64 / set.len() as f64).collect())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttrState {
    pub step: usize,
    pub elapsed_s: f64,
}

/// Trains (or resumes) the predictor; stops at `stop_at` or after `max_minutes` with a
/// checkpoint (`net.bpk`, `opt.bpk`, `state.json` in `out_dir/checkpoint`).
pub fn train(cfg: &AttrConfig, resume: bool, max_minutes: Option<f64>, stop_at: Option<usize>) -> Result<AttrState> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let labels = Labels::load(&cfg.labels)?;
    let set = CropSet::load(&cfg.cache, Split::Train)?;
    let y = labels.for_set(&set)?;
    std::fs::create_dir_all(&cfg.out_dir)?;
    let saved = AttrConfig { attributes: labels.names.len(), ..cfg.clone() };
    std::fs::write(cfg.out_dir.join("config.toml"), toml::to_string(&saved)?)?;
    let ck = cfg.out_dir.join("checkpoint");
    let adam = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(None);
    let mut net = AttrNet::new(cfg.channels, labels.names.len(), &ad);
    let mut opt: ModuleOptimizer = adam.init();
    let mut state = AttrState::default();
    if ck.join("state.json").is_file() {
        ensure!(resume, "{} has a checkpoint: pass --resume or remove it", ck.display());
        let e = |e: burn::store::RecordError| anyhow::anyhow!("{e:?}");
        net = net.load_file(ck.join("net.bpk"));
        opt = opt.load(ck.join("opt.bpk")).map_err(e)?;
        state = serde_json::from_str(&std::fs::read_to_string(ck.join("state.json"))?)?;
        tracing::info!(step = state.step, "resumed from {}", ck.display());
    }
    tracing::info!(params = net.num_params(), train = set.len(), "training {} for {} steps", cfg.name, cfg.steps);
    let stop_at = stop_at.unwrap_or(cfg.steps).min(cfg.steps);
    let (chunk, base) = (Instant::now(), state.elapsed_s);
    let save = |net: &AttrNet, opt: &ModuleOptimizer, state: &AttrState| -> Result<()> {
        std::fs::create_dir_all(&ck)?;
        let e = |e: burn::store::RecordError| anyhow::anyhow!("{e:?}");
        net.clone().save_file(ck.join("net.bpk")).map_err(e)?;
        opt.save(ck.join("opt.bpk")).map_err(e)?;
        std::fs::write(ck.join("state.json"), serde_json::to_string_pretty(state)?)?;
        Ok(())
    };
    let mut acc_loss = 0.0;
    while state.step < stop_at {
        let step = state.step;
        let mut rng = step_rng(cfg.seed, step);
        let idx: Vec<usize> = (0..cfg.batch_size).map(|_| rng.gen_range(0..set.len())).collect();
        let mut imgs = Vec::with_capacity(idx.len());
        for &i in &idx {
            let how = if rng.gen_bool(cfg.degrade_prob) { Input::Down(rng.gen_range(2.0..8.0)) } else { Input::Clean };
            let img = make_input(&set.get(i), cfg.size, how, &mut rng)?;
            imgs.push(if rng.gen_bool(0.5) { flip(&img) } else { img });
        }
        let rows: Vec<&Vec<f32>> = idx.iter().map(|&i| &y[i]).collect();
        let loss = bce_logits(net.forward(to_tensor(&imgs, &ad)), labels_tensor(&rows, &ad));
        acc_loss += loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = opt.step(warmup_cosine(cfg.lr, cfg.lr_min, cfg.warmup_steps, cfg.steps, step), net, grads);
        state.step += 1;
        state.elapsed_s = base + chunk.elapsed().as_secs_f64();
        if state.step % cfg.log_every == 0 {
            let mean = acc_loss / cfg.log_every as f64;
            tracing::info!(step = state.step, loss = format!("{mean:.4}"), "attributes");
            append_csv(
                &cfg.out_dir.join("losses.csv"),
                "step,bce,elapsed_s",
                &format!("{},{mean:.5},{:.1}", state.step, state.elapsed_s),
            )?;
            acc_loss = 0.0;
        }
        let out_of_time = max_minutes.is_some_and(|m| chunk.elapsed().as_secs_f64() > m * 60.0);
        if state.step % cfg.checkpoint_every == 0 || state.step == stop_at || out_of_time {
            save(&net, &opt, &state)?;
        }
        if out_of_time {
            break;
        }
    }
    Ok(state)
}

/// The trained predictor (from the run's checkpoint) on a plain device.
pub fn load(cfg: &AttrConfig) -> Result<(AttrNet, Labels)> {
    let labels = Labels::load(&cfg.labels)?;
    let p = cfg.out_dir.join("checkpoint").join("net.bpk");
    ensure!(p.is_file(), "no trained predictor at {}", p.display());
    let net = AttrNet::new(cfg.channels, labels.names.len(), &Device::flex()).load_file(p);
    Ok((net, labels))
}
