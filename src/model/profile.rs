//! How to feed a generator: tensor names, sizes, colour order, value range, alignment
//! template. One TOML file per model, beside it (`restore-64.onnx` + `restore-64.toml`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::align::Template;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

/// What a model is for; a folder of models feeds only its face models to the ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Aligned face crops in, restored (and possibly enlarged) faces out.
    #[default]
    Face,
    /// Whole-frame super-resolution (Real-ESRGAN-shaped), run in tiles.
    Background,
    /// Clean faces in, degraded faces out (training-data generators).
    Degradation,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub kind: ModelKind,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub input: String,
    pub output: String,
    /// Side of the square input crop (px).
    pub input_size: i32,
    /// Side of the square output (input_size x the model's scale).
    pub output_size: i32,
    #[serde(default)]
    pub channels: ChannelOrder,
    /// Value range of input and output tensors, e.g. [0, 1] or [-1, 1].
    #[serde(default = "unit_range")]
    pub range: [f32; 2],
    #[serde(default)]
    pub template: Template,
}

fn unit_range() -> [f32; 2] {
    [0.0, 1.0]
}

impl Profile {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("profile {}", path.display()))?;
        let p: Profile = toml::from_str(&text).with_context(|| format!("profile {}: invalid", path.display()))?;
        p.validate().with_context(|| format!("profile {}", path.display()))?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        if self.input_size < 4 || self.output_size < 4 {
            bail!("input_size {} and output_size {} must be at least 4", self.input_size, self.output_size);
        }
        if self.range[1] <= self.range[0] {
            bail!("range {:?} is empty", self.range);
        }
        Ok(())
    }

    /// The profile beside a model (`x.onnx` -> `x.toml`).
    pub fn beside(model: &Path) -> PathBuf {
        model.with_extension("toml")
    }

    /// `explicit` if given, else the profile beside the model.
    pub fn for_model(model: &Path, explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = Self::beside(model);
                if !p.is_file() {
                    bail!(
                        "model {}: no profile (expected {} beside it, or set profile=FILE)",
                        model.display(),
                        p.display()
                    );
                }
                p
            }
        };
        Self::from_file(&path)
    }

    /// Output pixels per input pixel.
    pub fn scale(&self) -> f32 {
        self.output_size as f32 / self.input_size as f32
    }
}
