//! The model ladder: which model suits each face's size ([`pick_model`]), the faces'
//! aligned crops per model, pasting the restorations back, and the models' sessions,
//! opened when a face first needs them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{ensure, Context, Result};
use opencv::core::Mat;

use crate::align::{self, Similarity};
use crate::blend;
use crate::detect::Face;
use crate::frame::Frame;
use crate::model::shared::SharedRestorer;
use crate::model::{Profile, ProviderOptions};

use super::carry::{carried, Carry};
use super::config::{RestoreConfig, RestoreStats};
use super::sharpness;

/// The ladder's choice for a face whose aligned crop spans `s_in` input pixels and
/// `s_in x upscale` output pixels, and whose detail would fit a crop of `s_detail` pixels
/// (`s_in` for a sharp face, less for a blurred one: [`super::sharpness`]). Each model
/// costs how far its input size is from the face's detail, where shrinking the face into a
/// smaller input (detail thrown away) costs twice what enlarging it does, plus how far its
/// output is from the face's output size, where an output larger than the face (shrunk
/// when pasted, nothing lost) costs a quarter of one that must be stretched. `prefer` (the
/// face's model on the frame before) gets a margin, so a face near a boundary between two
/// models does not flicker between them. Models that would stretch their output more than
/// `max_stretch` onto the face come last: a face is left alone only when no model fits
/// it. Returns the index and the stretch of the model's output onto the face (output
/// size / model output size).
pub fn pick_model(
    sizes: &[(i32, i32)],
    s_in: f64,
    s_detail: f64,
    upscale: f64,
    max_stretch: f64,
    prefer: Option<usize>,
) -> Option<(usize, f64)> {
    let s_out = s_in * upscale;
    let cost = |m: usize| {
        let (i, o) = sizes[m];
        let shrink = (s_detail / i as f64).ln();
        let stretch = (s_out / o as f64).ln();
        let fits = s_out / o as f64 <= max_stretch;
        let c = if shrink > 0.0 { shrink } else { -0.5 * shrink }
            + if stretch > 0.0 { stretch } else { -0.25 * stretch }
            - if prefer == Some(m) { STICK } else { 0.0 };
        (!fits, c)
    };
    let best = (0..sizes.len()).min_by(|&a, &b| {
        let (ca, cb) = (cost(a), cost(b));
        ca.0.cmp(&cb.0).then(ca.1.total_cmp(&cb.1))
    })?;
    Some((best, s_out / sizes[best].1 as f64))
}

/// The margin a face's previous model keeps (in the cost's log units: about 10 % in size).
const STICK: f64 = 0.1;
/// Weight of a frame's blur measurement in a tracked face's running estimate.
const DETAIL_EMA: f64 = 0.3;

/// ln(s_detail / s_in) of `face` on this frame: its blur measured on its aligned crop at
/// its own size (at most [`DETAIL_SIDE`] px), 0 for a sharp face, negative for a blurred one.
fn detail_log_ratio(
    src: &Frame,
    mat: Option<&opencv::boxed_ref::BoxedRef<'_, Mat>>,
    face: &Face,
    s_in: f64,
    template: align::Template,
) -> Result<f64> {
    let side = s_in.round().clamp(16.0, DETAIL_SIDE as f64) as i32;
    let sim = align::estimate(face, template, side)?;
    let Some(crop) = blend::aligned_crop(src, mat, &sim, side)? else { return Ok(0.0) };
    let sigma = sharpness::blur_sigma(&crop)?;
    Ok(sharpness::detail_log_ratio(sigma))
}

/// The largest side the blur is measured at (a larger face's crop is shrunk to it).
const DETAIL_SIDE: i32 = 128;

/// A tracked face's running estimate of its detail and the model it had.
#[derive(Clone, Copy, Debug)]
struct Detail {
    /// ln(s_detail / s_in), averaged over the frames
    log_ratio: f64,
    rung: usize,
}

/// What the ladder knows of one model: its profile and its paste-back weights (the
/// feather mask in 8 bits, made once).
#[derive(Clone)]
pub(super) struct Rung {
    pub(super) profile: Profile,
    /// Shared with the batches that carry this stream's faces (`shared::Form`).
    pub(super) weights: Arc<Mat>,
}

/// One face on its way through a model.
pub(crate) struct Job {
    pub(super) face: usize,
    /// The face's track id (or, untracked, its place in the list): whose carry it is.
    pub(crate) key: u64,
    pub(crate) rung: usize,
    pub(crate) crop: Mat,
    pub(super) sim: Similarity,
}

/// The ladder without its sessions: picks each face's model, aligns the crops, keeps the
/// carried restorations and pastes. Cheap to run on the streaming thread while the
/// sessions work elsewhere (live mode).
#[derive(Clone)]
pub struct Ladder {
    pub(super) rungs: Vec<Rung>,
    pub(super) config: RestoreConfig,
    /// Tracked faces' detail estimates, by track id (those not seen on a frame are
    /// forgotten); shared by the clones live mode makes.
    details: Arc<Mutex<HashMap<u64, Detail>>>,
}

impl Ladder {
    pub(super) fn new(rungs: Vec<Rung>, config: RestoreConfig) -> Self {
        Self { rungs, config, details: Arc::default() }
    }

    /// How many models the ladder has.
    pub(crate) fn rungs(&self) -> usize {
        self.rungs.len()
    }

    pub(super) fn sizes(&self) -> Vec<(i32, i32)> {
        self.rungs.iter().map(|r| (r.profile.input_size, r.profile.output_size)).collect()
    }

    pub fn config(&self) -> &RestoreConfig {
        &self.config
    }

    pub fn set_strength(&mut self, strength: f32) {
        self.config.strength = strength;
    }

    /// Aligned crops of the faces worth restoring, each with its model. Also returns how
    /// many faces never worse left alone.
    pub(crate) fn plan(&self, src: &Frame, faces: &[Face]) -> Result<(Vec<Job>, usize)> {
        let k = self.config.upscale as f64;
        let sizes = self.sizes();
        // Packed frames are warped from directly (one view for all faces).
        let mat = if src.format().is_planar() { None } else { Some(src.mat()?) };
        let (mut jobs, mut skipped) = (Vec::with_capacity(faces.len()), 0);
        let mut details = self.details.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::with_capacity(faces.len());
        for (i, face) in faces.iter().enumerate() {
            if face.bbox[2] < 2.0 || face.bbox[3] < 2.0 {
                continue;
            }
            // The crop side in input pixels, from the template at a unit crop size.
            let unit = align::estimate(face, self.rungs[0].profile.template, 512)?;
            let s_in = 512.0 / unit.scale();
            let max_stretch = self.config.max_stretch as f64;
            let before = (face.id != 0).then(|| details.get(&face.id).copied()).flatten();
            let log_ratio = match self.config.by_detail {
                true => {
                    let now = detail_log_ratio(src, mat.as_ref(), face, s_in, self.rungs[0].profile.template)?;
                    match before {
                        Some(d) => d.log_ratio + DETAIL_EMA * (now - d.log_ratio),
                        None => now,
                    }
                }
                false => 0.0,
            };
            let s_detail = s_in * log_ratio.exp();
            let prefer = before.map(|d| d.rung);
            let Some((rung, stretch)) = pick_model(&sizes, s_in, s_detail, k, max_stretch, prefer) else { continue };
            tracing::debug!(face = i, s_in, s_detail, model = rung, stretch, "ladder");
            if face.id != 0 {
                seen.insert(face.id, Detail { log_ratio, rung });
            }
            if stretch > self.config.max_stretch as f64 && !self.config.force {
                skipped += 1;
                continue;
            }
            let profile = &self.rungs[rung].profile;
            let sim = align::estimate(face, profile.template, profile.input_size)?;
            let Some(crop) = blend::aligned_crop(src, mat.as_ref(), &sim, profile.input_size)? else { continue };
            let key = if face.id != 0 { face.id } else { u64::MAX - i as u64 };
            jobs.push(Job { face: i, key, rung, crop, sim });
        }
        *details = seen;
        Ok((jobs, skipped))
    }

    /// Pastes `face` (BGRA: the face and the rung's weights) for `job`.
    pub(super) fn paste(&self, dst: &mut Frame, job: &Job, face: &Mat, stats: &mut RestoreStats) -> Result<()> {
        let rung = &self.rungs[job.rung];
        let sim_out = job.sim.between_scales(self.config.upscale as f64, rung.profile.scale() as f64);
        if let Some(rect) = blend::paste(dst, face, &sim_out, self.config.strength)? {
            stats.regions.push(rect);
            stats.restored += 1;
            stats.per_model[job.rung] += 1;
            stats.assigned[job.face] = Some(job.rung);
        }
        Ok(())
    }

    /// Pastes `job`'s face with `carry`'s residual added to its current crop.
    pub(crate) fn paste_carried(
        &self,
        dst: &mut Frame,
        job: &Job,
        carry: &Carry,
        stats: &mut RestoreStats,
    ) -> Result<()> {
        self.paste(dst, job, &carried(&job.crop, carry, &self.rungs[job.rung].weights)?, stats)?;
        stats.carried += 1;
        Ok(())
    }

    pub(crate) fn stats(&self, faces: usize, skipped: usize) -> RestoreStats {
        RestoreStats {
            faces,
            skipped,
            per_model: vec![0; self.rungs.len()],
            assigned: vec![None; faces],
            identity: vec![None; faces],
            ..Default::default()
        }
    }
}

/// The ladder's ONNX Runtime sessions, each opened the first time a face needs its rung:
/// a stream whose faces are all of one size, or that has none, never pays for the others
/// (opening and warming up the ten shipped rungs cost about 0.7 s of a 600-frame bench).
/// Each is the process's shared one for its model unless `share` is off.
pub(crate) struct Sessions {
    pub(super) slots: Vec<(PathBuf, Option<Arc<SharedRestorer>>)>,
    pub(super) provider: ProviderOptions,
    pub(super) share: bool,
}

impl Sessions {
    /// Rung `r`'s session, opened now if no face needed it before (with the profile beside
    /// its file: an explicit profile means one model, opened at start).
    pub(crate) fn get(&mut self, r: usize) -> Result<&SharedRestorer> {
        let (path, slot) = &mut self.slots[r];
        if slot.is_none() {
            tracing::debug!(model = %path.display(), "opening the rung's session on its first face");
            *slot = Some(SharedRestorer::open(path, None, &self.provider, self.share)?);
        }
        Ok(slot.as_deref().expect("opened above"))
    }
}

/// A model file that will be opened later: a whole ONNX model (its protobuf fields end
/// where they say) with the input and output tensors its profile names.
pub(super) fn check_model_file(path: &std::path::Path, profile: &Profile) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (inputs, outputs) = crate::model::onnx_dims::graph_io(&bytes).context("not a readable ONNX model")?;
    ensure!(
        inputs.contains(&profile.input),
        "profile '{}' names input '{}', the model has {inputs:?}",
        profile.name,
        profile.input
    );
    ensure!(
        outputs.contains(&profile.output),
        "profile '{}' names output '{}', the model has {outputs:?}",
        profile.name,
        profile.output
    );
    Ok(())
}
