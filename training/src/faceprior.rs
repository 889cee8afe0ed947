//! What a face network knows, put into training (issue 29): the frozen dlib face ResNet
//! (`facerec`) gives an identity loss (descriptor distance to the truth), a perceptual loss
//! (its early stages, which see eyes, lashes and lips), and the trunk of a Projected-GAN
//! discriminator (Sauer et al. 2021: light trainable heads on frozen pretrained features,
//! so the discriminator sees from step 0 instead of learning to see on a 2-core CPU).
//! Beside it, GFPGAN's facial-component discriminators on the eyes and the mouth, cut at
//! their fixed places in the FFHQ-aligned crop, and DiffAugment (Zhao et al. 2020) on
//! everything a discriminator sees.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use rand::Rng;

use crate::facerec::{self, FaceRecNet};
use crate::model::{conv, lrelu};

/// Channels of the trunk's maps the losses and heads use: the stem (72 px at the 150 px
/// view) and the first three stages (35, 17 and 8 px).
pub const STAGE_CHANNELS: [usize; 4] = [32, 32, 64, 128];

/// The eyes' and the mouth's boxes in an FFHQ-aligned crop (x0, y0, w, h as fractions of
/// its side), around the template's points: eyes at (0.377, 0.469) and (0.623, 0.469), mouth
/// corners at y 0.725, 0.22 apart.
pub const LEFT_EYE: [f32; 4] = [0.297, 0.399, 0.16, 0.14];
pub const RIGHT_EYE: [f32; 4] = [0.543, 0.399, 0.16, 0.14];
pub const MOUTH: [f32; 4] = [0.36, 0.645, 0.28, 0.16];
/// Region `[x0, y0, w, h]` (fractions) of a batch of square crops, at the crop's own
/// resolution (a resize would blur the lashes and lip lines the discriminator should judge).
pub fn region(x: Tensor<4>, r: [f32; 4]) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let x0 = ((r[0] * w as f32).round() as usize).min(w - 1);
    let y0 = ((r[1] * h as f32).round() as usize).min(h - 1);
    let rw = ((r[2] * w as f32).round() as usize).clamp(1, w - x0);
    let rh = ((r[3] * h as f32).round() as usize).clamp(1, h - y0);
    x.slice([0..b, 0..c, y0..y0 + rh, x0..x0 + rw])
}

/// Both eyes of a batch, the right one mirrored, stacked on the batch axis (one eye
/// discriminator learns both).
pub fn eyes(x: Tensor<4>) -> Tensor<4> {
    let l = region(x.clone(), LEFT_EYE);
    let r = region(x, RIGHT_EYE).flip([3]);
    Tensor::cat(vec![l, r], 0)
}

pub fn mouth(x: Tensor<4>) -> Tensor<4> {
    region(x, MOUTH)
}

/// DiffAugment's translation policy, differentiable and per sample: a shift of up to
/// `shift` of the side with zeros coming in (drawn apart for real and fake batches). Its
/// colour policy is left out: contrast x[0.5, 1.5] scales the frozen stem's maps by as much
/// as a sigma-1 blur changes them (0.145), hiding the one cue a restorer's output differs
/// by; with it both discriminators sat at chance (0.52-0.54) for 300 steps.
pub fn diff_augment<R: Rng>(x: Tensor<4>, shift: f32, rng: &mut R) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let max = (shift * h.min(w) as f32).round() as i64;
    if max == 0 {
        return x;
    }
    // pad by `max` on every side, then each sample cuts its own window
    let m = max as usize;
    let zr = Tensor::<4>::zeros([b, c, m, w], &device);
    let xp = Tensor::cat(vec![zr.clone(), x, zr], 2);
    let zc = Tensor::<4>::zeros([b, c, h + 2 * m, m], &device);
    let xp = Tensor::cat(vec![zc.clone(), xp, zc], 3);
    let parts: Vec<Tensor<4>> = (0..b)
        .map(|i| {
            let (dy, dx) =
                ((m as i64 + rng.gen_range(-max..=max)) as usize, (m as i64 + rng.gen_range(-max..=max)) as usize);
            xp.clone().slice([i..i + 1, 0..c, dy..dy + h, dx..dx + w])
        })
        .collect();
    Tensor::cat(parts, 0)
}

/// A light head on one frozen stage: 3x3 conv, leaky ReLU, `depth - 1` strided 3x3 convs
/// (more capacity and a wider view: one layer stayed near chance on a real run), 1x1 conv
/// to one logit map.
#[derive(Module, Debug)]
pub struct Head {
    conv1: Conv2d,
    deeper: Vec<Conv2d>,
    conv2: Conv2d,
}

impl Head {
    fn new(cin: usize, c: usize, depth: usize, device: &Device) -> Self {
        Self {
            conv1: conv(cin, c, 3, 1, device),
            deeper: (1..depth.max(1)).map(|_| conv(c, c, 3, 2, device)).collect(),
            conv2: conv(c, 1, 1, 1, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = lrelu(self.conv1.forward(x));
        for c in &self.deeper {
            h = lrelu(c.forward(h));
        }
        self.conv2.forward(h)
    }
}

/// A small trainable discriminator for one facial component (GFPGAN's idea).
#[derive(Module, Debug)]
pub struct ComponentD {
    convs: Vec<Conv2d>,
    out: Conv2d,
}

impl ComponentD {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            convs: vec![conv(3, c, 3, 1, device), conv(c, 2 * c, 3, 2, device), conv(2 * c, 2 * c, 3, 2, device)],
            out: conv(2 * c, 1, 3, 1, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.mul_scalar(2.0).sub_scalar(1.0);
        for c in &self.convs {
            h = lrelu(c.forward(h));
        }
        self.out.forward(h)
    }
}

/// Everything trainable on the discriminator side of the face phase.
#[derive(Module, Debug)]
pub struct FaceDiscriminator {
    heads: Vec<Head>,
    eye: ComponentD,
    mouth: ComponentD,
}

impl FaceDiscriminator {
    pub fn new(head_channels: usize, head_depth: usize, component_channels: usize, device: &Device) -> Self {
        Self {
            heads: STAGE_CHANNELS.iter().map(|&c| Head::new(c, head_channels, head_depth, device)).collect(),
            eye: ComponentD::new(component_channels, device),
            mouth: ComponentD::new(component_channels, device),
        }
    }

    /// Logit maps of the projected heads, one per frozen stage, each stage divided by its
    /// scale (the mean |value| of real faces' maps): the raw maps are small enough that the
    /// heads barely moved (accuracy 0.53 after 300 steps).
    pub fn projected(&self, feats: &[Tensor<4>], scales: &[f32]) -> Vec<Tensor<4>> {
        self.heads.iter().zip(feats).zip(scales).map(|((h, f), s)| h.forward(f.clone().div_scalar(*s))).collect()
    }

    /// Logit maps of the eye and the mouth discriminators for a batch of aligned crops.
    pub fn components(&self, eyes: Tensor<4>, mouth: Tensor<4>) -> [Tensor<4>; 2] {
        [self.eye.forward(eyes), self.mouth.forward(mouth)]
    }
}

/// Hinge loss, discriminator side: mean relu(1 - D(real)) + mean relu(1 + D(fake)).
pub fn hinge_d(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean()
}

/// Hinge loss, generator side: -mean D(fake).
pub fn hinge_g(fake: Tensor<4>) -> Tensor<1> {
    fake.mean().neg()
}

/// Share of logits on the right side of zero (real > 0, fake < 0): the discriminator's
/// accuracy, logged from the first step.
pub fn accuracy(real: &Tensor<4>, fake: &Tensor<4>) -> f64 {
    let r = real.clone().greater_elem(0.0).float().mean().into_scalar::<f32>() as f64;
    let f = fake.clone().lower_equal_elem(0.0).float().mean().into_scalar::<f32>() as f64;
    (r + f) / 2.0
}

/// Mean over stages of the relative L1 between feature maps: |f(x) - f(y)| / mean|f(y)|,
/// so every stage counts alike whatever its scale (the targets' maps detached).
pub fn relative_feature_l1(fake: &[Tensor<4>], real: &[Tensor<4>]) -> Tensor<1> {
    let n = fake.len() as f64;
    let mut total: Option<Tensor<1>> = None;
    for (f, r) in fake.iter().zip(real) {
        let scale = r.clone().abs().mean().add_scalar(1e-6).detach();
        let t = (f.clone() - r.clone().detach()).abs().mean() / scale;
        total = Some(match total {
            Some(s) => s + t,
            None => t,
        });
    }
    total.expect("at least one stage").div_scalar(n)
}

/// The frozen face network with the view it is given (tight face box at `view` px).
pub struct FacePrior {
    pub net: FaceRecNet,
    pub view: usize,
}

/// One batch through the frozen net: the stem's and the five stages' maps, and the descriptors.
pub struct FaceCodes {
    pub stages: Vec<Tensor<4>>,
    pub descriptor: Tensor<2>,
}

impl FacePrior {
    pub fn new(net: FaceRecNet, view: usize) -> Self {
        Self { net, view }
    }

    /// The tight face view of FFHQ-aligned crops at the prior's side.
    pub fn view(&self, x: Tensor<4>) -> Tensor<4> {
        facerec::face_view(x, self.view)
    }

    /// Stages and descriptor of a batch of aligned crops.
    pub fn codes(&self, aligned: Tensor<4>) -> FaceCodes {
        let stages = self.net.features(self.view(aligned));
        let descriptor = self.net.head(stages.last().expect("five stages").clone());
        FaceCodes { stages, descriptor }
    }

    /// The first three stages of an (augmented) face view.
    pub fn trunk(&self, view: Tensor<4>) -> Vec<Tensor<4>> {
        self.net.early_features(view, STAGE_CHANNELS.len())
    }
}

/// The face phase of a training run: the frozen prior on the autodiff device, the
/// trainable discriminators with their optimizer, and the weights of each term.
pub struct FacePhase {
    prior: FacePrior,
    pub d: FaceDiscriminator,
    /// Running mean |value| of real faces' trunk maps, per stage (set from the first batch).
    scales: Vec<f32>,
    opt: burn::optim::ModuleOptimizer,
    cfg: crate::config::TrainConfig,
}

/// What the generator step leaves for the discriminator step (detached), and its numbers.
pub struct FaceStep {
    fake_trunk: Vec<Tensor<4>>,
    fake_parts: Option<[Tensor<4>; 2]>,
    pub perceptual: f64,
    pub identity: f64,
    pub adv: f64,
    pub parts_adv: f64,
}

/// The discriminator step's numbers: loss and accuracy of the projected heads and of the
/// component discriminators.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaceDStep {
    pub loss: f64,
    pub acc: f64,
    pub parts_loss: f64,
    pub parts_acc: f64,
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
}

fn mean_of(v: Vec<Tensor<1>>) -> Tensor<1> {
    let n = v.len() as f64;
    v.into_iter().reduce(|a, b| a + b).expect("non-empty").div_scalar(n)
}

impl FacePhase {
    /// The prior from `cfg.face_net` (or the set-up's cache) and fresh discriminators.
    pub fn new(cfg: &crate::config::TrainConfig, device: &Device) -> anyhow::Result<Self> {
        let dir = cfg.face_net.clone().unwrap_or_else(facerec::default_dir);
        let prior = FacePrior::new(FaceRecNet::load(&dir, device)?, cfg.face_view);
        let d = FaceDiscriminator::new(cfg.face_d_channels, cfg.face_d_depth, cfg.face_d_channels / 2, device);
        let opt = burn::optim::AdamConfig::new().with_beta_1(0.0).with_beta_2(0.99).with_epsilon(1e-8).init();
        Ok(Self { prior, d, opt, cfg: cfg.clone(), scales: Vec::new() })
    }

    /// The discriminators and their optimizer from a checkpoint folder, where saved.
    pub fn resume(mut self, dir: &std::path::Path) -> anyhow::Result<Self> {
        if dir.join("face_d.bpk").is_file() {
            self.d = self.d.load_file(dir.join("face_d.bpk"));
            if dir.join("opt_face_d.bpk").is_file() {
                self.opt = self.opt.load(dir.join("opt_face_d.bpk")).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            }
        }
        Ok(self)
    }

    pub fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        let e = |e: burn::store::RecordError| anyhow::anyhow!("{e:?}");
        self.d.clone().save_file(dir.join("face_d.bpk")).map_err(e)?;
        self.opt.save(dir.join("opt_face_d.bpk")).map_err(e)
    }

    fn augment_rng(&self, step: usize, salt: u64) -> rand_chacha::ChaCha8Rng {
        crate::train::step_rng(self.cfg.seed ^ salt, step)
    }

    /// The generator's face terms for output `fake` and truth `y` (aligned crops), weighted
    /// and summed, and what the discriminator step needs.
    pub fn g_loss(&mut self, fake: Tensor<4>, y: Tensor<4>, step: usize) -> (Option<Tensor<1>>, FaceStep) {
        if self.scales.is_empty() && self.cfg.face_d_weight > 0.0 {
            let real = self.prior.trunk(self.prior.view(y.clone()));
            self.scales = real.iter().map(|f| f.clone().abs().mean().into_scalar::<f32>().max(1e-6)).collect();
            tracing::info!(scales = ?self.scales, "scales of the trunk's maps on real faces");
        }
        let c = &self.cfg;
        let mut terms: Vec<Tensor<1>> = Vec::new();
        let mut st = FaceStep {
            fake_trunk: Vec::new(),
            fake_parts: None,
            perceptual: 0.0,
            identity: 0.0,
            adv: 0.0,
            parts_adv: 0.0,
        };
        if c.face_perceptual_weight > 0.0 || c.identity_weight > 0.0 {
            let fc = self.prior.codes(fake.clone());
            let rc = self.prior.codes(y.clone());
            if c.face_perceptual_weight > 0.0 {
                let n = STAGE_CHANNELS.len();
                let p = relative_feature_l1(&fc.stages[..n], &rc.stages[..n]);
                st.perceptual = scalar(&p);
                terms.push(p.mul_scalar(c.face_perceptual_weight));
            }
            if c.identity_weight > 0.0 {
                let d = facerec::distance(fc.descriptor, rc.descriptor.detach()).mean();
                st.identity = scalar(&d);
                terms.push(d.mul_scalar(c.identity_weight));
            }
        }
        if c.face_d_weight > 0.0 {
            let mut rng = self.augment_rng(step, 0xFACE);
            let view = diff_augment(self.prior.view(fake.clone()), c.augment_shift, &mut rng);
            let trunk = self.prior.trunk(view);
            let adv = mean_of(self.d.projected(&trunk, &self.scales).into_iter().map(hinge_g).collect());
            st.adv = scalar(&adv);
            terms.push(adv.mul_scalar(c.face_d_weight));
            st.fake_trunk = trunk.into_iter().map(|t| t.detach()).collect();
        }
        if c.component_d_weight > 0.0 {
            let mut rng = self.augment_rng(step, 0xE7E5);
            let (e, m) = (diff_augment(eyes(fake.clone()), 0.0, &mut rng), diff_augment(mouth(fake), 0.0, &mut rng));
            let [le, lm] = self.d.components(e.clone(), m.clone());
            let adv = (hinge_g(le) + hinge_g(lm)).div_scalar(2.0);
            st.parts_adv = scalar(&adv);
            terms.push(adv.mul_scalar(c.component_d_weight));
            st.fake_parts = Some([e.detach(), m.detach()]);
        }
        let total = terms.into_iter().reduce(|a, b| a + b);
        (total, st)
    }

    /// One discriminator step against truth `y` (aligned crops).
    pub fn d_step(&mut self, y: Tensor<4>, st: FaceStep, step: usize) -> FaceDStep {
        let (shift, lr) = (self.cfg.augment_shift, self.cfg.face_d_lr);
        let mut out = FaceDStep::default();
        let mut terms: Vec<Tensor<1>> = Vec::new();
        if !st.fake_trunk.is_empty() {
            let mut rng = self.augment_rng(step, 0x5EA1);
            let real = self.prior.trunk(diff_augment(self.prior.view(y.clone()), shift, &mut rng));
            let real: Vec<Tensor<4>> = real.into_iter().map(|t| t.detach()).collect();
            for (s, f) in self.scales.iter_mut().zip(&real) {
                *s = 0.99 * *s + 0.01 * f.clone().abs().mean().into_scalar::<f32>().max(1e-6);
            }
            let (lr, lf) = (self.d.projected(&real, &self.scales), self.d.projected(&st.fake_trunk, &self.scales));
            let acc: f64 = lr.iter().zip(&lf).map(|(r, f)| accuracy(r, f)).sum::<f64>() / lr.len() as f64;
            let loss = mean_of(lr.into_iter().zip(lf).map(|(r, f)| hinge_d(r, f)).collect());
            out.loss = scalar(&loss);
            out.acc = acc;
            terms.push(loss);
        }
        if let Some([fe, fm]) = st.fake_parts {
            let mut rng = self.augment_rng(step, 0x11A5);
            let (re, rm) = (diff_augment(eyes(y.clone()), 0.0, &mut rng), diff_augment(mouth(y), 0.0, &mut rng));
            let [lre, lrm] = self.d.components(re, rm);
            let [lfe, lfm] = self.d.components(fe, fm);
            out.parts_acc = (accuracy(&lre, &lfe) + accuracy(&lrm, &lfm)) / 2.0;
            let loss = (hinge_d(lre, lfe) + hinge_d(lrm, lfm)).div_scalar(2.0);
            out.parts_loss = scalar(&loss);
            terms.push(loss);
        }
        if let Some(total) = terms.into_iter().reduce(|a, b| a + b) {
            let grads = burn::optim::GradientsParams::from_grads(total.backward(), &self.d);
            // a module clone shares its tensors: no copy
            self.d = self.opt.step(lr, self.d.clone(), grads);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    /// The discriminator step learns: sharp against blurred eye and mouth crops, and the
    /// projected heads on random features of two different scales, are told apart within
    /// a few dozen steps (a broken step, or inputs too small for the heads to move, would
    /// leave them at chance, as restore-face-256 logged).
    #[test]
    fn the_discriminators_learn_to_tell_sharp_from_blurred() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let mut d = FaceDiscriminator::new(16, 1, 8, &device);
        let mut opt = AdamConfig::new().with_beta_1(0.0).with_beta_2(0.99).init();
        let (mut acc_parts, mut acc_heads) = (0.0, 0.0);
        for step in 0..60 {
            let sharp = Tensor::<4>::random([4, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
            let blurred = crate::learned::low_pass(sharp.clone(), 1.5);
            let [re, rm] = d.components(eyes(sharp.clone()), mouth(sharp.clone()));
            let [fe, fm] = d.components(eyes(blurred.clone()), mouth(blurred.clone()));
            let feats = |x: Tensor<4>, k: f64| -> Vec<Tensor<4>> {
                STAGE_CHANNELS
                    .iter()
                    .map(|&c| x.clone().slice([0..4, 0..1, 0..8, 0..8]).repeat_dim(1, c).mul_scalar(k))
                    .collect()
            };
            let scales = [0.05 * 0.5; STAGE_CHANNELS.len()];
            let (lr, lf) =
                (d.projected(&feats(sharp.clone(), 0.05), &scales), d.projected(&feats(blurred, 0.05), &scales));
            if step >= 50 {
                acc_parts += (accuracy(&re, &fe) + accuracy(&rm, &fm)) / 20.0;
                acc_heads += lr.iter().zip(&lf).map(|(r, f)| accuracy(r, f)).sum::<f64>() / (10.0 * lr.len() as f64);
            }
            let loss = hinge_d(re, fe)
                + hinge_d(rm, fm)
                + mean_of(lr.into_iter().zip(lf).map(|(r, f)| hinge_d(r, f)).collect());
            let grads = GradientsParams::from_grads(loss.backward(), &d);
            d = opt.step(1e-3, d, grads);
        }
        eprintln!("after 50 steps: components {acc_parts:.3}, projected heads {acc_heads:.3}");
        assert!(acc_parts > 0.8, "components {acc_parts:.3}");
        // measured 0.67 (raw maps of that size, without the scales: 0.50)
        assert!(acc_heads > 0.6, "projected heads {acc_heads:.3}");
    }
}
