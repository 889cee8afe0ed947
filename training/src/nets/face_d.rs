//! The face discriminators (issue 29): light trainable heads on the frozen face net's
//! stages (Projected GAN, Sauer et al. 2021: the discriminator sees from step 0 instead of
//! learning to see on a 2-core CPU) and GFPGAN's eye and mouth discriminators. What they
//! see is cut by `losses::face`; their step is `train::face_phase`.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use crate::nets::blocks::{conv, lrelu};

/// Channels of the trunk's maps the losses and heads use: the stem (72 px at the 150 px
/// view) and the first three stages (35, 17 and 8 px).
pub const STAGE_CHANNELS: [usize; 4] = [32, 32, 64, 128];

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
