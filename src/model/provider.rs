//! Execution providers, registered one at a time so that the one that really runs, and the
//! reason each one before it did not, are known (ort's silent fallback would hide both).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::SessionBuilder;
use ort::session::Session;

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
    /// CPU threads (0: the process's one pool shared by every session, a thread per core;
    /// N: a pool of N threads for this session alone). Idle threads never spin: the
    /// sessions share the cores with OpenCV and the encoder.
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

/// What happened to each provider tried before a session ran.
#[derive(Clone, Debug)]
pub struct ProviderReport {
    /// The provider that runs the model.
    pub active: Provider,
    /// Providers tried first that could not run, each with its reason.
    pub skipped: Vec<(Provider, String)>,
}

impl std::fmt::Display for ProviderReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "running on {}", self.active.name())?;
        for (p, why) in &self.skipped {
            write!(f, "; {} unavailable: {why}", p.name())?;
        }
        Ok(())
    }
}

/// Where a session's model comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    File(&'a Path),
    /// Model bytes (edited in memory), with a name for messages.
    Bytes(&'a [u8], &'a Path),
}

impl Source<'_> {
    fn path(&self) -> &Path {
        match self {
            Source::File(p) | Source::Bytes(_, p) => p,
        }
    }
}

/// A session on the first provider of `opts`' chain that takes the model, with the
/// reasons the ones before it did not.
pub(crate) fn open(source: Source<'_>, opts: &ProviderOptions) -> Result<(Session, ProviderReport)> {
    let env = runtime::environment()?;
    let model = source.path();
    let mut skipped = Vec::new();
    for &p in opts.provider.chain() {
        let attempt = (|| -> Result<Session> {
            let mut b = Session::builder(env)?;
            if opts.threads > 0 {
                // asked for a number: a pool of its own (else the process's shared pool)
                b = b.with_independent_thread_pool().map_err(|e| anyhow!("{e}"))?;
                b = b.with_intra_threads(opts.threads).map_err(|e| anyhow!("{e}"))?;
                // A spinning pool burns a core between runs that OpenCV or the encoder needs.
                b = b.with_intra_op_spinning(false).map_err(|e| anyhow!("{e}"))?;
                b = b.with_inter_op_spinning(false).map_err(|e| anyhow!("{e}"))?;
            }
            register(p, opts, &mut b)?;
            Ok(match source {
                Source::File(path) => b.commit_from_file(path)?,
                Source::Bytes(bytes, _) => b.commit_from_memory(bytes)?,
            })
        })();
        match attempt {
            Ok(session) => {
                let report = ProviderReport { active: p, skipped };
                tracing::info!(model = %model.display(), "{report}");
                return Ok((session, report));
            }
            Err(e) if p == Provider::Cpu => {
                return Err(anyhow!("model {}: ONNX Runtime cannot load it: {e:#}", model.display()));
            }
            Err(e) => {
                // Expected on a CPU machine under `auto`; worth a warning when asked for.
                if opts.provider == Provider::Auto {
                    tracing::info!(provider = p.name(), "provider unavailable: {e:#}");
                } else {
                    tracing::warn!(provider = p.name(), "provider unavailable: {e:#}");
                }
                skipped.push((p, format!("{e:#}")));
            }
        }
    }
    unreachable!("every provider chain ends with the CPU")
}
