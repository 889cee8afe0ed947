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
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/faceenhance/onnxruntime/lib/libonnxruntime.so.1")
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

    /// Runs a batch of images (all the same size); outputs are not clamped.
    pub fn run(&mut self, imgs: &[Img]) -> Result<Vec<Img>> {
        let (w, h) = (imgs[0].w, imgs[0].h);
        let (s, v) = self.run_raw([imgs.len(), 3, h, w], to_nchw(imgs))?;
        Ok(from_nchw(&v, s[0], s[2], s[3]))
    }
}
