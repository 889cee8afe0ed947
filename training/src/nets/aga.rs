//! AGA-GAN-style attribute-guided face hallucination (issue 16): an 8x generator whose
//! main stream up-samples the face while an attribute stream, seeded by the 40 face
//! attributes, learns where the facial parts those attributes describe lie, hands the main
//! stream attention maps at every scale and takes its features back (feedback); a U-Net
//! with channel and spatial (dual) attention refines the coarse result.
//!
//! Users have no attribute labels, so the attributes come from the frozen attribute
//! predictor (`nets::attributes::AttrNet`) run on the bilinear enlargement of the input, inside
//! the generator: the exported model keeps one image input and joins the ladder like any
//! super-resolution rung. `attributes = false` zeroes the attribute vector (same graph,
//! same parameters, no information): the ablation.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nets::attributes::{load_predictor, AttrNet};
use crate::nets::blocks::{bilinear, conv, conv_small, lrelu, pixel_shuffle, ResBlock};
use crate::nets::restore::{RestoreConfig, RestoreNet};

/// Shape of an attribute-guided generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AgaConfig {
    /// 2, 4 or 8: one guided up-sampling stage per factor 2.
    pub scale: usize,
    /// Main-stream channels at each stage's input resolution (one entry per stage), then
    /// the channels at the output resolution.
    pub channels: Vec<usize>,
    /// Attribute-stream channels (all stages).
    pub attr_channels: usize,
    /// Residual blocks per stage in the main stream.
    pub blocks: usize,
    /// The refining U-Net at the output resolution (a `RestoreNet`).
    pub refine: RestoreConfig,
    /// Whether the attribute vector reaches the attribute stream (false: the ablation).
    pub attributes: bool,
    /// The trained predictor (`net.bpk` + `config.toml`), loaded into a fresh run.
    pub predictor: PathBuf,
    /// Stage widths of the predictor and how many attributes it gives (its `config.toml`).
    pub predictor_channels: [usize; 4],
    pub predictor_attributes: usize,
}

impl Default for AgaConfig {
    fn default() -> Self {
        Self {
            scale: 8,
            channels: vec![64, 64, 32, 16],
            attr_channels: 16,
            blocks: 2,
            refine: RestoreConfig { channels: [16, 32, 64], blocks: 2, stem: 1, upscale: 1 },
            attributes: true,
            predictor: PathBuf::from("checkpoints/attributes-64"),
            predictor_channels: [32, 64, 128, 192],
            predictor_attributes: 40,
        }
    }
}

/// One guided stage: main-stream residual blocks, attention from the attribute stream
/// onto the main stream, feedback from the main stream into the attribute stream, then
/// both up-sampled 2x.
#[derive(Module, Debug)]
pub struct GuidedStage {
    blocks: Vec<ResBlock>,
    attend: Conv2d,
    feedback: Conv2d,
    up: Conv2d,
}

impl GuidedStage {
    fn new(c: usize, ca: usize, c_next: usize, blocks: usize, device: &Device) -> Self {
        Self {
            blocks: (0..blocks).map(|_| ResBlock::new(c, device)).collect(),
            attend: conv(c + ca, c, 3, 1, device),
            feedback: conv_small(c + ca, ca, 3, 0.3, device),
            up: conv(c, 4 * c_next, 3, 1, device),
        }
    }

    fn forward(&self, m: Tensor<4>, a: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut m = m;
        for b in &self.blocks {
            m = b.forward(m);
        }
        let att = sigmoid(self.attend.forward(Tensor::cat(vec![m.clone(), a.clone()], 1)));
        let m = m.clone() + m * att;
        let a = a.clone() + lrelu(self.feedback.forward(Tensor::cat(vec![a, m.clone()], 1)));
        let [_, _, h, w] = m.dims();
        let m = lrelu(pixel_shuffle(self.up.forward(m), 2));
        let a = interpolate(a, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]));
        (m, a)
    }
}

/// The attribute-guided generator; see the module docs.
#[derive(Module, Debug)]
pub struct AgaNet {
    predictor: AttrNet,
    /// Attribute vector -> per-channel descriptor weights.
    describe: Conv2d,
    /// Constant position grid -> where each descriptor channel lies (learned).
    place: Conv2d,
    mix: Conv2d,
    head: Conv2d,
    stages: Vec<GuidedStage>,
    tail: Conv2d,
    refine: RestoreNet,
    scale: usize,
    use_attributes: bool,
    /// Side of the predictor's input (64: what it was trained on).
    predictor_size: usize,
}

impl AgaNet {
    pub fn new(cfg: &AgaConfig, device: &Device) -> Self {
        assert!(matches!(cfg.scale, 2 | 4 | 8), "scale must be 2, 4 or 8");
        let stages = cfg.scale.trailing_zeros() as usize;
        assert_eq!(cfg.channels.len(), stages + 1, "channels: one width per stage and one for the output");
        let ca = cfg.attr_channels;
        Self {
            predictor: AttrNet::new(cfg.predictor_channels, cfg.predictor_attributes, device),
            describe: conv(cfg.predictor_attributes, ca, 1, 1, device),
            place: conv(2, ca, 3, 1, device),
            mix: conv(ca, ca, 3, 1, device),
            head: conv(3, cfg.channels[0], 3, 1, device),
            stages: (0..stages)
                .map(|k| GuidedStage::new(cfg.channels[k], ca, cfg.channels[k + 1], cfg.blocks, device))
                .collect(),
            tail: conv_small(cfg.channels[stages], 3, 3, 0.1, device),
            refine: RestoreNet::new(&cfg.refine, device),
            scale: cfg.scale,
            use_attributes: cfg.attributes,
            predictor_size: 64,
        }
    }

    /// The trained predictor's weights in place of the fresh ones.
    /// The shape must be the one the config names (`predictor_channels`, `predictor_attributes`):
    /// a resumed or exported run rebuilds the module from the config alone.
    pub fn with_predictor(mut self, dir: &Path, device: &Device) -> Result<Self> {
        let shape = |n: &AttrNet| n.num_params();
        let net = load_predictor(dir, device)?;
        anyhow::ensure!(
            shape(&net) == shape(&self.predictor),
            "{}: the predictor is not the shape the config gives (predictor_channels, predictor_attributes)",
            dir.display()
        );
        self.predictor = net;
        Ok(self)
    }

    /// Attribute probabilities `[batch, attributes, 1, 1]` of the input's bilinear
    /// enlargement to the predictor's size, detached (the predictor is frozen).
    pub fn attributes(&self, x: Tensor<4>) -> Tensor<4> {
        let s = self.predictor_size;
        let up = bilinear(x, [s, s]);
        // a frozen copy: with its parameters tracked, every step would leave an orphaned
        // autodiff graph of the predictor that no backward pass frees (12 GB by step 1,300)
        sigmoid(self.predictor.clone().no_grad().forward(up)).detach()
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let device = x.device();
        let mut attrs = self.attributes(x.clone());
        if !self.use_attributes {
            attrs = attrs.mul_scalar(0.0);
        }
        // the attribute stream's seed: the attribute vector's descriptors at learned places
        let grid: Vec<f32> = (0..h * w)
            .map(|p| -1.0 + 2.0 * ((p % w) as f32 + 0.5) / w as f32)
            .chain((0..h * w).map(|p| -1.0 + 2.0 * ((p / w) as f32 + 0.5) / h as f32))
            .collect();
        let grid = Tensor::<4>::from_data(TensorData::new(grid, [1, 2, h, w]), &device);
        let mut a = lrelu(self.mix.forward(lrelu(self.describe.forward(attrs) + self.place.forward(grid))));
        let mut m = lrelu(self.head.forward(x.clone()));
        for s in &self.stages {
            (m, a) = s.forward(m, a);
        }
        let base = bilinear(x, [h * self.scale, w * self.scale]);
        self.refine.forward(base + self.tail.forward(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::Distribution;

    fn small(attributes: bool) -> AgaConfig {
        AgaConfig {
            channels: vec![8, 8, 8, 8],
            attr_channels: 4,
            blocks: 1,
            refine: RestoreConfig { channels: [8, 8, 8], blocks: 1, stem: 1, upscale: 1 },
            predictor_channels: [8, 8, 8, 8],
            attributes,
            ..Default::default()
        }
    }

    fn weights<M: Module>(m: &M) -> Vec<f32> {
        let mut out = Vec::new();
        struct V<'a>(&'a mut Vec<f32>);
        impl burn::module::ModuleVisitor for V<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.extend(p.val().into_data().try_to_vec::<f32>().unwrap());
            }
        }
        m.visit(&mut V(&mut out));
        out
    }

    #[test]
    fn a_training_step_moves_the_generator_and_leaves_the_predictor_frozen() {
        let device = Device::flex().autodiff();
        let net = AgaNet::new(&small(true), &device);
        let (p0, m0) = (weights(&net.predictor), weights(&net.mix));
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Uniform(0.0, 1.0), &device);
        let y = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let out = net.forward(x);
        assert_eq!(out.dims(), [2, 3, 64, 64]);
        let grads = GradientsParams::from_grads((out - y).abs().mean().backward(), &net);
        let mut opt = AdamConfig::new().init();
        let net = opt.step(1e-2, net, grads);
        assert_eq!(weights(&net.predictor), p0, "the predictor must stay frozen");
        assert_ne!(weights(&net.mix), m0, "the attribute stream must learn");
    }

    #[test]
    fn the_ablation_ignores_the_attributes_the_full_model_uses_them() {
        let device = Device::flex();
        device.seed(5);
        let x = Tensor::<4>::random([1, 3, 8, 8], Distribution::Uniform(0.0, 1.0), &device);
        for (attributes, should_differ) in [(true, true), (false, false)] {
            device.seed(7);
            let a = AgaNet::new(&small(attributes), &device);
            // the same generator with another predictor: other attributes for the same face
            let mut b = a.clone();
            device.seed(8);
            b.predictor = AttrNet::new([8, 8, 8, 8], 40, &device);
            let d = (a.forward(x.clone()) - b.forward(x.clone())).abs().max().into_scalar::<f32>();
            assert_eq!(d > 1e-6, should_differ, "attributes {attributes}: output changed by {d}");
        }
    }
}
