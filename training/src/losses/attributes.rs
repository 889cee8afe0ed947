//! What the frozen attribute predictor gives training: a perceptual loss on its feature
//! maps, and the binary cross-entropy its attributes are learned (and asked for) with.

use std::path::Path;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::nets::attributes::{load_predictor, AttrNet};
use crate::nets::blocks::lrelu;

/// The predictor's stage outputs, frozen: the feature maps of a perceptual loss.
pub struct Features {
    net: AttrNet,
}

impl Features {
    /// The predictor in `dir` (`net.bpk` and the run's `config.toml`), its parameters
    /// frozen, on `device` (an autodiff one: gradients flow through it to the input).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Ok(Self { net: load_predictor(dir, device)?.no_grad() })
    }

    /// Mean L1 between the feature maps of `x` and `target` after each of the first three
    /// stages (1/2, 1/4, 1/8 resolution), summed; the target's are detached.
    pub fn loss(&self, x: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        let (mut a, mut b) = (x, target.detach());
        let mut total: Option<Tensor<1>> = None;
        for s in self.net.stages.iter().take(3) {
            a = lrelu(s.forward(a));
            b = lrelu(s.forward(b)).detach();
            let l = (a.clone() - b.clone()).abs().mean();
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.expect("three stages")
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets` (same shape), in the
/// numerically stable form max(x, 0) - x y + log(1 + exp(-|x|)).
pub fn bce_logits(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let soft = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    (logits.clone().clamp_min(0.0) - logits * targets + soft).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn bce_matches_its_definition() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![2.0f32, -1.0, 0.0, 30.0], [1, 4, 1, 1]), &device);
        let t = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 1.0, 0.0, 0.0], [1, 4, 1, 1]), &device);
        let got = bce_logits(x, t).into_scalar::<f32>() as f64;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let want = (-(sig(2.0)).ln() - sig(-1.0).ln() - (1.0 - sig(0.0)).ln() + 30.0) / 4.0;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
}
