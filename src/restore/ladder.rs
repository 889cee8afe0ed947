//! The model ladder: which model suits each face's size ([`pick_model`]), the faces'
//! aligned crops per model, pasting the restorations back, and the models' sessions,
//! opened when a face first needs them.

use std::path::PathBuf;
use std::sync::Arc;

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

/// The ladder's choice for a face whose aligned crop spans `s_in` input pixels and
/// `s_in x upscale` output pixels: the model whose output size is nearest (in log scale)
/// to the face's output size, and whose input size is nearest to the face's input size,
/// where shrinking the crop into a smaller input (detail thrown away) costs twice what
/// enlarging it does. Models that would stretch their output more than `max_stretch` onto
/// the face come last: a face is left alone only when no model fits it. Returns the index
/// and the stretch of the model's output onto the face (output size / model output size).
pub fn pick_model(sizes: &[(i32, i32)], s_in: f64, upscale: f64, max_stretch: f64) -> Option<(usize, f64)> {
    let s_out = s_in * upscale;
    let cost = |&(i, o): &(i32, i32)| {
        let shrink = (s_in / i as f64).ln();
        let fits = s_out / o as f64 <= max_stretch;
        let c = (s_out / o as f64).ln().abs() + if shrink > 0.0 { shrink } else { -0.5 * shrink };
        (!fits, c)
    };
    let best = (0..sizes.len()).min_by(|&a, &b| {
        let (ca, cb) = (cost(&sizes[a]), cost(&sizes[b]));
        ca.0.cmp(&cb.0).then(ca.1.total_cmp(&cb.1))
    })?;
    Some((best, s_out / sizes[best].1 as f64))
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
}

impl Ladder {
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
        for (i, face) in faces.iter().enumerate() {
            if face.bbox[2] < 2.0 || face.bbox[3] < 2.0 {
                continue;
            }
            // The crop side in input pixels, from the template at a unit crop size.
            let unit = align::estimate(face, self.rungs[0].profile.template, 512)?;
            let s_in = 512.0 / unit.scale();
            let max_stretch = self.config.max_stretch as f64;
            let Some((rung, stretch)) = pick_model(&sizes, s_in, k, max_stretch) else { continue };
            tracing::debug!(face = i, s_in, model = rung, stretch, "ladder");
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
