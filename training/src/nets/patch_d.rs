//! The patch discriminator of the generators' GAN phase and of the degradation GAN; it
//! returns its feature maps too (feature matching).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use crate::nets::blocks::{conv, lrelu};

/// Patch discriminator; returns the patch logits and the intermediate feature maps (for
/// feature matching).
#[derive(Module, Debug)]
pub struct PatchDiscriminator {
    convs: Vec<Conv2d>,
    out: Conv2d,
}

impl PatchDiscriminator {
    /// `c` base channels; two stride-2 stages (64 px -> 16 x 16 patch logits).
    pub fn new(c: usize, device: &Device) -> Self {
        Self::with_downs(c, 2, 3, device)
    }

    /// `c` base channels and `downs` (1 or 2) stride-2 stages: one for 16 px inputs
    /// (8 x 8 patch logits, the degradation GAN), two for 64 px.
    pub fn with_downs(c: usize, downs: usize, in_channels: usize, device: &Device) -> Self {
        assert!(matches!(downs, 1 | 2), "1 or 2 stride-2 stages");
        let s2 = if downs == 2 { 2 } else { 1 };
        Self {
            convs: vec![
                conv(in_channels, c, 3, 1, device),
                conv(c, 2 * c, 3, 2, device),
                conv(2 * c, 4 * c, 3, s2, device),
                conv(4 * c, 4 * c, 3, 1, device),
            ],
            out: conv(4 * c, 1, 3, 1, device),
        }
    }

    /// A texture discriminator: two 3x3 and one 1x1 stride-1 stages, a 5 x 5 px receptive
    /// field and one logit per pixel. It judges local statistics (noise, blocking, colour
    /// bleeding), not faces: with few real images of one person, a discriminator that sees
    /// the whole 16 px face learns that person instead.
    pub fn local(c: usize, in_channels: usize, device: &Device) -> Self {
        Self {
            convs: vec![
                conv(in_channels, c, 3, 1, device),
                conv(c, 2 * c, 3, 1, device),
                conv(2 * c, 2 * c, 1, 1, device),
            ],
            out: conv(2 * c, 1, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Vec<Tensor<4>>) {
        let mut feats = Vec::with_capacity(self.convs.len());
        let mut h = x;
        for c in &self.convs {
            h = lrelu(c.forward(h));
            feats.push(h.clone());
        }
        (self.out.forward(h), feats)
    }
}
