//! The one ONNX Runtime environment of the process, loaded at run time from the library the
//! set-up put in the cache (`ORT_DYLIB_PATH` overrides), so a missing library is an error
//! message, not a link failure.

use std::path::PathBuf;
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
    let env = builder.with_name("faceenhance").build().map_err(|e| format!("ONNX Runtime environment: {e}"))?;
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
