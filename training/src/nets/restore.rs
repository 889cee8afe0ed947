//! The restoration generator: an attention U-Net (AGA-GAN flavour) with a global residual,
//! 1x or up-scaling through an in-graph bilinear enlargement; its stem can run the U-Net at
//! a half or a quarter of the resolution.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nets::blocks::{bilinear, conv, conv_small, lrelu, pixel_shuffle, AttnBlock};

/// Shape of a restoration generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RestoreConfig {
    /// Channels at full, 1/2 and 1/4 resolution.
    pub channels: [usize; 3],
    /// Attention residual blocks at 1/4 resolution.
    pub blocks: usize,
    /// 1: the head works at the input's resolution. 2: a learned 4x4 stride-2 head and a
    /// pixel-shuffle tail put the whole U-Net at half resolution (Real-ESRGAN's pixel
    /// unshuffle idea): a quarter of the cost per pixel, which a 512 px face needs on a CPU.
    /// 4: an 8x8 stride-4 head and a x4 shuffle tail, the U-Net at a quarter resolution
    /// (a 512 px face at restore-128's cost: live streams restoring large faces).
    pub stem: usize,
    /// 1: restoration (output the input's size). 2 or 4: super-resolution by restoring the
    /// input bilinearly enlarged in the graph; with `stem = 2` the net's cost is that of a
    /// restoration at the output size, a fraction of an `SrNet` whose body runs at the
    /// input's full resolution.
    pub upscale: usize,
}

impl Default for RestoreConfig {
    fn default() -> Self {
        Self { channels: [16, 32, 64], blocks: 4, stem: 1, upscale: 1 }
    }
}

/// 1x blind face restoration (AGA-GAN flavour): stride-2 encoder to 1/4 resolution,
/// residual blocks with channel and spatial attention, pixel-shuffle decoder with U-Net
/// skip refinement at each scale, global residual from the input.
#[derive(Module, Debug)]
pub struct RestoreNet {
    head: Conv2d,
    down1: Conv2d,
    down2: Conv2d,
    body: Vec<AttnBlock>,
    body_tail: Conv2d,
    up2: Conv2d,
    fuse2: Conv2d,
    up1: Conv2d,
    fuse1: Conv2d,
    tail: Conv2d,
    stem: usize,
    upscale: usize,
}

impl RestoreNet {
    pub fn new(cfg: &RestoreConfig, device: &Device) -> Self {
        let [c1, c2, c3] = cfg.channels;
        let s = cfg.stem;
        assert!(matches!(s, 1 | 2 | 4), "stem must be 1, 2 or 4");
        assert!(matches!(cfg.upscale, 1 | 2 | 4), "upscale must be 1, 2 or 4");
        Self {
            head: Self::head(c1, s, device),
            down1: conv(c1, c2, 3, 2, device),
            down2: conv(c2, c3, 3, 2, device),
            body: (0..cfg.blocks).map(|_| AttnBlock::new(c3, device)).collect(),
            body_tail: conv(c3, c3, 3, 1, device),
            up2: conv(c3, c2 * 4, 3, 1, device),
            fuse2: conv(2 * c2, c2, 3, 1, device),
            up1: conv(c2, c1 * 4, 3, 1, device),
            fuse1: conv(2 * c1, c1, 3, 1, device),
            tail: conv_small(c1, 3 * s * s, 3, 0.1, device),
            stem: s,
            upscale: cfg.upscale,
        }
    }

    /// The input convolution: 3x3 at full resolution, or a `2s` x `2s` kernel at stride `s`
    /// (padding `s / 2`) that hands the U-Net a `1/s` resolution map.
    fn head(c1: usize, s: usize, device: &Device) -> Conv2d {
        if s == 1 {
            return conv(3, c1, 3, 1, device);
        }
        let p = s / 2;
        Conv2dConfig::new([3, c1], [2 * s, 2 * s])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(device)
    }

    /// The same net with a `k` times coarser stem (`stem` 2 -> 4), initialised to compute
    /// exactly what this net computes on the input box-averaged by `k`, its residual
    /// nearest-enlarged by `k`: the head's kernel spread over `k` x `k` pixels (divided by
    /// `k^2`), the tail's sub-pixel channels repeated. A fine-tune then starts from a
    /// working restoration at the coarser grid instead of from a fresh head and tail.
    pub fn restem(self, stem: usize) -> Self {
        let s = self.stem;
        assert!(s > 1 && stem.is_multiple_of(s) && stem > s, "restem from {s} to {stem}: stems 2 -> 4");
        let k = stem / s;
        let device = self.head.weight.val().device();
        let read4 = |t: Tensor<4>| (t.dims(), t.into_data().try_to_vec::<f32>().expect("f32 weights"));
        // head: [c1, 3, 2s, 2s] -> [c1, 3, 2sk, 2sk]
        let ([co, ci, kh, kw], w) = read4(self.head.weight.val());
        let (nh, nw) = (kh * k, kw * k);
        let mut hw = vec![0f32; co * ci * nh * nw];
        let norm = (k * k) as f32;
        for o in 0..co * ci {
            for y in 0..nh {
                for x in 0..nw {
                    hw[(o * nh + y) * nw + x] = w[(o * kh + y / k) * kw + x / k] / norm;
                }
            }
        }
        let mut head = Self::head(co, stem, &device);
        head.weight = Param::from_tensor(Tensor::from_data(TensorData::new(hw, [co, ci, nh, nw]), &device));
        head.bias = self.head.bias.clone();
        // tail: output channel (c, i, j) of the stem x stem block <- (c, i / k, j / k)
        let source = |ch: usize| {
            let (c, i, j) = (ch / (stem * stem), ch % (stem * stem) / stem, ch % stem);
            c * s * s + (i / k) * s + j / k
        };
        let ([to, ti, th, tw], w) = read4(self.tail.weight.val());
        let per = ti * th * tw;
        let n = 3 * stem * stem;
        debug_assert_eq!(to, 3 * s * s);
        let tail_w: Vec<f32> = (0..n).flat_map(|ch| w[source(ch) * per..(source(ch) + 1) * per].to_vec()).collect();
        let mut tail = conv_small(ti, n, th, 0.1, &device);
        tail.weight = Param::from_tensor(Tensor::from_data(TensorData::new(tail_w, [n, ti, th, tw]), &device));
        if let Some(b) = &self.tail.bias {
            let b = b.val().into_data().try_to_vec::<f32>().expect("f32 bias");
            let nb: Vec<f32> = (0..n).map(|ch| b[source(ch)]).collect();
            tail.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(nb, [n]), &device)));
        }
        Self { head, tail, stem, ..self }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.upscale == 1 {
            x
        } else {
            let [_, _, h, w] = x.dims();
            bilinear(x, [h * self.upscale, w * self.upscale])
        };
        let f0 = lrelu(self.head.forward(x.clone()));
        let f1 = lrelu(self.down1.forward(f0.clone()));
        let f2 = lrelu(self.down2.forward(f1.clone()));
        let mut b = f2.clone();
        for blk in &self.body {
            b = blk.forward(b);
        }
        let b = self.body_tail.forward(b) + f2;
        let u2 = lrelu(pixel_shuffle(self.up2.forward(b), 2));
        let u2 = lrelu(self.fuse2.forward(Tensor::cat(vec![u2, f1], 1)));
        let u1 = lrelu(pixel_shuffle(self.up1.forward(u2), 2));
        let u1 = lrelu(self.fuse1.forward(Tensor::cat(vec![u1, f0], 1)));
        let r = self.tail.forward(u1);
        x + if self.stem == 1 { r } else { pixel_shuffle(r, self.stem) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::blocks::area_down;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

    #[test]
    fn restem_computes_the_finer_net_at_the_coarser_grid() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let cfg = RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2, upscale: 1 };
        let g2 = RestoreNet::new(&cfg, &device);
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        // the stem-2 net on the 2x box-averaged input, its residual nearest-enlarged
        let xd = area_down(x.clone(), 2);
        let r2 = g2.forward(xd.clone()) - xd;
        let want = interpolate(r2, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([64, 64]));
        let g4 = g2.restem(4);
        assert_eq!(g4.head.weight.val().dims(), [8, 3, 8, 8]);
        let got = g4.forward(x.clone()) - x;
        let (got, want) = (got.into_data().try_to_vec::<f32>().unwrap(), want.into_data().try_to_vec::<f32>().unwrap());
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        assert!(scale > 1e-3, "the residual is not trivially zero ({scale})");
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4 * scale.max(1.0), "max difference {err} (residual scale {scale})");
    }
}
