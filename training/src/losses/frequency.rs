//! The frequency split: a border-normalised Gaussian low-pass and its high-pass rest. The
//! degradation GAN's content loss compares low-pass parts; discriminators see high-pass
//! parts.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

/// Depthwise Gaussian low-pass of an RGB batch, normalised at the borders (the zero padding
/// is divided out), so flat images stay flat up to the edge.
pub fn low_pass(x: Tensor<4>, sigma: f64) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let r = (2.0 * sigma).ceil().max(1.0) as usize;
    let k = 2 * r + 1;
    let g: Vec<f32> = (0..k).map(|i| (-((i as f64 - r as f64).powi(2)) / (2.0 * sigma * sigma)).exp() as f32).collect();
    let s: f32 = g.iter().sum();
    let k2: Vec<f32> = (0..k * k).map(|i| g[i / k] * g[i % k] / (s * s)).collect();
    let device = x.device();
    let weight = |n: usize| {
        Tensor::<4>::from_data(
            TensorData::new(k2.iter().copied().cycle().take(n * k * k).collect(), [n, 1, k, k]),
            &device,
        )
    };
    let blurred = conv2d(x, weight(c), None, ConvOptions::new([1, 1], [r, r], [1, 1], c));
    let norm =
        conv2d(Tensor::<4>::ones([1, 1, h, w], &device), weight(1), None, ConvOptions::new([1, 1], [r, r], [1, 1], 1));
    blurred / norm
}

pub fn high_pass(x: Tensor<4>, sigma: f64) -> Tensor<4> {
    x.clone() - low_pass(x, sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::degrade::gaussian_noise;
    use crate::image::{from_tensor, to_tensor, Img};
    use burn::tensor::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn low_pass_keeps_flat_images_and_splits_frequencies() {
        let device = Device::flex();
        let flat = to_tensor(&[Img::filled(8, 8, [0.2, 0.5, 0.9])], &device);
        let d = (low_pass(flat.clone(), 1.0) - flat).abs().max().into_scalar::<f32>();
        assert!(d < 1e-5, "flat image changed by {d}");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let noisy = gaussian_noise(&Img::filled(16, 16, [0.5, 0.5, 0.5]), 0.1, false, &mut rng);
        let t = to_tensor(std::slice::from_ref(&noisy), &device);
        let hp = from_tensor(high_pass(t.clone(), 1.0)).remove(0);
        let lp = from_tensor(low_pass(t, 1.0)).remove(0);
        let var = |img: &Img| {
            let m = img.data.iter().sum::<f32>() / img.data.len() as f32;
            img.data.iter().map(|v| (v - m).powi(2)).sum::<f32>() / img.data.len() as f32
        };
        assert!(var(&lp) < 0.2 * var(&noisy), "low-pass keeps {} of {}", var(&lp), var(&noisy));
        assert!(var(&hp) > 0.5 * var(&noisy));
    }
}
