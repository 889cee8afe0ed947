//! The learned high-to-low degradation as a source of training inputs: the exported
//! degradation generator (`nets::degrade::DegradeNet`, trained by `train::degrade_gan`) run
//! through ONNX Runtime on clean crops plus a noise channel. [`crate::data::pairs`] draws SR
//! inputs from it with probability `degrade.learned_prob`.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::image::{from_nchw, to_nchw, Img};
use crate::onnx::runtime::OrtModel;

/// N(0, 1) noise planes, one `w * h` plane per image.
pub fn noise_planes<R: Rng>(n: usize, w: usize, h: usize, rng: &mut R) -> Vec<f32> {
    (0..n * w * h).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

/// `[n, 4, h, w]` NCHW buffer: the RGB planes of each image followed by its noise plane.
pub fn generator_input(imgs: &[Img], noise: &[f32]) -> Vec<f32> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    let rgb = to_nchw(imgs);
    let mut out = Vec::with_capacity(imgs.len() * 4 * w * h);
    for i in 0..imgs.len() {
        out.extend_from_slice(&rgb[i * 3 * w * h..(i + 1) * 3 * w * h]);
        out.extend_from_slice(&noise[i * w * h..(i + 1) * w * h]);
    }
    out
}

/// The generator's input tensor for a batch of clean crops, with noise drawn from `rng`.
pub fn input_tensor<R: Rng>(imgs: &[Img], rng: &mut R, device: &Device) -> Tensor<4> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    let noise = noise_planes(imgs.len(), w, h, rng);
    Tensor::from_data(TensorData::new(generator_input(imgs, &noise), [imgs.len(), 4, h, w]), device)
}

/// The exported degradation generator, run through ONNX Runtime (1 thread).
pub struct LearnedDegrader {
    model: Mutex<OrtModel>,
    scale: usize,
}

impl LearnedDegrader {
    /// Loads the ONNX file and finds its down-scale factor from a probe run.
    pub fn load(path: &Path) -> Result<Self> {
        let mut model = OrtModel::load(path, 1)?;
        let probe = 64;
        let (shape, _) = model.run_raw([1, 4, probe, probe], vec![0.0; 4 * probe * probe])?;
        anyhow::ensure!(shape.len() == 4 && shape[1] == 3 && shape[2] > 0, "{}: output {shape:?}", path.display());
        Ok(Self { model: Mutex::new(model), scale: probe / shape[2] })
    }

    pub fn scale(&self) -> usize {
        self.scale
    }

    /// Degrades a batch of clean crops (all the same size) with noise from `rng`; outputs
    /// are clamped to [0, 1].
    pub fn degrade_batch<R: Rng>(&self, clean: &[Img], rng: &mut R) -> Result<Vec<Img>> {
        let (w, h) = (clean[0].w, clean[0].h);
        let noise = noise_planes(clean.len(), w, h, rng);
        let mut m = self.model.lock().map_err(|_| anyhow::anyhow!("poisoned ort session"))?;
        let (s, v) = m.run_raw([clean.len(), 4, h, w], generator_input(clean, &noise))?;
        Ok(from_nchw(&v, s[0], s[2], s[3]).into_iter().map(Img::clamp).collect())
    }

    pub fn degrade<R: Rng>(&self, clean: &Img, rng: &mut R) -> Result<Img> {
        Ok(self.degrade_batch(std::slice::from_ref(clean), rng)?.remove(0))
    }
}
