//! InterGAN-style face attribute editing (issue 16) at 64 px.
//!
//! One generator does both tasks, editing and reconstruction, and they interact through
//! it: the attribute change `d` (asked minus present) drives a style translation of the
//! bottleneck's feature statistics (per-channel scale and shift, exactly the identity at
//! `d = 0`) and a conditional translation (residual blocks that see `d` at every place), so
//! reconstruction (`d = 0`) trains the content path every edit runs through. There are no
//! encoder-decoder skip connections (they would carry the old attribute through); a
//! high-frequency compensation module adds the input's detail above the bottleneck's band
//! back through a learned gate, which closes where the edit paints something new.
//!
//! The model's inputs: `input` `[batch, 3, 64, 64]` RGB in [0, 1] (FFHQ-aligned crop) and
//! `attributes` `[batch, n, 1, 1]`, one value per editable attribute in [-1, 1]: +1 add it,
//! -1 remove it, 0 keep the face as it is (fractions: partial edits). What is present now
//! comes from the frozen attribute predictor inside the graph, so callers pass only what
//! they ask for.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::module::{adaptive_avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::nets::attributes::AttrNet;
use crate::nets::blocks::{area_down, bilinear, conv, conv_small, lrelu, pixel_shuffle};

/// Per-channel mean and standard deviation over the spatial axes, `[b, c, 1, 1]` each
/// (global average pooling: the reduction the exporter lowers).
fn stats(h: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    let mu = adaptive_avg_pool2d(h.clone(), [1, 1]);
    let c = h - mu.clone();
    let var = adaptive_avg_pool2d(c.clone() * c, [1, 1]);
    (mu, var.add_scalar(1e-5).sqrt())
}

fn no_bias(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1])
        .with_bias(false)
        .with_initializer(burn::nn::Initializer::Uniform { min: -0.01, max: 0.01 })
        .init(device)
}

/// One translation block: the style translation (the features' statistics moved by the
/// attribute change) and a conditional residual that sees the change at every place.
#[derive(Module, Debug)]
pub struct TranslateBlock {
    scale: Conv2d,
    shift: Conv2d,
    c1: Conv2d,
    c2: Conv2d,
}

impl TranslateBlock {
    fn new(c: usize, n: usize, device: &Device) -> Self {
        Self {
            scale: no_bias(n, c, device),
            shift: no_bias(n, c, device),
            c1: conv(c + n, c, 3, 1, device),
            c2: conv_small(c, c, 3, 0.3, device),
        }
    }

    fn forward(&self, h: Tensor<4>, d: Tensor<4>) -> Tensor<4> {
        let [_, _, hh, ww] = h.dims();
        let (mu, sd) = stats(h.clone());
        // identity at d = 0: the convolutions have no bias
        let h = (h - mu.clone()) * (self.scale.forward(d.clone()).add_scalar(1.0))
            + mu
            + self.shift.forward(d.clone()) * sd;
        let dmap = interpolate(d, InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([hh, ww]));
        let r = self.c2.forward(lrelu(self.c1.forward(Tensor::cat(vec![h.clone(), dmap], 1))));
        h + r
    }
}

/// The editing generator; see the module docs.
#[derive(Module, Debug)]
pub struct EditNet {
    predictor: AttrNet,
    /// Which predictor outputs are the editable attributes (a constant).
    pick: Vec<usize>,
    e0: Conv2d,
    e1: Conv2d,
    e2: Conv2d,
    blocks: Vec<TranslateBlock>,
    u2: Conv2d,
    u1: Conv2d,
    f0: Conv2d,
    out: Conv2d,
    gate: Conv2d,
}

impl EditNet {
    /// `channels`: encoder widths at 64, 32 and 16 px; `blocks`: translation blocks at 16 px.
    pub fn new(channels: [usize; 3], blocks: usize, predictor: AttrNet, pick: Vec<usize>, device: &Device) -> Self {
        let [c0, c1, c2] = channels;
        let n = pick.len();
        Self {
            predictor,
            pick,
            e0: conv(3, c0, 3, 1, device),
            e1: conv(c0, c1, 3, 2, device),
            e2: conv(c1, c2, 3, 2, device),
            blocks: (0..blocks).map(|_| TranslateBlock::new(c2, n, device)).collect(),
            u2: conv(c2, 4 * c1, 3, 1, device),
            u1: conv(c1, 4 * c0, 3, 1, device),
            f0: conv(c0, c0, 3, 1, device),
            out: conv_small(c0, 3, 3, 0.1, device),
            gate: conv(c0, 3, 3, 1, device),
        }
    }

    /// Presence of the editable attributes now, in [-1, 1], from the frozen predictor.
    pub fn present(&self, x: Tensor<4>) -> Tensor<4> {
        sigmoid(self.logits(x)).mul_scalar(2.0).sub_scalar(1.0).detach()
    }

    /// The frozen predictor's logits of the editable attributes.
    fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        let idx: Vec<i64> = self.pick.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [self.pick.len()]), &x.device());
        self.predictor.forward(x).select(1, idx)
    }

    /// The guide's logits of the editable attributes for `x` seen at 32 px (gradients flow
    /// to `x`, never to the frozen predictor).
    pub fn guide(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let seen = bilinear(area_down(x, 2), [h, w]);
        self.logits(seen)
    }

    /// `x` with the attributes `ask` asks for (see the module docs).
    pub fn forward(&self, x: Tensor<4>, ask: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let d = ask.clone() - self.present(x.clone()) * ask.abs();
        let f = lrelu(self.e0.forward(x.clone()));
        let f = lrelu(self.e1.forward(f));
        let mut b = lrelu(self.e2.forward(f));
        for blk in &self.blocks {
            b = blk.forward(b, d.clone());
        }
        let u = lrelu(pixel_shuffle(self.u2.forward(b), 2));
        let u = lrelu(pixel_shuffle(self.u1.forward(u), 2));
        let u = lrelu(self.f0.forward(u));
        // high-frequency compensation: the input's detail above the 16 px bottleneck's band,
        // let through where the gate is open
        let low = bilinear(area_down(x.clone(), 4), [h, w]);
        let detail = x.clone() - low.clone();
        let gate = sigmoid(self.gate.forward(u.clone()));
        low + self.out.forward(u) + gate * detail
    }
}

/// Patch realism and attribute classification (AttGAN's discriminator): four stride-2
/// stages to 4 x 4, a patch head and a pooled head with one logit per editable attribute.
#[derive(Module, Debug)]
pub struct EditDisc {
    convs: Vec<Conv2d>,
    adv: Conv2d,
    cls: Conv2d,
}

impl EditDisc {
    pub fn new(c: usize, n: usize, device: &Device) -> Self {
        Self {
            convs: vec![
                conv(3, c, 3, 2, device),
                conv(c, 2 * c, 3, 2, device),
                conv(2 * c, 4 * c, 3, 2, device),
                conv(4 * c, 8 * c, 3, 2, device),
            ],
            adv: conv(8 * c, 1, 3, 1, device),
            cls: conv(8 * c, n, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut h = x;
        for c in &self.convs {
            h = lrelu(c.forward(h));
        }
        (self.adv.forward(h.clone()), self.cls.forward(adaptive_avg_pool2d(h, [1, 1])))
    }
}

/// Exports the editor with inputs `input` `[batch, 3, 64, 64]` and `attributes`
/// `[batch, n, 1, 1]` and output `output`, the batch axis dynamic.
pub fn export(net: &EditNet, path: &Path) -> Result<()> {
    use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
    let device = Device::flex();
    let n = net.pick.len();
    let pair = |b: usize| (Tensor::<4>::zeros([b, 3, 64, 64], &device), Tensor::<4>::zeros([b, n, 1, 1], &device));
    let spec = || InputSpec::new([AxisSpec::dynamic("batch"), AxisSpec::Static, AxisSpec::Static, AxisSpec::Static]);
    let onnx = OnnxExporter::new()
        .export_dynamic(net, pair(5), pair(7), &[spec(), spec()], |m: &EditNet, (x, a): (Tensor<4>, Tensor<4>)| {
            m.forward(x, a)
        })
        .map_err(|e| anyhow::anyhow!("ONNX export: {e}"))?;
    let bytes = crate::onnx::export::rename_io(onnx.as_bytes(), &["input", "attributes"], &["output"])?;
    let bytes = crate::onnx::export::fuse_pixel_shuffles(&bytes)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::runtime::OrtModel;
    use burn::tensor::Distribution;

    fn tiny() -> EditNet {
        let device = Device::flex();
        device.seed(3);
        EditNet::new([8, 8, 8], 1, AttrNet::new([8, 8, 8, 8], 10, &device), vec![7, 2, 4], &device)
    }

    #[test]
    fn asking_for_nothing_changes_no_translation_and_a_change_does() {
        let net = tiny();
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let zero = Tensor::<4>::zeros([2, 3, 1, 1], &device);
        let asked =
            Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0, -1.0, 0.0], [2, 3, 1, 1]), &device);
        let keep = net.forward(x.clone(), zero);
        let edit = net.forward(x, asked);
        let diff = (keep - edit).abs().max().into_scalar::<f32>();
        assert!(diff > 1e-5, "an asked change must reach the output ({diff})");
    }

    #[test]
    fn export_matches_burn_through_ort_with_both_inputs() {
        let net = tiny();
        let device = Device::flex();
        let path = std::env::temp_dir().join(format!("faceenhance-train-{}-edit.onnx", std::process::id()));
        export(&net, &path).unwrap();
        let mut ort = OrtModel::load(&path, 1).unwrap();
        for batch in [1usize, 3] {
            let x = Tensor::<4>::random([batch, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
            let a = Tensor::<4>::random([batch, 3, 1, 1], Distribution::Uniform(-1.0, 1.0), &device);
            let ours = net.forward(x.clone(), a.clone()).into_data().try_to_vec::<f32>().unwrap();
            let xs = x.into_data().try_to_vec::<f32>().unwrap();
            let av = a.into_data().try_to_vec::<f32>().unwrap();
            let (shape, theirs) = ort.run_two(([batch, 3, 64, 64], xs), ("attributes", [batch, 3, 1, 1], av)).unwrap();
            assert_eq!(shape, vec![batch, 3, 64, 64]);
            let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max <= 1e-4, "batch {batch}: max abs diff {max}");
        }
        std::fs::remove_file(&path).ok();
    }
}
