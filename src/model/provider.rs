//! Execution providers, registered one at a time so that the one that really runs, and the
//! reason each one before it did not, are known (ort's silent fallback would hide both).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use super::runtime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Provider {
    /// TensorRT, then CUDA, then CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    TensorRt,
}

impl std::str::FromStr for Provider {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda,
            "tensorrt" | "trt" => Self::TensorRt,
            _ => bail!("unknown provider '{s}' (auto, cpu, cuda, tensorrt)"),
        })
    }
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
        }
    }

    /// The providers to try, best first. An explicit GPU choice still ends on the CPU so a
    /// pipeline keeps running; the reasons for each step are reported.
    pub fn chain(self) -> &'static [Provider] {
        match self {
            Self::Auto | Self::TensorRt => &[Self::TensorRt, Self::Cuda, Self::Cpu],
            Self::Cuda => &[Self::Cuda, Self::Cpu],
            Self::Cpu => &[Self::Cpu],
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    pub provider: Provider,
    pub device_id: i32,
    pub fp16: bool,
    /// TensorRT engine cache folder (engines are reused by the next start).
    pub trt_cache_dir: Option<PathBuf>,
    /// CPU threads per session (0: ONNX Runtime's default).
    pub threads: usize,
}

/// Registers `p` on `builder`; an error says why it cannot run.
pub(crate) fn register(p: Provider, opts: &ProviderOptions, builder: &mut SessionBuilder) -> Result<()> {
    let available = |name: &str, avail: ort::Result<bool>| -> Result<()> {
        match avail {
            Ok(true) => Ok(()),
            Ok(false) => bail!(
                "the loaded ONNX Runtime library was built without {name} (set up the GPU build: FACEENHANCE_GPU=1 scripts/setup.sh)"
            ),
            Err(e) => bail!("{name}: {e}"),
        }
    };
    match p {
        Provider::Cpu => ep::CPU::default().with_arena_allocator(true).register(builder)?,
        Provider::Cuda => {
            available("CUDAExecutionProvider", ep::CUDA::is_available())?;
            runtime::preload_gpu_libraries();
            ep::CUDA::default().with_device_id(opts.device_id).register(builder).map_err(|e| {
                gpu_failed(
                    &e,
                    format!(
                        "needs an NVIDIA driver (libcuda.so.1) and the CUDA 13 + cuDNN 9 libraries on \
                         LD_LIBRARY_PATH or in {} (FACEENHANCE_GPU=1 FACEENHANCE_CUDA=1 scripts/setup.sh)",
                        runtime::cuda_library_dir().display()
                    ),
                )
            })?
        }
        Provider::TensorRt => {
            available("TensorrtExecutionProvider", ep::TensorRT::is_available())?;
            runtime::preload_gpu_libraries();
            let mut trt = ep::TensorRT::default().with_device_id(opts.device_id).with_fp16(opts.fp16);
            if let Some(dir) = &opts.trt_cache_dir {
                std::fs::create_dir_all(dir)?;
                trt = trt.with_engine_cache(true).with_engine_cache_path(dir.display()).with_timing_cache(true);
            }
            trt.register(builder).map_err(|e| {
                gpu_failed(
                    &e,
                    format!(
                        "needs TensorRT 10 (libnvinfer.so.10, libnvonnxparser.so.10) on LD_LIBRARY_PATH or in {}, \
                         besides what CUDA needs (see the README)",
                        runtime::tensorrt_library_dir().display()
                    ),
                )
            })?
        }
        Provider::Auto => bail!("auto is a chain, not a provider"),
    }
    Ok(())
}

/// A GPU provider that would not register: the loader's own complaint, what the host
/// needs, and what the cache preload did.
fn gpu_failed(e: &dyn std::fmt::Display, needs: String) -> anyhow::Error {
    let pre = runtime::preload_gpu_libraries();
    let failed = if pre.failed.is_empty() { String::new() } else { format!(", failed: {}", pre.failed.join("; ")) };
    anyhow!("{}; {needs} ({} preloaded from the cache{failed})", e.to_string().trim_end(), pre.loaded.len())
}
