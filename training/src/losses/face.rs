//! What a face network knows, put into losses (issue 29): the frozen dlib face ResNet
//! (`nets::facerec`) gives an identity loss (descriptor distance to the truth), a perceptual
//! loss (its early stages, which see eyes, lashes and lips), and the trunk the projected
//! discriminator's heads (`nets::face_d`) judge. GFPGAN's facial components, cut at their
//! fixed places in the FFHQ-aligned crop, and DiffAugment (Zhao et al. 2020) on everything
//! a discriminator sees. The phase that steps them in a run is `train::face_phase`.

use burn::tensor::Tensor;
use rand::Rng;

use crate::nets::face_d::STAGE_CHANNELS;
use crate::nets::facerec::{self, FaceRecNet};

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

/// The frozen face network with the views it is given: the tight face box at `view` px
/// (identity) and at `detail` px (perceptual loss and discriminator trunk).
pub struct FacePrior {
    pub net: FaceRecNet,
    pub view: usize,
    pub detail: usize,
}

/// One batch through the frozen net: the stem's and the five stages' maps, and the descriptors.
pub struct FaceCodes {
    pub stages: Vec<Tensor<4>>,
    pub descriptor: Tensor<2>,
}

impl FacePrior {
    /// `detail` 0 means the same side as `view`.
    pub fn new(net: FaceRecNet, view: usize, detail: usize) -> Self {
        Self { net, view, detail: if detail == 0 { view } else { detail } }
    }

    /// The tight face view of FFHQ-aligned crops at the prior's side.
    pub fn view(&self, x: Tensor<4>) -> Tensor<4> {
        facerec::face_view(x, self.view)
    }

    /// The face view the early stages judge detail in.
    pub fn detail_view(&self, x: Tensor<4>) -> Tensor<4> {
        facerec::face_view(x, self.detail)
    }

    /// Whether detail is judged on a view of its own (not the identity view).
    pub fn separate_detail(&self) -> bool {
        self.detail != self.view
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
