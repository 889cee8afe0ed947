//! Weight averaging: the exponential moving average of a generator that runs validate and
//! export, and ESRGAN's network interpolation between two checkpoints' weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Collects every float parameter (flattened) in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let v = param.val();
        let n = v.shape().num_elements();
        self.0.push(v.reshape([n]));
    }
}

/// `ema <- decay * ema + (1 - decay) * source`, parameter by parameter in visiting order.
struct EmaUpdate {
    src: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for EmaUpdate {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let src = self.src.next().expect("same module structure");
        let decay = self.decay;
        param.map(|t| {
            let dims = t.dims();
            t.mul_scalar(decay) + src.reshape(dims).mul_scalar(1.0 - decay)
        })
    }
}

pub fn ema_update<M: Module>(ema: M, current: &M, decay: f64) -> M {
    let mut c = Collect(Vec::new());
    current.visit(&mut c);
    ema.map(&mut EmaUpdate { src: c.0.into_iter(), decay })
}

/// ESRGAN's network interpolation: the weights `(1 - alpha) * base + alpha * other`, a
/// continuous dial between a fidelity model and its GAN fine-tune, without retraining.
pub fn interpolate<M: Module>(base: M, other: &M, alpha: f64) -> M {
    ema_update(base, other, 1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::generator::{Generator, GeneratorConfig};
    use crate::nets::restore::RestoreConfig;
    use burn::tensor::Device;

    #[test]
    fn interpolation_is_a_weighted_mean_of_the_two_sets_of_weights() {
        let device = Device::flex();
        let cfg = GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 });
        device.seed(1);
        let a = cfg.init(&device);
        device.seed(2);
        let b = cfg.init(&device);
        let flat = |m: &Generator| {
            let mut c = Collect(Vec::new());
            m.visit(&mut c);
            c.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect::<Vec<f32>>()
        };
        let (wa, wb) = (flat(&a), flat(&b));
        assert!(wa.iter().zip(&wb).any(|(x, y)| (x - y).abs() > 1e-3), "two seeds, two nets");
        let mid = flat(&interpolate(a.clone(), &b, 0.25));
        for ((x, y), m) in wa.iter().zip(&wb).zip(&mid) {
            assert!((m - (0.75 * x + 0.25 * y)).abs() < 1e-5, "{m} vs {x} and {y}");
        }
        assert_eq!(flat(&interpolate(a.clone(), &b, 0.0)), wa);
    }
}
