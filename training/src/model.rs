//! Generators and the discriminator.
//!
//! Every operation in the generators' forward passes is one the burn-onnx exporter lowers
//! with a dynamic batch axis: convolutions with symmetric explicit padding, ReLU, sigmoid,
//! element-wise arithmetic with broadcasting, global average pooling, channel `select` +
//! `cat` (pixel shuffle), reshapes that merge trailing axes, and bilinear resize. Leaky
//! ReLU is written as `0.8 relu(x) + 0.2 x`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

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

/// Which generator a run trains.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GeneratorConfig {
    Restore(RestoreConfig),
    Sr(SrConfig),
    /// Attribute-guided hallucination (`aga::AgaNet`).
    Aga(crate::aga::AgaConfig),
}

impl GeneratorConfig {
    /// (input size, output size) for a given output size.
    pub fn scale(&self) -> usize {
        match self {
            GeneratorConfig::Restore(c) => c.upscale,
            GeneratorConfig::Sr(c) => c.scale,
            GeneratorConfig::Aga(c) => c.scale,
        }
    }
    pub fn init(&self, device: &Device) -> Generator {
        match self {
            GeneratorConfig::Restore(c) => Generator::Restore(RestoreNet::new(c, device)),
            GeneratorConfig::Sr(c) => Generator::Sr(SrNet::new(c, device)),
            GeneratorConfig::Aga(c) => Generator::Aga(crate::aga::AgaNet::new(c, device)),
        }
    }

    /// A fresh generator as training starts it: `init`, plus the trained parts it builds on
    /// (the attribute-guided generator's frozen predictor).
    pub fn init_fresh(&self, device: &Device) -> anyhow::Result<Generator> {
        Ok(match (self, self.init(device)) {
            (GeneratorConfig::Aga(c), Generator::Aga(m)) => Generator::Aga(m.with_predictor(&c.predictor, device)?),
            (_, g) => g,
        })
    }
}

// Modules are built once per run; the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Restore(RestoreNet),
    Sr(SrNet),
    Aga(crate::aga::AgaNet),
}

impl Generator {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Generator::Restore(m) => m.forward(x),
            Generator::Sr(m) => m.forward(x),
            Generator::Aga(m) => m.forward(x),
        }
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
    fn shapes() {
        let device = Device::flex();
        let g = RestoreNet::new(&RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 }, &device);
        assert_eq!(g.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 3, 32, 32]);
        // fully convolutional: one set of weights at any multiple of 16 px
        let g2 = RestoreNet::new(&RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2, upscale: 1 }, &device);
        assert_eq!(g2.forward(Tensor::zeros([1, 3, 48, 48], &device)).dims(), [1, 3, 48, 48]);
        assert_eq!(g2.forward(Tensor::zeros([2, 3, 96, 96], &device)).dims(), [2, 3, 96, 96]);
        let s = SrNet::new(&SrConfig { channels: 8, blocks: 1, scale: 4 }, &device);
        assert_eq!(s.forward(Tensor::zeros([2, 3, 8, 8], &device)).dims(), [2, 3, 32, 32]);
        let s8 = SrNet::new(&SrConfig { channels: 8, blocks: 1, scale: 8 }, &device);
        assert_eq!(s8.forward(Tensor::zeros([1, 3, 4, 4], &device)).dims(), [1, 3, 32, 32]);
        let d = PatchDiscriminator::new(8, &device);
        let (o, f) = d.forward(Tensor::zeros([2, 3, 64, 64], &device));
        assert_eq!(o.dims(), [2, 1, 16, 16]);
        assert_eq!(f.len(), 4);
        let d16 = PatchDiscriminator::with_downs(8, 1, 3, &device);
        assert_eq!(d16.forward(Tensor::zeros([2, 3, 16, 16], &device)).0.dims(), [2, 1, 8, 8]);
        let dl = PatchDiscriminator::local(8, 6, &device);
        assert_eq!(dl.forward(Tensor::zeros([2, 6, 16, 16], &device)).0.dims(), [2, 1, 16, 16]);
    }

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
