//! The one ONNX Runtime environment of the process, loaded at run time from the library the
//! set-up put in the cache (`ORT_DYLIB_PATH` overrides), so a missing library is an error
//! message, not a link failure; and the GPU runtime libraries the GPU providers need,
//! preloaded from the cache so that no `LD_LIBRARY_PATH` is needed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use ort::environment::Environment;

use crate::paths;

static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// Where the ONNX Runtime library is looked for, in order.
pub fn candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return vec![PathBuf::from(p)];
    }
    let cache = paths::cache_dir();
    vec![cache.join("onnxruntime-gpu/lib/libonnxruntime.so.1"), cache.join("onnxruntime/lib/libonnxruntime.so.1")]
}

fn load() -> std::result::Result<Environment, String> {
    let list = candidates();
    let path = list.iter().find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "ONNX Runtime library not found (looked at {}); run scripts/setup.sh or set ORT_DYLIB_PATH",
            list.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let builder = ort::init_from(path).map_err(|e| format!("ONNX Runtime library {}: {e}", path.display()))?;
    // One thread pool for every session of the process (the ladder's rungs, the detector,
    // the identity and edit nets, the live worker's runs): per-session pools each had one
    // thread per core, and two running at once (live mode: the detector on the streaming
    // thread, the restorer on the worker) fought over the cores. Idle threads never spin
    // (the encoder and OpenCV need the cores between runs). A session given `threads`
    // keeps a pool of its own of that size.
    let pool = ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(0)
        .and_then(|o| o.with_inter_threads(1))
        .and_then(|o| o.with_spin_control(false))
        .map_err(|e| format!("ONNX Runtime thread pool: {e}"))?;
    let env = builder
        .with_name("faceenhance")
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| format!("ONNX Runtime environment: {e}"))?;
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    Ok(env)
}

/// The process-wide environment, loading the library on first use.
pub fn environment() -> Result<&'static Environment> {
    ENV.get_or_init(load).as_ref().map_err(|e| anyhow!("{e}"))
}

/// Loads ONNX Runtime if that has not happened yet.
pub fn ensure_init() -> Result<()> {
    environment().map(|_| ())
}

/// Where `FACEENHANCE_GPU=1 FACEENHANCE_CUDA=1 scripts/setup.sh` puts the CUDA 13 and
/// cuDNN 9 runtime libraries (NVIDIA's PyPI wheels).
pub fn cuda_library_dir() -> PathBuf {
    paths::cache_dir().join("cuda").join("lib")
}

/// Where a user may unpack TensorRT 10's libraries (no registry here serves them).
pub fn tensorrt_library_dir() -> PathBuf {
    paths::cache_dir().join("tensorrt").join("lib")
}

/// TensorRT 10 libraries the TensorRT provider needs, dependencies first.
pub const TENSORRT_DYLIBS: &[&str] = &["libnvinfer.so.10", "libnvinfer_plugin.so.10", "libnvonnxparser.so.10"];

/// What a preload did: libraries loaded, and those present that would not load (with why).
#[derive(Clone, Debug, Default)]
pub struct Preloaded {
    pub loaded: Vec<String>,
    pub failed: Vec<String>,
}

/// Loads each of `names` found in `dir` (in order, dependencies first) and keeps it loaded,
/// so ONNX Runtime's provider libraries resolve them by name from there. Absent names are
/// skipped: the system's own copies may serve.
pub fn preload(dir: &Path, names: &[&str]) -> Preloaded {
    let mut out = Preloaded::default();
    for name in names {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        match ort::util::preload_dylib(&path) {
            Ok(()) => out.loaded.push(name.to_string()),
            // libloading's message is in the error's source.
            Err(e) => out.failed.push(format!("{name}: {:#}", anyhow::Error::from(e))),
        }
    }
    out
}

/// Preloads, once per process, the CUDA, cuDNN and TensorRT libraries found in the cache.
pub fn preload_gpu_libraries() -> &'static Preloaded {
    static DONE: OnceLock<Preloaded> = OnceLock::new();
    DONE.get_or_init(|| {
        let cuda = cuda_library_dir();
        let lists: [(&Path, &[&str]); 3] = [
            (&cuda, ort::ep::cuda::CUDA_DYLIBS),
            (&cuda, ort::ep::cuda::CUDNN_DYLIBS),
            (&tensorrt_library_dir(), TENSORRT_DYLIBS),
        ];
        let mut all = Preloaded::default();
        for (dir, names) in lists {
            let p = preload(dir, names);
            all.loaded.extend(p.loaded);
            all.failed.extend(p.failed);
        }
        if !all.loaded.is_empty() || !all.failed.is_empty() {
            tracing::info!(loaded = ?all.loaded, failed = ?all.failed, "GPU libraries preloaded from the cache");
        }
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_loads_what_is_there_and_says_why_the_rest_failed() {
        let dir = std::env::temp_dir().join(format!("faceenhance-preload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zlib = ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("zlib is on every Debian machine");
        std::fs::copy(zlib, dir.join("libz.so.1")).unwrap();
        std::fs::write(dir.join("libbroken.so.1"), b"not an ELF file").unwrap();
        let p = preload(&dir, &["libz.so.1", "libabsent.so.1", "libbroken.so.1"]);
        assert_eq!(p.loaded, ["libz.so.1"]);
        assert_eq!(p.failed.len(), 1, "{:?}", p.failed);
        assert!(p.failed[0].starts_with("libbroken.so.1:"), "{:?}", p.failed);
    }
}
