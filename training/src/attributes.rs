//! The face attribute predictor (issue 16): the 40 CelebA attributes from one aligned face
//! crop, trained on clean and on degraded, low-resolution crops (CCTV and archive faces are
//! what the attribute-guided models will see), so it can supply attributes at inference
//! (users have none) and measure what an edit did.
//!
//! Input `input` `[batch, 3, 64, 64]` RGB in [0, 1] (FFHQ-aligned crop); output `output`
//! `[batch, 40, 1, 1]`: one logit per attribute in the order of the label file's first line
//! (sigmoid > 0.5: present). A plain strided CNN with global average pooling and a 1x1
//! head: every op is one burn-onnx exports with a dynamic batch axis.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::warmup_cosine;
use crate::data::{CropSet, Split};
use crate::degrade;
use crate::image::{to_tensor, Img};
use crate::model::{conv, lrelu};
use crate::train::{append_csv, flip, step_rng};

/// A run of the predictor (TOML).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttrConfig {
    pub name: String,
    /// Aligned crops (`prepare --size 128` of `celeba-10k`): area-averaged to `size`. The
    /// core crops at twice `size` for inference, so the cache should be made at 2x `size`.
    pub cache: PathBuf,
    /// `celeba-10k-attributes.txt`: names on the first line, then `FILE +1/-1 x 40`.
    pub labels: PathBuf,
    pub out_dir: PathBuf,
    pub seed: u64,
    pub size: usize,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub warmup_steps: usize,
    /// Widths of the four stride-2 stages.
    pub channels: [usize; 4],
    /// Share of training crops degraded (blur, down-scale 2-8x and back, noise, JPEG).
    pub degrade_prob: f64,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// How many attributes the head gives (written by `train` from the label file), so the
    /// trained net can be rebuilt without the labels (a perceptual loss elsewhere).
    #[serde(default)]
    pub attributes: usize,
}

impl AttrConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The label file: attribute names, and each file's labels as 1.0 / 0.0.
pub struct Labels {
    pub names: Vec<String>,
    pub by_file: HashMap<String, Vec<f32>>,
}

impl Labels {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines();
        let names: Vec<String> =
            lines.next().context("empty label file")?.split_whitespace().map(String::from).collect();
        ensure!(!names.is_empty(), "{}: no attribute names on the first line", path.display());
        let mut by_file = HashMap::new();
        for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let file = f.next().expect("non-empty line").to_string();
            let v: Vec<f32> = f
                .map(|s| match s {
                    "1" | "+1" => Ok(1.0),
                    "-1" => Ok(0.0),
                    other => bail!("line {}: label '{other}' is not +1 or -1", i + 2),
                })
                .collect::<Result<_>>()?;
            ensure!(v.len() == names.len(), "line {}: {} labels for {} attributes", i + 2, v.len(), names.len());
            by_file.insert(file, v);
        }
        Ok(Self { names, by_file })
    }

    /// The labels of each crop of `set`, in order (every crop must have them).
    pub fn for_set(&self, set: &CropSet) -> Result<Vec<Vec<f32>>> {
        set.names.iter().map(|n| self.by_file.get(n).cloned().with_context(|| format!("no labels for {n}"))).collect()
    }
}

/// The predictor: four stride-2 3x3 convolutions (64 -> 4 px), a 3x3 convolution, global
/// average pooling and a 1x1 convolution to one logit per attribute.
#[derive(Module, Debug)]
pub struct AttrNet {
    stages: Vec<Conv2d>,
    last: Conv2d,
    head: Conv2d,
}

impl AttrNet {
    pub fn new(channels: [usize; 4], attributes: usize, device: &Device) -> Self {
        let mut stages = Vec::new();
        let mut cin = 3;
        for c in channels {
            stages.push(conv(cin, c, 3, 2, device));
            cin = c;
        }
        Self { stages, last: conv(cin, cin, 3, 1, device), head: conv(cin, attributes, 1, 1, device) }
    }

    /// Logits `[batch, attributes, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for s in &self.stages {
            h = lrelu(s.forward(h));
        }
        let h = lrelu(self.last.forward(h));
        self.head.forward(adaptive_avg_pool2d(h, [1, 1]))
    }
}

/// The trained predictor in `dir` (`net.bpk` and the run's `config.toml`).
pub fn load_predictor(dir: &Path, device: &Device) -> Result<AttrNet> {
    let cfg = AttrConfig::load(&dir.join("config.toml"))?;
    let n = if cfg.attributes > 0 { cfg.attributes } else { Labels::load(&cfg.labels)?.names.len() };
    let p = dir.join("net.bpk");
    ensure!(p.is_file(), "no predictor weights at {}", p.display());
    AttrNet::new(cfg.channels, n, device).try_load_file(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// The predictor's stage outputs, frozen: the feature maps of a perceptual loss.
pub struct Features {
    net: AttrNet,
}

impl Features {
    /// The predictor in `dir` (`net.bpk` and the run's `config.toml`), its parameters
    /// frozen, on `device` (an autodiff one: gradients flow through it to the input).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Ok(Self { net: load_predictor(dir, device)?.no_grad() })
    }

    /// Mean L1 between the feature maps of `x` and `target` after each of the first three
    /// stages (1/2, 1/4, 1/8 resolution), summed; the target's are detached.
    pub fn loss(&self, x: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        let (mut a, mut b) = (x, target.detach());
        let mut total: Option<Tensor<1>> = None;
        for s in self.net.stages.iter().take(3) {
            a = lrelu(s.forward(a));
            b = lrelu(s.forward(b)).detach();
            let l = (a.clone() - b.clone()).abs().mean();
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.expect("three stages")
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets` (same shape), in the
/// numerically stable form max(x, 0) - x y + log(1 + exp(-|x|)).
pub fn bce_logits(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let soft = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    (logits.clone().clamp_min(0.0) - logits * targets + soft).mean()
}

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

/// One row of values per image as a `[batch, n, 1, 1]` tensor (labels, asked attributes).
pub(crate) fn labels_tensor<R: AsRef<[f32]>>(rows: &[R], device: &Device) -> Tensor<4> {
    let n = rows[0].as_ref().len();
    let data: Vec<f32> = rows.iter().flat_map(|r| r.as_ref().iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), n, 1, 1]), device)
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

/// Exports the predictor to `onnx`, checks ONNX Runtime against burn on validation crops,
/// and measures per-attribute accuracy on the validation split (clean, 4x and 8x down and
/// back up) next to always answering the training split's majority label: a markdown
/// table for the model card.
pub fn export_and_report(cfg: &AttrConfig, onnx: &Path) -> Result<String> {
    let (net, labels) = load(cfg)?;
    crate::export::export_module(&net, AttrNet::forward, [3, cfg.size, cfg.size], onnx)?;
    let val = CropSet::load(&cfg.cache, Split::Val)?;
    let train = CropSet::load(&cfg.cache, Split::Train)?;
    let (yv, yt) = (labels.for_set(&val)?, labels.for_set(&train)?);

    // ONNX Runtime against burn on 4 crops.
    let device = Device::flex();
    let mut rng = step_rng(7, 0);
    let imgs: Vec<Img> =
        (0..4).map(|i| make_input(&val.get(i), cfg.size, Input::Clean, &mut rng)).collect::<Result<_>>()?;
    let want: Vec<f32> =
        net.forward(to_tensor(&imgs, &device)).into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ort = crate::ortrt::OrtModel::load(onnx, 1)?;
    let (shape, got) = ort.run_raw([4, 3, cfg.size, cfg.size], crate::image::to_nchw(&imgs))?;
    ensure!(shape == [4, labels.names.len(), 1, 1], "ONNX output shape {shape:?}");
    let diff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    ensure!(diff < 1e-3, "ONNX Runtime differs from burn by {diff}");

    let columns = [
        ("clean", accuracy(&net, &val, &yv, cfg.size, Input::Clean)?),
        ("4x down", accuracy(&net, &val, &yv, cfg.size, Input::Down(4.0))?),
        ("8x down", accuracy(&net, &val, &yv, cfg.size, Input::Down(8.0))?),
    ];
    let n = labels.names.len();
    let majority: Vec<(bool, f64)> = (0..n)
        .map(|a| {
            let present = yt.iter().filter(|r| r[a] > 0.5).count() as f64 / yt.len() as f64;
            let guess = present > 0.5;
            let right = yv.iter().filter(|r| (r[a] > 0.5) == guess).count() as f64 / yv.len() as f64;
            (guess, right)
        })
        .collect();
    let mut md = format!(
        "ONNX Runtime vs burn: max |logit difference| {diff:.2e} on 4 crops. Validation: {} faces.\n\n\
         | attribute | clean | 4x down | 8x down | majority label (its accuracy) |\n| --- | ---: | ---: | ---: | ---: |\n",
        val.len()
    );
    for (a, name) in labels.names.iter().enumerate() {
        let (g, m) = majority[a];
        md += &format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {} ({m:.3}) |\n",
            columns[0].1[a],
            columns[1].1[a],
            columns[2].1[a],
            if g { "+1" } else { "-1" }
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let m: Vec<f64> = majority.iter().map(|x| x.1).collect();
    md += &format!(
        "| **mean** | **{:.3}** | **{:.3}** | **{:.3}** | ({:.3}) |\n",
        mean(&columns[0].1),
        mean(&columns[1].1),
        mean(&columns[2].1),
        mean(&m)
    );
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_matches_its_definition() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![2.0f32, -1.0, 0.0, 30.0], [1, 4, 1, 1]), &device);
        let t = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0, 0.0], [1, 4, 1, 1]), &device);
        let got = bce_logits(x, t).into_scalar::<f32>() as f64;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let want = (-(sig(2.0)).ln() - sig(-1.0).ln() - (1.0 - sig(0.0)).ln() + 30.0) / 4.0;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn labels_are_read_by_name_and_checked() {
        let dir = std::env::temp_dir().join(format!("attr-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("l.txt");
        std::fs::write(&p, "Smiling Male\na.jpg  1 -1\nb.jpg -1  1\n").unwrap();
        let l = Labels::load(&p).unwrap();
        assert_eq!(l.names, ["Smiling", "Male"]);
        assert_eq!(l.by_file["b.jpg"], [0.0, 1.0]);
        std::fs::write(&p, "Smiling Male\na.jpg 1\n").unwrap();
        assert!(format!("{:#}", Labels::load(&p).err().unwrap()).contains("1 labels for 2 attributes"));
    }

    #[test]
    fn the_net_gives_one_logit_per_attribute() {
        let device = Device::flex();
        let net = AttrNet::new([8, 8, 8, 8], 40, &device);
        let out = net.forward(Tensor::<4>::zeros([2, 3, 64, 64], &device));
        assert_eq!(out.dims(), [2, 40, 1, 1]);
    }
}
