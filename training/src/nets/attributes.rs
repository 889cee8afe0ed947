//! The face attribute predictor (issue 16): the 40 CelebA attributes from one aligned face
//! crop, trained on clean and on degraded, low-resolution crops (CCTV and archive faces are
//! what the attribute-guided models will see), so it can supply attributes at inference
//! (users have none) and measure what an edit did.
//!
//! Input `input` `[batch, 3, 64, 64]` RGB in [0, 1] (FFHQ-aligned crop); output `output`
//! `[batch, 40, 1, 1]`: one logit per attribute in the order of the label file's first line
//! (sigmoid > 0.5: present). A plain strided CNN with global average pooling and a 1x1
//! head: every op is one burn-onnx exports with a dynamic batch axis.

//!
//! Its run config ([`AttrConfig`]) lives here with it: a trained predictor's folder
//! (`net.bpk` and the run's `config.toml`) is read back through it, by the attribute-guided
//! generator, the editor and the perceptual loss. The training loop is `train::attributes`.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::labels::Labels;
use crate::nets::blocks::{conv, lrelu};

/// A run of the predictor (TOML).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttrConfig {
    pub name: String,
    /// Aligned crops (`prepare --size 128` of `celeba-10k`): area-averaged to `size`. The
    /// core crops at twice `size` for inference, so the cache should be made at 2x `size`.
    pub cache: PathBuf,
    /// `celeba-10k-attributes.txt`: names on the first line, then `FILE +1/-1 x 40`.
    pub labels: PathBuf,
    pub out_dir: PathBuf,
    pub seed: u64,
    pub size: usize,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub warmup_steps: usize,
    /// Widths of the four stride-2 stages.
    pub channels: [usize; 4],
    /// Share of training crops degraded (blur, down-scale 2-8x and back, noise, JPEG).
    pub degrade_prob: f64,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// How many attributes the head gives (written by `train` from the label file), so the
    /// trained net can be rebuilt without the labels (a perceptual loss elsewhere).
    #[serde(default)]
    pub attributes: usize,
}

impl AttrConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The predictor: four stride-2 3x3 convolutions (64 -> 4 px), a 3x3 convolution, global
/// average pooling and a 1x1 convolution to one logit per attribute.
#[derive(Module, Debug)]
pub struct AttrNet {
    pub(crate) stages: Vec<Conv2d>,
    last: Conv2d,
    head: Conv2d,
}

impl AttrNet {
    pub fn new(channels: [usize; 4], attributes: usize, device: &Device) -> Self {
        let mut stages = Vec::new();
        let mut cin = 3;
        for c in channels {
            stages.push(conv(cin, c, 3, 2, device));
            cin = c;
        }
        Self { stages, last: conv(cin, cin, 3, 1, device), head: conv(cin, attributes, 1, 1, device) }
    }

    /// Logits `[batch, attributes, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for s in &self.stages {
            h = lrelu(s.forward(h));
        }
        let h = lrelu(self.last.forward(h));
        self.head.forward(adaptive_avg_pool2d(h, [1, 1]))
    }
}

/// The trained predictor in `dir` (`net.bpk` and the run's `config.toml`).
pub fn load_predictor(dir: &Path, device: &Device) -> Result<AttrNet> {
    let cfg = AttrConfig::load(&dir.join("config.toml"))?;
    let n = if cfg.attributes > 0 { cfg.attributes } else { Labels::load(&cfg.labels)?.names.len() };
    let p = dir.join("net.bpk");
    ensure!(p.is_file(), "no predictor weights at {}", p.display());
    AttrNet::new(cfg.channels, n, device).try_load_file(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_net_gives_one_logit_per_attribute() {
        let device = Device::flex();
        let net = AttrNet::new([8, 8, 8, 8], 40, &device);
        let out = net.forward(Tensor::<4>::zeros([2, 3, 64, 64], &device));
        assert_eq!(out.dims(), [2, 40, 1, 1]);
    }
}
