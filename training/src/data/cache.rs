//! The cache of aligned crops written by `prepare` and read by training and evaluation.
//!
//! Layout of a cache folder:
//! - `manifest.json`: source folder, crop size, template, detector, and for each split the
//!   list of source files (in the order of the crops) plus the files without a face;
//! - `train.u8`, `val.u8`: the crops, RGB u8, `size * size * 3` bytes each, back to back.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::image::Img;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SplitManifest {
    pub files: Vec<String>,
    pub no_face: Vec<String>,
    /// Left out by `prepare --min-sharpness`.
    #[serde(default)]
    pub too_soft: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub source: String,
    pub size: usize,
    pub template: String,
    pub detector: String,
    pub train: SplitManifest,
    pub val: SplitManifest,
    /// How the split was made (e.g. "by file name: 000001-009000 train, 009001-010000 val").
    pub split_rule: String,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join("manifest.json");
        let s = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Ok(serde_json::from_str(&s)?)
    }
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.u8",
            Split::Val => "val.u8",
        }
    }
}

/// All crops of one split in memory (RGB u8).
pub struct CropSet {
    pub size: usize,
    pub bytes: Vec<u8>,
    pub names: Vec<String>,
}

impl CropSet {
    pub fn load(dir: &Path, split: Split) -> Result<Self> {
        let m = Manifest::load(dir)?;
        let path: PathBuf = dir.join(split.file_name());
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let per = m.size * m.size * 3;
        let names = match split {
            Split::Train => m.train.files,
            Split::Val => m.val.files,
        };
        ensure!(
            bytes.len() == per * names.len(),
            "{}: {} bytes for {} crops of {} px",
            path.display(),
            bytes.len(),
            names.len(),
            m.size
        );
        Ok(Self { size: m.size, bytes, names })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn get(&self, i: usize) -> Img {
        let per = self.size * self.size * 3;
        Img::from_rgb8(self.size, self.size, &self.bytes[i * per..(i + 1) * per])
    }
}
