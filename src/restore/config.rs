//! What restoration is asked to do ([`RestoreConfig`], one place for its defaults), which
//! model files that means, and what one frame's restoration did ([`RestoreStats`]).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::model::profile::ModelKind;
use crate::model::{Profile, ProviderOptions};
use crate::upscale::BackgroundConfig;

#[derive(Clone, Debug)]
pub struct RestoreConfig {
    /// Model files, or folders whose `*.onnx` files with a profile beside them are all
    /// taken: the model ladder. Each face goes to the model that suits its size best.
    pub models: Vec<PathBuf>,
    /// Profile for a single model: a file, a published family's name (`gfpgan-1.4`) or
    /// `auto`; None: the TOML beside each model, else `auto`.
    pub profile: Option<PathBuf>,
    pub provider: ProviderOptions,
    /// 0: frame untouched, 1: restored face fully replaces the original.
    pub strength: f32,
    /// Width of the soft mask edge as a fraction of the crop side.
    pub feather: f32,
    /// Output frame = input frame x `upscale` (1: restore in place).
    pub upscale: u32,
    pub background: BackgroundConfig,
    /// Never worse: a face whose output crop is more than this many times the chosen
    /// model's output keeps the background's pixels (an up-scaled restoration is blurrier).
    pub max_stretch: f32,
    /// Paste every face, whatever its stretch.
    pub force: bool,
    /// Fed to models with a fidelity input (CodeFormer's `w`): 0 = strongest restoration,
    /// 1 = closest to the input.
    pub fidelity: f32,
    /// Run the model on a tracked face every this many frames and carry its restoration
    /// (the residual, warped with the face) onto the frames between (1: every frame).
    pub refresh: u32,
    /// Measure how far each fresh restoration moved its face's identity (descriptor
    /// distance of output to input, `model::identity`; one face-net run per face and
    /// frame): a restorer that changes who someone is must be seen.
    pub identity: bool,
    /// Share each model's session with every other stream of the process that uses it,
    /// and run the faces those streams have ready together as one batch
    /// (`model::shared`); false: sessions of this stream's own.
    pub share_sessions: bool,
    /// Pick each face's model by the detail it has, not only its size: its blur is
    /// measured ([`super::sharpness`]) and a blurred face goes to the rung made for a face
    /// of the size its detail would fit (a super-resolution rung that redraws it).
    pub by_detail: bool,
}

impl RestoreConfig {
    /// The default settings with one model file (or folder).
    pub fn with_model(model: impl Into<PathBuf>) -> Self {
        Self { models: vec![model.into()], ..Default::default() }
    }
}

impl Default for RestoreConfig {
    fn default() -> Self {
        Self {
            models: vec![crate::paths::default_models()],
            profile: None,
            provider: ProviderOptions::default(),
            strength: 1.0,
            feather: 0.1,
            upscale: 1,
            background: BackgroundConfig::default(),
            max_stretch: 1.25,
            force: false,
            fidelity: 0.5,
            refresh: 1,
            identity: false,
            share_sessions: true,
            by_detail: true,
        }
    }
}

/// What one frame's restoration did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestoreStats {
    pub faces: usize,
    pub restored: usize,
    /// Faces left as the background has them because the best model's output would have
    /// to be stretched more than `max_stretch` (never worse).
    pub skipped: usize,
    /// Faces per model of the ladder, in ladder order.
    pub per_model: Vec<usize>,
    /// For each face given: the ladder index of the model that restored it (None: not
    /// restored: too small, off the frame, or skipped).
    pub assigned: Vec<Option<usize>>,
    /// Faces restored with an earlier restoration carried onto this frame (counted in
    /// `restored` too).
    pub carried: usize,
    /// Output-frame rectangles that may have changed (x, y, w, h).
    pub regions: Vec<[i32; 4]>,
    /// With `RestoreConfig::identity`, for each face given: how far its fresh restoration
    /// lies from its input in descriptor distance (None: not restored afresh this frame,
    /// or its model's crops are not FFHQ-aligned).
    pub identity: Vec<Option<f32>>,
    pub infer_ms: f64,
    pub total_ms: f64,
}

/// The model files a list of files and folders names: files as given, folders expanded
/// to their `*.onnx` files with a face-model profile beside them, smallest first (input size, then output size).
pub fn expand_models(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<(i32, i32, PathBuf)> = std::fs::read_dir(p)
                .with_context(|| format!("model folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "onnx") && Profile::beside(f).is_file())
                .map(|f| Ok((Profile::from_file(&Profile::beside(&f))?, f)))
                .filter_map(|r: Result<_>| match r {
                    Ok((p, f)) if p.kind == ModelKind::Face => Some(Ok((p.input_size, p.output_size, f))),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()?;
            if found.is_empty() {
                bail!("model folder {}: no .onnx file with a .toml profile beside it", p.display());
            }
            // smallest first, by size, not by name: the first rung opens (and warms up) at
            // start, and by name restore-1024 came before restore-128 (+150 MB at start)
            found.sort();
            let found = found.into_iter().map(|(_, _, f)| f);
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        bail!("no model given");
    }
    Ok(out)
}
