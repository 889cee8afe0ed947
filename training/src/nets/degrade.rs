//! The learned high-to-low degradation generator (issue 3): clean RGB plus a noise channel
//! in, a real-looking low-resolution face out. Trained by `train::degrade_gan`; exported, it
//! is a source of training inputs (`data::learned`).

use std::path::Path;

use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nets::blocks::{area_down, conv, conv_small, lrelu, ResBlock};

/// Shape of the learned high-to-low degradation generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DegradeNetConfig {
    pub channels: usize,
    /// Residual blocks at the low resolution.
    pub blocks: usize,
    /// Down-scale factor: 2, 4 or 8 (one stride-2 convolution per factor of two).
    pub scale: usize,
}

impl Default for DegradeNetConfig {
    fn default() -> Self {
        Self { channels: 32, blocks: 2, scale: 4 }
    }
}

/// Learned high-to-low degradation (Bulat et al. 2018, Fritsche et al. 2019 flavour): the
/// input is a clean RGB face plus one channel of N(0, 1) noise at the same resolution
/// (`[B, 4, H, W]`), so the net can learn stochastic noise; stride-2 convolutions bring it
/// to `H / scale`, residual blocks follow, and the output is the area down-scaling of the
/// RGB channels plus a learned residual (which starts small: at initialisation the net is
/// close to a plain area down-scale). Not clamped.
#[derive(Module, Debug)]
pub struct DegradeNet {
    head: Conv2d,
    downs: Vec<Conv2d>,
    body: Vec<ResBlock>,
    tail: Conv2d,
    scale: usize,
}

impl DegradeNet {
    pub fn new(cfg: &DegradeNetConfig, device: &Device) -> Self {
        assert!(matches!(cfg.scale, 2 | 4 | 8), "scale must be 2, 4 or 8");
        let c = cfg.channels;
        let stages = cfg.scale.trailing_zeros() as usize;
        Self {
            head: conv(4, c, 3, 1, device),
            downs: (0..stages).map(|_| conv(c, c, 3, 2, device)).collect(),
            body: (0..cfg.blocks).map(|_| ResBlock::new(c, device)).collect(),
            tail: conv_small(c, 3, 3, 0.1, device),
            scale: cfg.scale,
        }
    }

    pub fn scale(&self) -> usize {
        self.scale
    }

    /// `x`: `[B, 4, H, W]` (RGB in [0, 1], then the noise channel); returns `[B, 3, H/s, W/s]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let idx = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &x.device());
        let base = area_down(x.clone().select(1, idx), self.scale);
        let mut h = lrelu(self.head.forward(x));
        for d in &self.downs {
            h = lrelu(d.forward(h));
        }
        for blk in &self.body {
            h = blk.forward(h);
        }
        base + self.tail.forward(h)
    }
}

/// Exports the generator: input `[batch, 4, clean_size, clean_size]`, output
/// `[batch, 3, clean_size / scale, clean_size / scale]`.
pub fn export(g: &DegradeNet, clean_size: usize, path: &Path) -> Result<()> {
    crate::onnx::export::export_module(g, DegradeNet::forward, [4, clean_size, clean_size], path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrade_net_shapes_and_starts_near_an_area_down_scale() {
        let device = Device::flex();
        device.seed(3);
        let g = DegradeNet::new(&DegradeNetConfig { channels: 8, blocks: 1, scale: 4 }, &device);
        let x = Tensor::<4>::random([2, 4, 32, 32], burn::tensor::Distribution::Uniform(0.0, 1.0), &device);
        let y = g.forward(x.clone());
        assert_eq!(y.dims(), [2, 3, 8, 8]);
        let idx = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &device);
        let base = area_down(x.select(1, idx), 4);
        let d = (y - base).abs().mean().into_scalar::<f32>();
        assert!(d > 0.0 && d < 0.05, "mean |G(x) - area(x)| = {d} at initialisation");
    }
}
