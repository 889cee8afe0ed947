//! Training of the attribute editor (issue 16; the nets are `nets::edit`): an edit and a
//! reconstruction pass per sample, the discriminator's realism and attribute heads, and the
//! frozen attribute predictor as the guide.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::augment::flip;
use crate::data::cache::{CropSet, Split};
use crate::data::labels::{labels_tensor, Labels};
use crate::image::{to_tensor, Img};
use crate::losses::attributes::bce_logits;
use crate::losses::{adversarial, pixel};
use crate::nets::attributes::{load_predictor, AttrNet};
use crate::nets::edit::{EditDisc, EditNet};
use crate::train::checkpoint::Ckpt;
use crate::train::ema::ema_update;
use crate::train::run::{append_csv, step_rng, warmup_cosine, RunOptions};

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
pub fn train(cfg: &EditConfig, opts: &RunOptions) -> Result<EditState> {
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
    let g = EditNet::new(cfg.channels, cfg.blocks, predictor.no_grad(), pick, &ad);
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
        let l_rec = pixel::l1(rec, x.clone());
        let l_cls = bce_logits(cls_f, labels_tensor(&want, &ad));
        let l_adv = adversarial::lsgan_g(adv_f);
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
        let l_change = pixel::l1(fake.clone(), x.clone());
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
        let l_d = adversarial::lsgan_d(adv_r, adv_f) + bce_logits(cls_r, real_labels);
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
    let net = EditNet::new(cfg.channels, cfg.blocks, predictor, pick, &device);
    let net = net.try_load_file(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok((net, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

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
