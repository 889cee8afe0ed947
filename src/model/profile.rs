//! How to feed a generator: tensor names, sizes, colour order, value range, alignment
//! template, extra inputs. One TOML file per model, beside it (`restore-64.onnx` +
//! `restore-64.toml`); published families have theirs under `models/profiles/`, found by
//! name (`profile=gfpgan-1.4`); `profile=auto` reads them off the model ([`super::recognise`]).

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
    /// Aligned face crops in, one logit per attribute out ([`crate::model::attributes`]).
    Attributes,
    /// Aligned face crops and the attributes asked for in, edited faces out
    /// ([`crate::edit`]).
    Edit,
}

impl std::fmt::Display for ModelKind {
    /// As the profile's `kind` spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Face => "face",
            Self::Background => "background",
            Self::Degradation => "degradation",
            Self::Attributes => "attributes",
            Self::Edit => "edit",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub kind: ModelKind,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The image input's name.
    #[serde(default = "default_input")]
    pub input: String,
    /// The image output's name; empty: the model's first output (published exports name
    /// it differently from one converter to the next).
    #[serde(default)]
    pub output: String,
    /// Side of the square input crop (px).
    pub input_size: i32,
    /// Side of the square output (input_size x the model's scale); none for attributes.
    #[serde(default)]
    pub output_size: i32,
    #[serde(default)]
    pub channels: ChannelOrder,
    /// Value range of input and output tensors, e.g. [0, 1] or [-1, 1].
    #[serde(default = "unit_range")]
    pub range: [f32; 2],
    #[serde(default)]
    pub template: Template,
    /// A scalar input that trades restoration for fidelity to the input (CodeFormer's
    /// `w`: 0 = strongest restoration, 1 = closest to the input); fed the `fidelity`
    /// setting.
    #[serde(default)]
    pub fidelity_input: Option<String>,
    /// `kind = "attributes"`: the attributes' names, in the order of the output's logits;
    /// `kind = "edit"`: the editable ones, in the order of the condition input.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// `kind = "edit"`: the input `[batch, attributes, 1, 1]` that says what to change per
    /// attribute (+1 add, -1 remove, 0 keep as it is).
    #[serde(default)]
    pub condition_input: Option<String>,
}

fn unit_range() -> [f32; 2] {
    [0.0, 1.0]
}

fn default_input() -> String {
    "input".into()
}

/// Where a model's profile comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileSource {
    File(PathBuf),
    /// Recognised from the model's inputs and outputs.
    Auto,
}

impl Profile {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("profile {}", path.display()))?;
        let p: Profile = toml::from_str(&text).with_context(|| format!("profile {}: invalid", path.display()))?;
        p.validate().with_context(|| format!("profile {}", path.display()))?;
        Ok(p)
    }

    fn validate(&self) -> Result<()> {
        if self.kind == ModelKind::Attributes {
            if self.input_size < 4 || self.attributes.is_empty() {
                bail!("an attributes model needs input_size >= 4 and the attributes' names");
            }
        } else if self.kind == ModelKind::Edit && (self.attributes.is_empty() || self.condition_input.is_none()) {
            bail!("an edit model needs the attributes' names and its condition_input");
        } else if self.input_size < 4 || self.output_size < 4 {
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

    /// The folder of the published families' profiles.
    pub fn families_dir() -> PathBuf {
        crate::paths::models_dir().join("profiles")
    }

    /// The published families a profile name can name (`gfpgan-1.4`, ...), sorted.
    pub fn families() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(Self::families_dir())
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Which profile a model gets: `explicit` (a file, `auto`, or a family name from
    /// [`Self::families`]) if given, else the TOML beside the model, else `auto`.
    pub fn source(model: &Path, explicit: Option<&Path>) -> Result<ProfileSource> {
        let Some(p) = explicit else {
            let beside = Self::beside(model);
            return Ok(if beside.is_file() { ProfileSource::File(beside) } else { ProfileSource::Auto });
        };
        if p.as_os_str() == "auto" {
            return Ok(ProfileSource::Auto);
        }
        if p.is_file() {
            return Ok(ProfileSource::File(p.to_path_buf()));
        }
        let family = Self::families_dir().join(format!("{}.toml", p.display()));
        if p.components().count() == 1 && family.is_file() {
            return Ok(ProfileSource::File(family));
        }
        bail!(
            "profile '{}': no such file, and not one of the published families ({}) or auto",
            p.display(),
            Self::families().join(", ")
        )
    }

    /// An error unless the profile is of `kind`, saying what it is instead.
    pub fn ensure_kind(&self, kind: ModelKind) -> Result<()> {
        if self.kind != kind {
            bail!("profile '{}' is a {} model, not a {kind} one", self.name, self.kind);
        }
        Ok(())
    }

    /// Output pixels per input pixel.
    pub fn scale(&self) -> f32 {
        self.output_size as f32 / self.input_size as f32
    }
}
