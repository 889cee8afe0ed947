//! The SRGAN-style super-resolution generator: residual blocks at the input's resolution,
//! pixel-shuffle x2 stages, a learned residual over the bilinear enlargement.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nets::blocks::{bilinear, conv, conv_small, lrelu, pixel_shuffle, ResBlock};

/// Shape of an SRGAN-style generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SrConfig {
    pub channels: usize,
    pub blocks: usize,
    /// 2, 4 or 8.
    pub scale: usize,
}

impl Default for SrConfig {
    fn default() -> Self {
        Self { channels: 48, blocks: 6, scale: 4 }
    }
}

/// SRGAN-style residual generator (no batch norm) with pixel-shuffle x2 stages; the output
/// is a learned residual over bilinear up-sampling of the input.
#[derive(Module, Debug)]
pub struct SrNet {
    head: Conv2d,
    body: Vec<ResBlock>,
    body_tail: Conv2d,
    ups: Vec<Conv2d>,
    tail: Conv2d,
    scale: usize,
}

impl SrNet {
    pub fn new(cfg: &SrConfig, device: &Device) -> Self {
        assert!(matches!(cfg.scale, 2 | 4 | 8), "scale must be 2, 4 or 8");
        let c = cfg.channels;
        let stages = cfg.scale.trailing_zeros() as usize;
        Self {
            head: conv(3, c, 3, 1, device),
            body: (0..cfg.blocks).map(|_| ResBlock::new(c, device)).collect(),
            body_tail: conv(c, c, 3, 1, device),
            ups: (0..stages).map(|_| conv(c, 4 * c, 3, 1, device)).collect(),
            tail: conv_small(c, 3, 3, 0.1, device),
            scale: cfg.scale,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let base = bilinear(x.clone(), [h * self.scale, w * self.scale]);
        let f = lrelu(self.head.forward(x));
        let mut b = f.clone();
        for blk in &self.body {
            b = blk.forward(b);
        }
        let mut u = self.body_tail.forward(b) + f;
        for up in &self.ups {
            u = lrelu(pixel_shuffle(up.forward(u), 2));
        }
        base + self.tail.forward(u)
    }
}
