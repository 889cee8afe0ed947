//! ONNX Runtime sessions through the core crate's process-wide environment (the same
//! library the pipeline loads).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ort::session::Session;
use ort::value::Tensor;

use crate::image::{from_nchw, to_nchw, Img};

/// The process-wide ONNX Runtime environment (the core crate's).
#[cfg(feature = "core")]
pub fn environment() -> Result<&'static ort::environment::Environment> {
    faceenhance::model::runtime::environment()
}

/// Fallback without the core crate: `ORT_DYLIB_PATH`, else the set-up's cache folder.
#[cfg(not(feature = "core"))]
pub fn environment() -> Result<&'static ort::environment::Environment> {
    use std::sync::OnceLock;
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/faceenhance/onnxruntime/lib/libonnxruntime.so.1")
        });
        ort::init_from(&path).map_err(|e| format!("{}: {e}", path.display()))?.build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

pub struct OrtModel {
    session: Session,
    input: String,
    output: String,
}

impl OrtModel {
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        let env = environment()?;
        let session = Session::builder(env)
            .map_err(|e| anyhow!("{e}"))?
            .with_intra_threads(threads)
            .map_err(|e| anyhow!("{e}"))?
            .commit_from_file(path)
            .with_context(|| format!("loading {}", path.display()))?;
        let input = session.inputs()[0].name().to_string();
        let output = session.outputs()[0].name().to_string();
        Ok(Self { session, input, output })
    }

    pub fn input_name(&self) -> &str {
        &self.input
    }
    pub fn output_name(&self) -> &str {
        &self.output
    }

    /// Runs an NCHW float batch; returns (shape, data).
    pub fn run_raw(&mut self, shape: [usize; 4], data: Vec<f32>) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = Tensor::from_array((shape, data))?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => t])?;
        let (s, v) = outputs[self.output.as_str()].try_extract_tensor::<f32>()?;
        Ok((s.iter().map(|&d| d as usize).collect(), v.to_vec()))
    }

    /// Runs a model with two NCHW float inputs, by name (`input` and another); returns the
    /// first output as (shape, data).
    pub fn run_two(
        &mut self,
        first: ([usize; 4], Vec<f32>),
        (name, shape, data): (&str, [usize; 4], Vec<f32>),
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let a = Tensor::from_array(first)?;
        let b = Tensor::from_array((shape, data))?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => a, name => b])?;
        let (s, v) = outputs[self.output.as_str()].try_extract_tensor::<f32>()?;
        Ok((s.iter().map(|&d| d as usize).collect(), v.to_vec()))
    }

    /// Runs a batch of images (all the same size); outputs are not clamped.
    pub fn run(&mut self, imgs: &[Img]) -> Result<Vec<Img>> {
        let (w, h) = (imgs[0].w, imgs[0].h);
        let (s, v) = self.run_raw([imgs.len(), 3, h, w], to_nchw(imgs))?;
        Ok(from_nchw(&v, s[0], s[2], s[3]))
    }
}

#[cfg(all(test, feature = "core"))]
mod tests {
    use super::*;
    use faceenhance::model::profile::Profile;

    /// The models this crate ships: each present ONNX file has a valid profile beside it,
    /// runs at batch 1 and 4 with the profile's sizes, and is not the identity.
    #[test]
    fn shipped_models_load_and_run() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
            // the identity measure is no image model (no profile, 22 MB): facerec's tests
            .filter(|p| p.file_name().is_some_and(|n| n != "face-id.onnx"))
            .collect();
        files.sort();
        assert!(files.len() >= 9, "{files:?}");
        for onnx in files {
            let name = onnx.file_stem().unwrap().to_string_lossy().to_string();
            let p = Profile::from_file(&Profile::beside(&onnx)).unwrap();
            assert_eq!((p.input.as_str(), p.output.as_str()), ("input", "output"));
            assert!(std::fs::metadata(&onnx).unwrap().len() <= 10 * 1024 * 1024, "{name} over 10 MB");
            let mut m = OrtModel::load(&onnx, 1).unwrap();
            let (si, so) = (p.input_size as usize, p.output_size as usize);
            for batch in [1usize, 4] {
                let mut imgs = Vec::new();
                for k in 0..batch {
                    let mut img = Img::new(si, si);
                    for (i, v) in img.data.iter_mut().enumerate() {
                        *v = (((i / 3) % si) as f32 / si as f32 * 0.6 + 0.2 + 0.05 * k as f32 + 0.1 * ((i % 3) as f32))
                            .min(1.0);
                    }
                    imgs.push(img);
                }
                let out = m.run(&imgs).unwrap();
                assert_eq!(out.len(), batch);
                assert_eq!((out[0].w, out[0].h), (so, so));
                assert!(out.iter().flat_map(|o| o.data.iter()).all(|v| v.is_finite()));
                let reference = imgs[0].bicubic(so, so).unwrap();
                let diff = out[0].data.iter().zip(&reference.data).map(|(a, b)| (a - b).abs()).sum::<f32>()
                    / reference.data.len() as f32;
                assert!(diff > 1e-4, "{name} returns (an up-scaling of) its input");
            }
        }
    }
}
