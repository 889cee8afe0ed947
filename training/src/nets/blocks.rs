//! Layers the networks share: convolutions, leaky ReLU, pixel shuffle, resizing, residual
//! and attention blocks.
//!
//! Every operation in the generators' forward passes is one the burn-onnx exporter lowers
//! with a dynamic batch axis: convolutions with symmetric explicit padding, ReLU, sigmoid,
//! element-wise arithmetic with broadcasting, global average pooling, channel `select` +
//! `cat` (pixel shuffle), reshapes that merge trailing axes, and bilinear resize. Leaky
//! ReLU is written as `0.8 relu(x) + 0.2 x`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Leaky ReLU with slope 0.2, from ops the exporter supports.
pub fn lrelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()).mul_scalar(0.8) + x.mul_scalar(0.2)
}

/// `k` x `k` convolution with symmetric padding `k / 2`.
pub fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// A convolution whose weights start small (for residual branches and output heads).
pub fn conv_small(cin: usize, cout: usize, k: usize, scale: f64, device: &Device) -> Conv2d {
    let p = k / 2;
    let fan_in = (cin * k * k) as f64;
    let bound = scale * (3.0 / fan_in).sqrt();
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_initializer(Initializer::Uniform { min: -bound, max: bound })
        .init(device)
}

/// Pixel shuffle (depth to space, PyTorch channel order) written for the ONNX exporter:
/// for each sub-pixel offset (i, j), the matching channels are gathered (`select`),
/// nearest-up-sampled by `r` (`Resize` on the spatial axes) and multiplied by two constant
/// masks, one over rows (`y % r == i`, shape [1, 1, oh, 1]) and one over columns
/// (`x % r == j`, [1, 1, 1, ow]), broadcast; the masked maps are summed. Exact, free of
/// reshapes (which the exporter cannot keep batch-dynamic here), and the constants grow
/// with the side, not the area (a 512 px export stays as small as a 64 px one).
pub fn pixel_shuffle(x: Tensor<4>, r: usize) -> Tensor<4> {
    let [_b, c, h, w] = x.dims();
    let oc = c / (r * r);
    let device = x.device();
    let (oh, ow) = (h * r, w * r);
    let line = |n: usize, k: usize| -> Vec<f32> { (0..n).map(|p| if p % r == k { 1.0 } else { 0.0 }).collect() };
    let mut out: Option<Tensor<4>> = None;
    for i in 0..r {
        let rows = Tensor::<4>::from_data(TensorData::new(line(oh, i), [1, 1, oh, 1]), &device);
        for j in 0..r {
            let idx: Vec<i64> = (0..oc).map(|k| (k * r * r + i * r + j) as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [oc]), &device);
            let up = interpolate(
                x.clone().select(1, idx),
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([oh, ow]),
            );
            let cols = Tensor::<4>::from_data(TensorData::new(line(ow, j), [1, 1, 1, ow]), &device);
            let part = up * rows.clone() * cols;
            out = Some(match out {
                Some(o) => o + part,
                None => part,
            });
        }
    }
    out.expect("r >= 1")
}

/// Squeeze-and-excitation channel attention: avgpool 1x1 -> conv -> relu -> conv -> sigmoid.
#[derive(Module, Debug)]
pub struct ChannelAttention {
    fc1: Conv2d,
    fc2: Conv2d,
}

impl ChannelAttention {
    pub fn new(c: usize, reduction: usize, device: &Device) -> Self {
        let m = (c / reduction).max(4);
        Self { fc1: conv(c, m, 1, 1, device), fc2: conv(m, c, 1, 1, device) }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = adaptive_avg_pool2d(x.clone(), [1, 1]);
        let a = sigmoid(self.fc2.forward(relu(self.fc1.forward(a))));
        x * a
    }
}

/// Spatial attention: 1x1 squeeze -> relu -> 3x3 conv to one map -> sigmoid.
#[derive(Module, Debug)]
pub struct SpatialAttention {
    squeeze: Conv2d,
    map: Conv2d,
}

impl SpatialAttention {
    pub fn new(c: usize, device: &Device) -> Self {
        let m = (c / 4).max(4);
        Self { squeeze: conv(c, m, 1, 1, device), map: conv(m, 1, 3, 1, device) }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = sigmoid(self.map.forward(relu(self.squeeze.forward(x.clone()))));
        x * a
    }
}

/// Residual block with channel then spatial attention on the residual branch.
#[derive(Module, Debug)]
pub struct AttnBlock {
    c1: Conv2d,
    c2: Conv2d,
    ca: ChannelAttention,
    sa: SpatialAttention,
}

impl AttnBlock {
    pub fn new(c: usize, device: &Device) -> Self {
        Self {
            c1: conv(c, c, 3, 1, device),
            c2: conv_small(c, c, 3, 0.3, device),
            ca: ChannelAttention::new(c, 8, device),
            sa: SpatialAttention::new(c, device),
        }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let r = self.c2.forward(lrelu(self.c1.forward(x.clone())));
        let r = self.sa.forward(self.ca.forward(r));
        x + r
    }
}

#[derive(Module, Debug)]
pub struct ResBlock {
    c1: Conv2d,
    c2: Conv2d,
}

impl ResBlock {
    pub fn new(c: usize, device: &Device) -> Self {
        Self { c1: conv(c, c, 3, 1, device), c2: conv_small(c, c, 3, 0.3, device) }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() + self.c2.forward(lrelu(self.c1.forward(x)))
    }
}

/// Bilinear resizing to `[h, w]` (half-pixel centres, ONNX `Resize` linear): the smooth
/// enlargement the generators add their detail to.
pub fn bilinear(x: Tensor<4>, [h, w]: [usize; 2]) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false).with_output_size([h, w]),
    )
}

/// Area down-scaling by an integer factor (average of each `s` x `s` block; ONNX
/// `AveragePool`), the plain down-scale the degradation generator starts from.
pub fn area_down(x: Tensor<4>, s: usize) -> Tensor<4> {
    avg_pool2d(x, AvgPoolOptions::new([s, s]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_shuffle_matches_definition() {
        let device = Device::flex();
        let (b, c, h, w, r) = (2, 8, 3, 4, 2);
        let n = b * c * h * w;
        let x = Tensor::<4>::from_data(
            TensorData::new((0..n).map(|v| v as f32).collect::<Vec<_>>(), [b, c, h, w]),
            &device,
        );
        let y = pixel_shuffle(x, r).into_data().try_to_vec::<f32>().unwrap();
        let oc = c / (r * r);
        for bi in 0..b {
            for ci in 0..oc {
                for yy in 0..h * r {
                    for xx in 0..w * r {
                        let src_c = ci * r * r + (yy % r) * r + (xx % r);
                        let src = ((bi * c + src_c) * h + yy / r) * w + xx / r;
                        let dst = ((bi * oc + ci) * h * r + yy) * w * r + xx;
                        assert_eq!(y[dst], src as f32);
                    }
                }
            }
        }
    }

    #[test]
    fn area_down_averages_blocks() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 4, 4]),
            &device,
        );
        let y = area_down(x, 2).into_data().try_to_vec::<f32>().unwrap();
        // blocks {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}
        assert_eq!(y, vec![2.5, 4.5, 10.5, 12.5]);
    }
}
