//! InterGAN-style face attribute editing (issue 16) at 64 px.
//!
//! One generator does both tasks, editing and reconstruction, and they interact through
//! it: the attribute change `d` (asked minus present) drives a style translation of the
//! bottleneck's feature statistics (per-channel scale and shift, exactly the identity at
//! `d = 0`) and a conditional translation (residual blocks that see `d` at every place), so
//! reconstruction (`d = 0`) trains the content path every edit runs through. There are no
//! encoder-decoder skip connections (they would carry the old attribute through); a
//! high-frequency compensation module adds the input's detail above the bottleneck's band
//! back through a learned gate, which closes where the edit paints something new.
//!
//! The model's inputs: `input` `[batch, 3, 64, 64]` RGB in [0, 1] (FFHQ-aligned crop) and
//! `attributes` `[batch, n, 1, 1]`, one value per editable attribute in [-1, 1]: +1 add it,
//! -1 remove it, 0 keep the face as it is (fractions: partial edits). What is present now
//! comes from the frozen attribute predictor inside the graph, so callers pass only what
//! they ask for.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::attributes::{bce_logits, labels_tensor, load_predictor, AttrNet, Labels};
use crate::config::warmup_cosine;
use crate::data::{CropSet, Split};
use crate::image::{from_tensor, grid, to_tensor, Img};
use crate::loss;
use crate::model::{area_down, bilinear, conv, conv_small, lrelu, pixel_shuffle};
use crate::train::{append_csv, ema_update, flip, step_rng, Ckpt};

/// A run of the editor (TOML).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EditConfig {
    pub name: String,
    /// Aligned 64 px crops (`prepare --size 64` of `celeba-10k`).
    pub cache: PathBuf,
    /// `celeba-10k-attributes.txt`.
    pub labels: PathBuf,
    pub out_dir: PathBuf,
    /// The trained attribute predictor (`net.bpk` + `config.toml`): what is present now,
    /// inside the graph, and the guide's classification of the edit in training.
    pub predictor: PathBuf,
    /// A second predictor, trained apart (another seed and widths), that judges the edits in
    /// `edit-report`: the guide's own verdict would flatter an editor trained against it.
    /// Defaults to `predictor`.
    #[serde(default)]
    pub judge: Option<PathBuf>,
    /// The editable attributes, in the order of the model's `attributes` input (CelebA
    /// spelling).
    pub attributes: Vec<String>,
    /// Attributes of which at most one is present (hair colours): asking for one removes
    /// the others.
    #[serde(default)]
    pub exclusive: Vec<String>,
    pub seed: u64,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub warmup_steps: usize,
    /// Encoder widths at 64, 32 and 16 px.
    pub channels: [usize; 3],
    /// Translation blocks at 16 px.
    pub blocks: usize,
    pub d_channels: usize,
    /// Loss weights (AttGAN's balance): reconstruction L1, attribute classification by the
    /// discriminator's head, adversarial (least squares).
    pub rec_weight: f64,
    pub cls_weight: f64,
    pub adv_weight: f64,
    /// Classification of the edit by the frozen predictor (the guide), read from the edit
    /// averaged down to 32 px and back so that it answers to what a face shows, not to
    /// pixel patterns: the discriminator's head, learned from scratch, gave too weak a
    /// signal (0.3 % of edits succeeded after 1,500 steps).
    #[serde(default)]
    pub guide_weight: f64,
    /// L1 between the edit and its input: the smallest change that does what is asked.
    /// Without it the guide was satisfied by tinting the whole picture (black hair: a blue
    /// cast everywhere) and blurring the face.
    #[serde(default)]
    pub change_weight: f64,
    /// Share of samples asked for no change (they train the edit path's identity at d = 0
    /// besides the reconstruction pass every sample gets).
    pub keep_prob: f64,
    pub ema_decay: f64,
    pub checkpoint_every: usize,
    pub log_every: usize,
}

impl EditConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Positions of the editable attributes in the predictor's (the label file's) order.
    pub fn indices(&self, names: &[String]) -> Result<Vec<usize>> {
        positions(&self.attributes, names)
    }
}

/// Where each of `wanted` is in `names`.
fn positions(wanted: &[String], names: &[String]) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|a| names.iter().position(|n| n == a).with_context(|| format!("no attribute '{a}' among {names:?}")))
        .collect()
}

/// Per-channel mean and standard deviation over the spatial axes, `[b, c, 1, 1]` each
/// (global average pooling: the reduction the exporter lowers).
fn stats(h: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let mu = adaptive_avg_pool2d(h.clone(), [1, 1]);
    let c = h - mu.clone();
    let var = adaptive_avg_pool2d(c.clone() * c, [1, 1]);
    (mu, var.add_scalar(1e-5).sqrt())
}

fn no_bias(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1])
        .with_bias(false)
        .with_initializer(burn::nn::Initializer::Uniform { min: -0.01, max: 0.01 })
        .init(device)
}

/// One translation block: the style translation (the features' statistics moved by the
/// attribute change) and a conditional residual that sees the change at every place.
#[derive(Module, Debug)]
pub struct TranslateBlock {
    scale: Conv2d,
    shift: Conv2d,
    c1: Conv2d,
    c2: Conv2d,
}

impl TranslateBlock {
    fn new(c: usize, n: usize, device: &Device) -> Self {
        Self {
            scale: no_bias(n, c, device),
            shift: no_bias(n, c, device),
            c1: conv(c + n, c, 3, 1, device),
            c2: conv_small(c, c, 3, 0.3, device),
        }
    }

    fn forward(&self, h: Tensor<4>, d: Tensor<4>) -> Tensor<4> {
        let [_, _, hh, ww] = h.dims();
        let (mu, sd) = stats(h.clone());
        // identity at d = 0: the convolutions have no bias
        let h = (h - mu.clone()) * (self.scale.forward(d.clone()).add_scalar(1.0))
            + mu
            + self.shift.forward(d.clone()) * sd;
        let dmap = interpolate(d, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([hh, ww]));
        let r = self.c2.forward(lrelu(self.c1.forward(Tensor::cat(vec![h.clone(), dmap], 1))));
        h + r
    }
}

/// The editing generator; see the module docs.
#[derive(Module, Debug)]
pub struct EditNet {
    predictor: AttrNet,
    /// Which predictor outputs are the editable attributes (a constant).
    pick: Vec<usize>,
    e0: Conv2d,
    e1: Conv2d,
    e2: Conv2d,
    blocks: Vec<TranslateBlock>,
    u2: Conv2d,
    u1: Conv2d,
    f0: Conv2d,
    out: Conv2d,
    gate: Conv2d,
}

impl EditNet {
    pub fn new(cfg: &EditConfig, predictor: AttrNet, pick: Vec<usize>, device: &Device) -> Self {
        let [c0, c1, c2] = cfg.channels;
        let n = pick.len();
        Self {
            predictor,
            pick,
            e0: conv(3, c0, 3, 1, device),
            e1: conv(c0, c1, 3, 2, device),
            e2: conv(c1, c2, 3, 2, device),
            blocks: (0..cfg.blocks).map(|_| TranslateBlock::new(c2, n, device)).collect(),
            u2: conv(c2, 4 * c1, 3, 1, device),
            u1: conv(c1, 4 * c0, 3, 1, device),
            f0: conv(c0, c0, 3, 1, device),
            out: conv_small(c0, 3, 3, 0.1, device),
            gate: conv(c0, 3, 3, 1, device),
        }
    }

    /// Presence of the editable attributes now, in [-1, 1], from the frozen predictor.
    pub fn present(&self, x: Tensor<4>) -> Tensor<4> {
        sigmoid(self.logits(x)).mul_scalar(2.0).sub_scalar(1.0).detach()
    }

    /// The frozen predictor's logits of the editable attributes.
    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        let idx: Vec<i64> = self.pick.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [self.pick.len()]), &x.device());
        self.predictor.forward(x).select(1, idx)
    }

    /// The guide's logits of the editable attributes for `x` seen at 32 px (gradients flow
    /// to `x`, never to the frozen predictor).
    pub fn guide(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let seen = bilinear(area_down(x, 2), [h, w]);
        self.logits(seen)
    }

    /// `x` with the attributes `ask` asks for (see the module docs).
    pub fn forward(&self, x: Tensor<4>, ask: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let d = ask.clone() - self.present(x.clone()) * ask.abs();
        let f = lrelu(self.e0.forward(x.clone()));
        let f = lrelu(self.e1.forward(f));
        let mut b = lrelu(self.e2.forward(f));
        for blk in &self.blocks {
            b = blk.forward(b, d.clone());
        }
        let u = lrelu(pixel_shuffle(self.u2.forward(b), 2));
        let u = lrelu(pixel_shuffle(self.u1.forward(u), 2));
        let u = lrelu(self.f0.forward(u));
        // high-frequency compensation: the input's detail above the 16 px bottleneck's band,
        // let through where the gate is open
        let low = bilinear(area_down(x.clone(), 4), [h, w]);
        let detail = x.clone() - low.clone();
        let gate = sigmoid(self.gate.forward(u.clone()));
        low + self.out.forward(u) + gate * detail
    }
}

/// Patch realism and attribute classification (AttGAN's discriminator): four stride-2
/// stages to 4 x 4, a patch head and a pooled head with one logit per editable attribute.
#[derive(Module, Debug)]
pub struct EditDisc {
    convs: Vec<Conv2d>,
    adv: Conv2d,
    cls: Conv2d,
}

impl EditDisc {
    pub fn new(c: usize, n: usize, device: &Device) -> Self {
        Self {
            convs: vec![
                conv(3, c, 3, 2, device),
                conv(c, 2 * c, 3, 2, device),
                conv(2 * c, 4 * c, 3, 2, device),
                conv(4 * c, 8 * c, 3, 2, device),
            ],
            adv: conv(8 * c, 1, 3, 1, device),
            cls: conv(8 * c, n, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut h = x;
        for c in &self.convs {
            h = lrelu(c.forward(h));
        }
        (self.adv.forward(h.clone()), self.cls.forward(adaptive_avg_pool2d(h, [1, 1])))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EditState {
    pub step: usize,
    pub elapsed_s: f64,
}

/// What a training sample asks for: for one or two attributes the opposite of its label
/// (a hair colour asked for removes the others), or, with `keep_prob`, nothing.
pub fn ask_for<R: Rng>(label: &[f32], exclusive: &[usize], keep_prob: f64, rng: &mut R) -> Vec<f32> {
    let n = label.len();
    let mut ask = vec![0.0f32; n];
    if rng.gen_bool(keep_prob) {
        return ask;
    }
    let k = if rng.gen_bool(0.7) { 1 } else { 2 };
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    for &a in order.iter().take(k) {
        ask[a] = if label[a] > 0.5 { -1.0 } else { 1.0 };
        if ask[a] > 0.0 && exclusive.contains(&a) {
            for &o in exclusive.iter().filter(|&&o| o != a) {
                ask[o] = -1.0;
            }
        }
    }
    ask
}

/// The editor's predictor and the positions of its editable attributes.
fn predictor_for(cfg: &EditConfig, device: &Device) -> Result<(AttrNet, Vec<usize>, Labels)> {
    let labels = Labels::load(&cfg.labels)?;
    let pick = cfg.indices(&labels.names)?;
    Ok((load_predictor(&cfg.predictor, device)?, pick, labels))
}

/// Trains (or resumes) the editor; stops at `stop_at` or after `max_minutes` with a
/// checkpoint.
pub fn train(cfg: &EditConfig, opts: &crate::train::RunOptions) -> Result<EditState> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let (predictor, pick, labels) = predictor_for(cfg, &ad)?;
    let set = CropSet::load(&cfg.cache, Split::Train)?;
    ensure!(set.size == 64, "{}: the editor trains on 64 px crops, these are {}", cfg.cache.display(), set.size);
    let all = labels.for_set(&set)?;
    let y: Vec<Vec<f32>> = all.iter().map(|r| pick.iter().map(|&i| r[i]).collect()).collect();
    let exclusive = positions(&cfg.exclusive, &cfg.attributes)?;
    let n = pick.len();
    std::fs::create_dir_all(&cfg.out_dir)?;
    std::fs::write(cfg.out_dir.join("config.toml"), toml::to_string(cfg)?)?;
    let ck = Ckpt { dir: cfg.out_dir.join("checkpoint") };
    let adam = AdamConfig::new().with_beta_1(0.5).with_beta_2(0.99).with_epsilon(1e-8);
    let g = EditNet::new(cfg, predictor.no_grad(), pick, &ad);
    let ema = g.valid();
    let fresh = (g, EditDisc::new(cfg.d_channels, n, &ad), ema, adam.init(), adam.init());
    let ((mut g, mut d, mut ema, mut opt_g, mut opt_d), mut state): (_, EditState) = ck.resume(opts.resume, fresh)?;
    tracing::info!(
        step = state.step,
        params_g = g.num_params(),
        params_d = d.num_params(),
        train = set.len(),
        "training {} for {} steps",
        cfg.name,
        cfg.steps
    );
    let stop_at = opts.stop_at.unwrap_or(cfg.steps).min(cfg.steps);
    let (chunk, base) = (Instant::now(), state.elapsed_s);
    let mut acc = [0.0f64; 7];
    while state.step < stop_at {
        let step = state.step;
        let t0 = Instant::now();
        let mut rng = step_rng(cfg.seed, step);
        let idx: Vec<usize> = (0..cfg.batch_size).map(|_| rng.gen_range(0..set.len())).collect();
        let imgs: Vec<Img> =
            idx.iter().map(|&i| if rng.gen_bool(0.5) { flip(&set.get(i)) } else { set.get(i) }).collect();
        let asks: Vec<Vec<f32>> = idx.iter().map(|&i| ask_for(&y[i], &exclusive, cfg.keep_prob, &mut rng)).collect();
        // what the edited face should show: the asked value where asked, the label elsewhere
        let want: Vec<Vec<f32>> = idx
            .iter()
            .zip(&asks)
            .map(|(&i, a)| a.iter().zip(&y[i]).map(|(&a, &l)| if a != 0.0 { (a + 1.0) / 2.0 } else { l }).collect())
            .collect();
        let x = to_tensor(&imgs, &ad);
        let real_labels = labels_tensor(&idx.iter().map(|&i| &y[i]).collect::<Vec<_>>(), &ad);

        // generator: edit + reconstruction
        let ask_t = labels_tensor(&asks, &ad);
        let fake = g.forward(x.clone(), ask_t.clone());
        let rec = g.forward(x.clone(), Tensor::zeros([idx.len(), n, 1, 1], &ad));
        let (adv_f, cls_f) = d.forward(fake.clone());
        let l_rec = loss::l1(rec, x.clone());
        let l_cls = bce_logits(cls_f, labels_tensor(&want, &ad));
        let l_adv = loss::lsgan_g(adv_f);
        // the guide: asked values where asked, what it sees in the input elsewhere (two
        // predictor passes a step: skipped when the guide has no weight)
        let l_guide = if cfg.guide_weight > 0.0 {
            let seen = sigmoid(g.guide(x.clone())).detach();
            let asked = ask_t.clone().abs();
            let guide_want = asked.clone() * (ask_t + 1.0) / 2.0 + (asked.neg() + 1.0) * seen;
            bce_logits(g.guide(fake.clone()), guide_want)
        } else {
            Tensor::zeros([1], &ad)
        };
        let l_change = loss::l1(fake.clone(), x.clone());
        let total = l_rec.clone().mul_scalar(cfg.rec_weight)
            + l_cls.clone().mul_scalar(cfg.cls_weight)
            + l_adv.clone().mul_scalar(cfg.adv_weight)
            + l_guide.clone().mul_scalar(cfg.guide_weight)
            + l_change.clone().mul_scalar(cfg.change_weight);
        let lr = warmup_cosine(cfg.lr, cfg.lr_min, cfg.warmup_steps, cfg.steps, step);
        let grads = GradientsParams::from_grads(total.backward(), &g);
        g = opt_g.step(lr, g, grads);

        // discriminator: realism and the real faces' labels
        let (adv_r, cls_r) = d.forward(x);
        let (adv_f, _) = d.forward(fake.detach());
        let l_d = loss::lsgan_d(adv_r, adv_f) + bce_logits(cls_r, real_labels);
        let grads = GradientsParams::from_grads(l_d.clone().backward(), &d);
        d = opt_d.step(lr, d, grads);
        ema = ema_update(ema, &g.valid(), if step < cfg.warmup_steps { 0.0 } else { cfg.ema_decay });

        for (a, v) in acc.iter_mut().zip([l_rec, l_cls, l_adv, l_d, l_guide, l_change]) {
            *a += v.into_scalar::<f32>() as f64;
        }
        acc[6] += t0.elapsed().as_secs_f64();
        state.step += 1;
        state.elapsed_s = base + chunk.elapsed().as_secs_f64();
        if state.step % cfg.log_every == 0 {
            let m: Vec<f64> = acc.iter().map(|v| v / cfg.log_every as f64).collect();
            tracing::info!(
                step = state.step,
                rec = format!("{:.4}", m[0]),
                cls = format!("{:.4}", m[1]),
                adv = format!("{:.4}", m[2]),
                d = format!("{:.4}", m[3]),
                guide = format!("{:.4}", m[4]),
                change = format!("{:.4}", m[5]),
                s_per_step = format!("{:.2}", m[6]),
                "edit"
            );
            append_csv(
                &cfg.out_dir.join("losses.csv"),
                "step,rec,cls,adv,d,guide,change,s_per_step,elapsed_s",
                &format!(
                    "{},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.3},{:.1}",
                    state.step, m[0], m[1], m[2], m[3], m[4], m[5], m[6], state.elapsed_s
                ),
            )?;
            acc = [0.0; 7];
        }
        let out_of_time = opts.max_minutes.is_some_and(|m| chunk.elapsed().as_secs_f64() > m * 60.0);
        if state.step % cfg.checkpoint_every == 0 || state.step == stop_at || out_of_time {
            ck.save((&g, &d, &ema), &opt_g, &opt_d, &state)?;
        }
        if out_of_time {
            break;
        }
    }
    Ok(state)
}

/// The trained editor (the EMA generator of the run's checkpoint) on a plain device.
pub fn load(cfg: &EditConfig) -> Result<(EditNet, Labels)> {
    let device = Device::flex();
    let (predictor, pick, labels) = predictor_for(cfg, &device)?;
    let p = cfg.out_dir.join("checkpoint").join("ema.bpk");
    ensure!(p.is_file(), "no trained editor at {}", p.display());
    let net = EditNet::new(cfg, predictor, pick, &device);
    let net = net.try_load_file(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok((net, labels))
}

/// One batch of validation crops edited as `ask` says (the same ask for each).
pub fn edit_batch(net: &EditNet, imgs: &[Img], ask: &[f32]) -> Vec<Img> {
    edit_each(net, imgs, &vec![ask.to_vec(); imgs.len()])
}

/// Each crop edited as its own ask says.
fn edit_each(net: &EditNet, imgs: &[Img], asks: &[Vec<f32>]) -> Vec<Img> {
    let device = Device::flex();
    from_tensor(net.forward(to_tensor(imgs, &device), labels_tensor(asks, &device)).clamp(0.0, 1.0))
}

/// Exports the editor with inputs `input` `[batch, 3, 64, 64]` and `attributes`
/// `[batch, n, 1, 1]` and output `output`, the batch axis dynamic.
pub fn export(net: &EditNet, path: &Path) -> Result<()> {
    use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
    let device = Device::flex();
    let n = net.pick.len();
    let pair = |b: usize| (Tensor::<4>::zeros([b, 3, 64, 64], &device), Tensor::<4>::zeros([b, n, 1, 1], &device));
    let spec = || InputSpec::new([AxisSpec::dynamic("batch"), AxisSpec::Static, AxisSpec::Static, AxisSpec::Static]);
    let onnx = OnnxExporter::new()
        .export_dynamic(net, pair(5), pair(7), &[spec(), spec()], |m: &EditNet, (x, a): (Tensor<4>, Tensor<4>)| {
            m.forward(x, a)
        })
        .map_err(|e| anyhow::anyhow!("ONNX export: {e}"))?;
    let bytes = crate::export::rename_io(onnx.as_bytes(), &["input", "attributes"], &["output"])?;
    let bytes = crate::export::fuse_pixel_shuffles(&bytes)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// The predictor's decisions (logit > 0) for a batch, `[face][attribute]`.
fn decide(judge: &AttrNet, imgs: &[Img]) -> Result<Vec<Vec<bool>>> {
    let n = imgs.len();
    let v = judge
        .forward(to_tensor(imgs, &Device::flex()))
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let k = v.len() / n.max(1);
    Ok((0..n).map(|i| v[i * k..(i + 1) * k].iter().map(|&l| l > 0.0).collect()).collect())
}

/// Per face, an ask for the opposite of what the judge decided for attribute `a` of the
/// editor's `n` (`judged` its place among the judge's), nothing for the others.
fn opposite(decisions: &[Vec<bool>], judged: usize, a: usize, n: usize) -> Vec<Vec<f32>> {
    decisions
        .iter()
        .map(|d| {
            (0..n)
                .map(|k| {
                    if k != a {
                        0.0
                    } else if d[judged] {
                        -1.0
                    } else {
                        1.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Exports the editor to `onnx` (checked against burn through ONNX Runtime) and measures
/// it on the validation split, judged by the `judge` predictor (trained apart from the guide
/// the editor may have trained against; the guide's verdict is reported beside it): for
/// each editable attribute, asked for the opposite of what the predictor sees, how often
/// the predictor sees the asked value after the edit, and how often the other 39
/// attributes keep their decision; reconstruction PSNR when nothing is asked. Writes a
/// grid of `grid_faces` faces (input, then one row per attribute, then the
/// reconstruction) to `grid_path`, from `grid_cache`'s validation faces when given (e.g.
/// the CC BY London set, area-resized to 64 px: CelebA pictures stay out of the repository).
/// Returns a markdown table.
pub fn export_and_report(
    cfg: &EditConfig,
    onnx: &Path,
    grid_path: &Path,
    grid_faces: usize,
    grid_cache: Option<&Path>,
) -> Result<String> {
    let (net, labels) = load(cfg)?;
    export(&net, onnx)?;
    let val = CropSet::load(&cfg.cache, Split::Val)?;
    let judge_dir = cfg.judge.as_ref().unwrap_or(&cfg.predictor);
    let judge = load_predictor(judge_dir, &Device::flex())?;
    // no separate judge: the guide's verdict is the judge's, computed once
    let guide = (judge_dir != &cfg.predictor).then(|| load_predictor(&cfg.predictor, &Device::flex())).transpose()?;
    let pick = cfg.indices(&labels.names)?;
    let n = pick.len();

    // ONNX Runtime against burn on 4 crops, one attribute asked each
    let imgs: Vec<Img> = (0..4).map(|i| val.get(i)).collect();
    let asks: Vec<Vec<f32>> = (0..4).map(|i| (0..n).map(|a| if a == i % n { 1.0 } else { 0.0 }).collect()).collect();
    let device = Device::flex();
    let want = net
        .forward(to_tensor(&imgs, &device), labels_tensor(&asks, &device))
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ort = crate::ortrt::OrtModel::load(onnx, 1)?;
    let (_, got) =
        ort.run_two(([4, 3, 64, 64], crate::image::to_nchw(&imgs)), ("attributes", [4, n, 1, 1], asks.concat()))?;
    let diff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    ensure!(diff < 1e-3, "ONNX Runtime differs from burn by {diff}");

    let (mut success, mut kept, mut asked) = (vec![0usize; n], vec![0usize; n], vec![0usize; n]);
    let mut guide_success = vec![0usize; n];
    let mut kept_each = vec![0.0f64; n];
    let (mut psnr, mut count, mut rec_kept) = (0.0f64, 0usize, 0.0f64);
    let mut rows: Vec<Vec<Img>> = vec![Vec::new(); n + 2];
    for start in (0..val.len()).step_by(50) {
        let batch: Vec<Img> = (start..(start + 50).min(val.len())).map(|i| val.get(i)).collect();
        let before = decide(&judge, &batch)?;
        let rec = edit_batch(&net, &batch, &vec![0.0; n]);
        let after_rec = decide(&judge, &rec)?;
        for ((r, b), (d0, d1)) in rec.iter().zip(&batch).zip(before.iter().zip(&after_rec)) {
            psnr += crate::metrics::psnr_y(r, b, 0);
            rec_kept += d0.iter().zip(d1).filter(|(x, y)| x == y).count() as f64 / d0.len() as f64;
            count += 1;
        }
        if start == 0 {
            rows[0] = batch.iter().take(grid_faces).cloned().collect();
            rows[n + 1] = rec.iter().take(grid_faces).cloned().collect();
        }
        for a in 0..n {
            let out = edit_each(&net, &batch, &opposite(&before, pick[a], a, n));
            let after = decide(&judge, &out)?;
            // the guide's verdict on the same edits (asked: the opposite of the judge's decision)
            let by_guide = match &guide {
                Some(guide) => decide(guide, &out)?,
                None => after.clone(),
            };
            for (b, gf) in before.iter().zip(by_guide) {
                guide_success[a] += (gf[pick[a]] != b[pick[a]]) as usize;
            }
            for (b, af) in before.iter().zip(&after) {
                asked[a] += 1;
                if af[pick[a]] != b[pick[a]] {
                    success[a] += 1;
                }
                let others = (0..b.len()).filter(|&k| k != pick[a]);
                let same = others.clone().filter(|&k| af[k] == b[k]).count();
                let total = others.count();
                kept[a] += (same == total) as usize;
                kept_each[a] += same as f64 / total as f64;
            }
            if start == 0 {
                rows[a + 1] = out.into_iter().take(grid_faces).collect();
            }
        }
    }
    if let Some(cache) = grid_cache {
        let set = CropSet::load(cache, Split::Val)?;
        let faces: Vec<Img> = (0..grid_faces.min(set.len()))
            .map(|i| {
                set.get(i * set.len() / grid_faces.max(1)).resize(64, 64, opencv::imgproc::INTER_AREA).map(Img::clamp)
            })
            .collect::<Result<_>>()?;
        let before = decide(&judge, &faces)?;
        rows = vec![faces.clone()];
        for (a, &p) in pick.iter().enumerate().take(n) {
            rows.push(edit_each(&net, &faces, &opposite(&before, p, a, n)));
        }
        rows.push(edit_batch(&net, &faces, &vec![0.0; n]));
    }
    grid(&rows, 64, 2).save_png(grid_path)?;
    let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut md = format!(
        "ONNX Runtime vs burn: max |difference| {diff:.2e} on 4 crops. Validation: {} faces; judge: the \
         attribute predictor `{}`; guide (the predictor the editor trained against, when `guide_weight` > 0): \
         `{}`.\n\n| asked: the opposite of what the judge sees | edit success (judge) | edit success (guide) | \
         other 39 attributes kept (mean) | all 39 kept |\n| --- | ---: | ---: | ---: | ---: |\n",
        val.len(),
        name(judge_dir),
        name(&cfg.predictor)
    );
    for a in 0..n {
        let k = asked[a] as f64;
        md += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            cfg.attributes[a],
            success[a] as f64 / k,
            guide_success[a] as f64 / k,
            kept_each[a] / k,
            kept[a] as f64 / k
        );
    }
    let all = asked.iter().sum::<usize>() as f64;
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / all;
    md += &format!(
        "| **mean** | **{:.3}** | **{:.3}** | **{:.3}** | **{:.3}** |\n",
        mean(&success),
        mean(&guide_success),
        kept_each.iter().sum::<f64>() / all,
        mean(&kept)
    );
    md += &format!(
        "\nNothing asked (reconstruction): PSNR {:.2} dB (luma) over the {count} faces; the judge's 40 \
         decisions kept {:.3} of the time.\n",
        psnr / count as f64,
        rec_kept / count as f64
    );
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ortrt::OrtModel;
    use burn::tensor::Distribution;

    fn tiny() -> (EditConfig, EditNet) {
        let cfg = EditConfig {
            name: "t".into(),
            cache: "c".into(),
            labels: "l".into(),
            out_dir: "o".into(),
            predictor: "p".into(),
            judge: None,
            attributes: vec!["A".into(), "B".into(), "C".into()],
            exclusive: vec![],
            seed: 1,
            batch_size: 2,
            steps: 1,
            lr: 1e-3,
            lr_min: 1e-5,
            warmup_steps: 0,
            channels: [8, 8, 8],
            blocks: 1,
            d_channels: 4,
            rec_weight: 1.0,
            cls_weight: 1.0,
            adv_weight: 1.0,
            guide_weight: 1.0,
            change_weight: 1.0,
            keep_prob: 0.0,
            ema_decay: 0.0,
            checkpoint_every: 1,
            log_every: 1,
        };
        let device = Device::flex();
        device.seed(3);
        let net = EditNet::new(&cfg, AttrNet::new([8, 8, 8, 8], 10, &device), vec![7, 2, 4], &device);
        (cfg, net)
    }

    #[test]
    fn asking_for_nothing_changes_no_translation_and_a_change_does() {
        let (_, net) = tiny();
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let zero = Tensor::<4>::zeros([2, 3, 1, 1], &device);
        let asked =
            Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0, -1.0, 0.0], [2, 3, 1, 1]), &device);
        let keep = net.forward(x.clone(), zero);
        let edit = net.forward(x, asked);
        let diff = (keep - edit).abs().max().into_scalar::<f32>();
        assert!(diff > 1e-5, "an asked change must reach the output ({diff})");
    }

    #[test]
    fn export_matches_burn_through_ort_with_both_inputs() {
        let (_, net) = tiny();
        let device = Device::flex();
        let path = std::env::temp_dir().join(format!("faceenhance-train-{}-edit.onnx", std::process::id()));
        export(&net, &path).unwrap();
        let mut ort = OrtModel::load(&path, 1).unwrap();
        for batch in [1usize, 3] {
            let x = Tensor::<4>::random([batch, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
            let a = Tensor::<4>::random([batch, 3, 1, 1], Distribution::Uniform(-1.0, 1.0), &device);
            let ours = net.forward(x.clone(), a.clone()).into_data().try_to_vec::<f32>().unwrap();
            let xs = x.into_data().try_to_vec::<f32>().unwrap();
            let av = a.into_data().try_to_vec::<f32>().unwrap();
            let (shape, theirs) = ort.run_two(([batch, 3, 64, 64], xs), ("attributes", [batch, 3, 1, 1], av)).unwrap();
            assert_eq!(shape, vec![batch, 3, 64, 64]);
            let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max <= 1e-4, "batch {batch}: max abs diff {max}");
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_training_ask_flips_one_or_two_labels_and_a_hair_colour_removes_the_others() {
        let mut rng = step_rng(1, 0);
        let label = [0.0f32, 1.0, 0.0, 0.0];
        for _ in 0..200 {
            let ask = ask_for(&label, &[0, 1, 2], 0.1, &mut rng);
            let asked: Vec<usize> = (0..4).filter(|&i| ask[i] != 0.0).collect();
            for &i in &asked {
                // never asks for what is there already, except removing the other hair colours
                assert!(ask[i] == if label[i] > 0.5 { -1.0 } else { 1.0 } || (i < 3 && ask[i] == -1.0), "{ask:?}");
            }
            if (0..3).any(|i| ask[i] == 1.0) {
                assert_eq!((0..3).filter(|&i| ask[i] == 1.0).count(), 1, "one hair colour at a time: {ask:?}");
                assert!((0..3).all(|i| ask[i] != 0.0), "the other hair colours removed: {ask:?}");
            }
        }
    }
}
