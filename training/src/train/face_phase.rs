//! The face phase of a generator run (issue 29): the face prior's generator terms
//! (perceptual, identity, and adversarial against the projected heads and the eye and mouth
//! discriminators, `losses::face`) and the face discriminators' own step with their
//! optimizer, saved beside the run's checkpoint (`face_d.bpk`, `opt_face_d.bpk`).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::losses::adversarial::{accuracy, hinge_d, hinge_g};
use crate::losses::face::{diff_augment, eyes, mouth, relative_feature_l1, FacePrior};
use crate::nets::face_d::{FaceDiscriminator, STAGE_CHANNELS};
use crate::nets::facerec::{self, FaceRecNet};
use crate::train::config::TrainConfig;

/// The face phase of a training run: the frozen prior on the autodiff device, the
/// trainable discriminators with their optimizer, and the weights of each term.
pub struct FacePhase {
    prior: FacePrior,
    pub d: FaceDiscriminator,
    /// Running mean |value| of real faces' trunk maps, per stage (set from the first batch).
    scales: Vec<f32>,
    opt: burn::optim::ModuleOptimizer,
    cfg: TrainConfig,
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
    pub fn new(cfg: &TrainConfig, device: &Device) -> anyhow::Result<Self> {
        let dir = cfg.face_net.clone().unwrap_or_else(facerec::default_dir);
        let prior = FacePrior::new(FaceRecNet::load(&dir, device)?, cfg.face_view, cfg.face_detail_view);
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
        crate::train::run::step_rng(self.cfg.seed ^ salt, step)
    }

    /// The generator's face terms for output `fake` and truth `y` (aligned crops), weighted
    /// and summed, and what the discriminator step needs.
    pub fn g_loss(&mut self, fake: Tensor<4>, y: Tensor<4>, step: usize) -> (Option<Tensor<1>>, FaceStep) {
        if self.scales.is_empty() && self.cfg.face_d_weight > 0.0 {
            let real = self.prior.trunk(self.prior.detail_view(y.clone()));
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
        let separate = self.prior.separate_detail();
        if c.face_perceptual_weight > 0.0 && separate {
            let f = self.prior.trunk(self.prior.detail_view(fake.clone()));
            let r = self.prior.trunk(self.prior.detail_view(y.clone()));
            let p = relative_feature_l1(&f, &r);
            st.perceptual = scalar(&p);
            terms.push(p.mul_scalar(c.face_perceptual_weight));
        }
        if (c.face_perceptual_weight > 0.0 && !separate) || c.identity_weight > 0.0 {
            let fc = self.prior.codes(fake.clone());
            let rc = self.prior.codes(y.clone());
            if c.face_perceptual_weight > 0.0 && !separate {
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
            let view = diff_augment(self.prior.detail_view(fake.clone()), c.augment_shift, &mut rng);
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
            let real = self.prior.trunk(diff_augment(self.prior.detail_view(y.clone()), shift, &mut rng));
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
            let blurred = crate::losses::frequency::low_pass(sharp.clone(), 1.5);
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
