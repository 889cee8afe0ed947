//! Restoration of the faces of a frame: the model ladder (which model suits each face's
//! size, [`pick_model`]), alignment to each model's template, inference (one batch per
//! model and frame), and blending back into the frame or an up-scaled one. A face's last
//! restoration can be carried onto the next frames ([`RestoreConfig::refresh`]): its
//! residual (output minus input, in the aligned crop) is added to the face's new crop,
//! so a tracked face stays restored without running the model on every frame.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use opencv::core::{Mat, Size, CV_32FC3};
use opencv::imgproc;
use opencv::prelude::*;

use crate::align::{self, Similarity};
use crate::blend;
use crate::detect::Face;
use crate::frame::{self, Frame};
use crate::model::profile::ModelKind;
use crate::model::profile::ProfileSource;
use crate::model::{Profile, ProviderOptions, Restorer};
use crate::upscale::{BackgroundConfig, Upscaler};

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
    pub infer_ms: f64,
    pub total_ms: f64,
}

/// The model files a list of files and folders names: files as given, folders expanded
/// to their `*.onnx` files with a face-model profile beside them, sorted by name.
pub fn expand_models(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("model folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "onnx") && Profile::beside(f).is_file())
                .map(|f| Ok((Profile::from_file(&Profile::beside(&f))?.kind, f)))
                .filter_map(|r: Result<_>| match r {
                    Ok((ModelKind::Face, f)) => Some(Ok(f)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()?;
            if found.is_empty() {
                bail!("model folder {}: no .onnx file with a .toml profile beside it", p.display());
            }
            found.sort();
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

/// What the ladder knows of one model: its profile and its paste-back mask.
#[derive(Clone)]
struct Rung {
    profile: Profile,
    mask: Mat,
}

/// One face on its way through a model.
pub(crate) struct Job {
    face: usize,
    /// The face's track id (or, untracked, its place in the list): whose carry it is.
    pub(crate) key: u64,
    pub(crate) rung: usize,
    pub(crate) crop: Mat,
    sim: Similarity,
}

/// A face's last restoration: the model's output minus its input (both at the output
/// size, f32), in the aligned crop's coordinates, and how many frames it has been carried.
pub(crate) struct Carry {
    rung: usize,
    residual: Mat,
    age: u32,
}

impl Carry {
    /// Frames since the restoration was made.
    pub(crate) fn age(&self) -> u32 {
        self.age
    }
}

/// The model's output minus its input crop brought to the output size: what restoration
/// added, ready to be added to a later crop of the same face.
pub(crate) fn residual(output: &Mat, crop: &Mat) -> Result<Mat> {
    let mut d = Mat::default();
    opencv::core::subtract(output, &as_output(crop, output.rows())?, &mut d, &opencv::core::no_array(), CV_32FC3)?;
    Ok(d)
}

/// A BGR u8 crop as f32 at `size` (bicubic when a super-resolution model's output is larger).
fn as_output(crop: &Mat, size: i32) -> Result<Mat> {
    let sized = if crop.rows() == size {
        crop.clone()
    } else {
        let mut m = Mat::default();
        imgproc::resize(crop, &mut m, Size::new(size, size), 0.0, 0.0, imgproc::INTER_CUBIC)?;
        m
    };
    let mut f = Mat::default();
    sized.convert_to(&mut f, CV_32FC3, 1.0, 0.0)?;
    Ok(f)
}

/// The ladder without its sessions: picks each face's model, aligns the crops, keeps the
/// carried restorations and pastes. Cheap to run on the streaming thread while the
/// sessions work elsewhere (live mode).
#[derive(Clone)]
pub struct Ladder {
    rungs: Vec<Rung>,
    config: RestoreConfig,
}

impl Ladder {
    /// How many models the ladder has.
    pub(crate) fn rungs(&self) -> usize {
        self.rungs.len()
    }

    fn sizes(&self) -> Vec<(i32, i32)> {
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
        // Packed frames are warped from directly; I420 ones through BGR copies of regions.
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
            let Some([x, y, w, h]) = blend::covered_rect(&sim, profile.input_size, src.width(), src.height()) else {
                continue;
            };
            let crop = match &mat {
                Some(mat) => frame::to_bgr(&align::warp(mat, &sim, profile.input_size)?, src.format())?,
                None => {
                    // I420: a BGR copy of the face's surroundings (a pixel more on each side
                    // for the interpolation at the crop's edge), warped from there.
                    let (x0, y0) = ((x - 2).max(0), (y - 2).max(0));
                    let (x1, y1) = ((x + w + 2).min(src.width()), (y + h + 2).min(src.height()));
                    let region = src.bgr_region([x0, y0, x1 - x0, y1 - y0], 1.0)?;
                    align::warp(&region, &sim.with_source_offset(x0 as f64, y0 as f64), profile.input_size)?
                }
            };
            let key = if face.id != 0 { face.id } else { u64::MAX - i as u64 };
            jobs.push(Job { face: i, key, rung, crop, sim });
        }
        Ok((jobs, skipped))
    }

    /// Pastes `out` (the model's output for `job`, or its crop plus a carried residual).
    fn paste(&self, dst: &mut Frame, job: &Job, out: &Mat, stats: &mut RestoreStats) -> Result<()> {
        let rung = &self.rungs[job.rung];
        let sim_out = job.sim.between_scales(self.config.upscale as f64, rung.profile.scale() as f64);
        if let Some(rect) = blend::paste(dst, out, &rung.mask, &sim_out, self.config.strength)? {
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
        let size = self.rungs[job.rung].profile.output_size;
        let mut out = Mat::default();
        opencv::core::add(&as_output(&job.crop, size)?, &carry.residual, &mut out, &opencv::core::no_array(), -1)?;
        self.paste(dst, job, &out, stats)?;
        stats.carried += 1;
        Ok(())
    }

    pub(crate) fn stats(&self, faces: usize, skipped: usize) -> RestoreStats {
        RestoreStats {
            faces,
            skipped,
            per_model: vec![0; self.rungs.len()],
            assigned: vec![None; faces],
            ..Default::default()
        }
    }
}

/// Carried restorations by face key; those of faces gone from the frame are dropped.
#[derive(Default)]
pub(crate) struct Carries {
    map: HashMap<u64, Carry>,
}

impl Carries {
    /// The carry of `job`'s face, if it was made by the same model and is younger than
    /// `refresh` frames.
    pub(crate) fn usable(&self, job: &Job, refresh: u32) -> Option<&Carry> {
        self.map.get(&job.key).filter(|c| c.rung == job.rung && c.age < refresh)
    }

    /// The latest restoration of `job`'s face by its model, however old (live mode).
    pub(crate) fn latest(&self, job: &Job) -> Option<&Carry> {
        self.map.get(&job.key).filter(|c| c.rung == job.rung)
    }

    pub(crate) fn store(&mut self, key: u64, rung: usize, residual: Mat) {
        self.map.insert(key, Carry { rung, residual, age: 0 });
    }

    /// Ages the carries of this frame's faces and forgets everybody else's.
    pub(crate) fn retain(&mut self, jobs: &[Job]) {
        self.map.retain(|k, _| jobs.iter().any(|j| j.key == *k));
        for c in self.map.values_mut() {
            c.age += 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

/// The ladder's ONNX Runtime sessions, each opened the first time a face needs its rung:
/// a stream whose faces are all of one size, or that has none, never pays for the others
/// (opening and warming up the ten shipped rungs cost about 0.7 s of a 600-frame bench).
pub(crate) struct Sessions {
    slots: Vec<(PathBuf, Option<Restorer>)>,
    provider: ProviderOptions,
}

impl Sessions {
    /// Rung `r`'s session at `fidelity`, opened now if no face needed it before (with the
    /// profile beside its file: an explicit profile means one model, opened at start).
    pub(crate) fn get(&mut self, r: usize, fidelity: f32) -> Result<&mut Restorer> {
        let (path, slot) = &mut self.slots[r];
        if slot.is_none() {
            tracing::debug!(model = %path.display(), "opening the rung's session on its first face");
            *slot = Some(Restorer::load(path, None, &self.provider)?);
        }
        let session = slot.as_mut().expect("opened above");
        if session.fidelity() != fidelity {
            session.set_fidelity(fidelity);
        }
        Ok(session)
    }
}

/// A model file that will be opened later: a whole ONNX model (its protobuf fields end
/// where they say) with the input and output tensors its profile names.
fn check_model_file(path: &std::path::Path, profile: &Profile) -> Result<()> {
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

/// Align, infer (one batch per model and frame) and blend, into the same frame or an
/// up-scaled one.
pub struct FaceRestorer {
    ladder: Ladder,
    sessions: Sessions,
    carries: Carries,
    background: Option<Upscaler>,
}

impl FaceRestorer {
    /// Opens the first rung's session now (a broken first model fails at start), and for
    /// the others reads their profiles and checks their files (whole ONNX models with the
    /// tensors their profiles name); their sessions open when a face first needs them.
    pub fn new(config: RestoreConfig) -> Result<Self> {
        let paths = expand_models(&config.models)?;
        if config.profile.is_some() && paths.len() > 1 {
            bail!("an explicit profile fits one model, but {} models are given", paths.len());
        }
        let mut rungs = Vec::with_capacity(paths.len());
        let mut sessions = Sessions { slots: Vec::with_capacity(paths.len()), provider: config.provider.clone() };
        for (i, path) in paths.iter().enumerate() {
            let ctx = || format!("model {}", path.display());
            // the later rungs open on their first face; one without a profile file is
            // recognised from its session, so it opens now
            let beside = match i {
                0 => None,
                _ => match Profile::source(path, None).with_context(ctx)? {
                    ProfileSource::File(p) => Some(Profile::from_file(&p)?),
                    ProfileSource::Auto => None,
                },
            };
            let (profile, session) = match beside {
                Some(p) => {
                    check_model_file(path, &p).with_context(ctx)?;
                    (p, None)
                }
                None => {
                    let r = Restorer::load(path, config.profile.as_deref(), &config.provider)?;
                    (r.profile().clone(), Some(r))
                }
            };
            let kind = profile.kind;
            profile.ensure_kind(ModelKind::Face).with_context(|| match kind {
                ModelKind::Background => format!("model {}: give it as the background model", path.display()),
                _ => format!("model {}", path.display()),
            })?;
            let mask = blend::feather_mask(profile.output_size, config.feather)?;
            rungs.push(Rung { profile, mask });
            sessions.slots.push((path.clone(), session));
        }
        let background = (config.upscale != 1)
            .then(|| Upscaler::new(config.upscale, &config.background, &config.provider))
            .transpose()?;
        Ok(Self { ladder: Ladder { rungs, config }, sessions, carries: Carries::default(), background })
    }

    /// The ladder's first model (the only one unless several are given).
    pub fn restorer(&self) -> &Restorer {
        self.sessions.slots[0].1.as_ref().expect("the first rung opens at start")
    }

    /// The sessions opened so far (the first rung's, and those faces have needed).
    pub fn restorers(&self) -> impl Iterator<Item = &Restorer> {
        self.sessions.slots.iter().filter_map(|s| s.1.as_ref())
    }

    /// (input size, output size) of every rung, smallest first.
    pub fn model_sizes(&self) -> Vec<(i32, i32)> {
        self.ladder.sizes()
    }

    /// The ladder's model names, smallest rung first.
    pub fn model_names(&self) -> Vec<String> {
        self.ladder.rungs.iter().map(|r| r.profile.name.clone()).collect()
    }

    pub fn upscale(&self) -> u32 {
        self.ladder.config.upscale
    }

    pub fn set_strength(&mut self, strength: f32) {
        self.ladder.set_strength(strength);
    }

    pub fn strength(&self) -> f32 {
        self.ladder.config.strength
    }

    pub fn fidelity(&self) -> f32 {
        self.ladder.config.fidelity
    }

    pub fn set_fidelity(&mut self, fidelity: f32) {
        self.ladder.config.fidelity = fidelity;
    }

    /// Frames between two runs of the model on a tracked face (1: every frame).
    pub fn set_refresh(&mut self, n: u32) {
        self.ladder.config.refresh = n.max(1);
    }

    /// Forget carried restorations (a seek: the faces after it are not those before).
    pub fn reset(&mut self) {
        self.carries.clear();
    }

    /// The planning half and the sessions, apart (live mode runs them on two threads).
    pub(crate) fn into_parts(self) -> (Ladder, Sessions) {
        (self.ladder, self.sessions)
    }

    /// Restores `faces` (frame coordinates) in place; needs `upscale` 1.
    pub fn restore(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<RestoreStats> {
        let start = Instant::now();
        ensure!(self.ladder.config.upscale == 1, "upscale {}: restore into a larger frame", self.ladder.config.upscale);
        let (jobs, skipped) = self.ladder.plan(frame, faces)?;
        self.finish(jobs, skipped, frame, faces.len(), start)
    }

    /// Up-scales `src` into `dst` (`upscale` times larger, same layout) and pastes the
    /// restored `faces` (`src` coordinates) at their size in `dst`.
    pub fn restore_into(&mut self, src: &Frame, dst: &mut Frame, faces: &[Face]) -> Result<RestoreStats> {
        let start = Instant::now();
        match self.background.as_mut() {
            Some(bg) => bg.upscale(src, dst)?,
            None => {
                ensure!(
                    (dst.width(), dst.height(), dst.stride()) == (src.width(), src.height(), src.stride()),
                    "output frame differs from the input at upscale 1"
                );
                let n = src.data().len().min(dst.data().len());
                dst.data_mut()?[..n].copy_from_slice(&src.data()[..n]);
            }
        }
        let (jobs, skipped) = self.ladder.plan(src, faces)?;
        self.finish(jobs, skipped, dst, faces.len(), start)
    }

    /// Infers each model's faces as one batch (but for faces whose carried restoration is
    /// still young) and pastes them into `dst`.
    fn finish(
        &mut self,
        jobs: Vec<Job>,
        skipped: usize,
        dst: &mut Frame,
        faces: usize,
        start: Instant,
    ) -> Result<RestoreStats> {
        let mut stats = self.ladder.stats(faces, skipped);
        if self.ladder.config.strength <= 0.0 {
            stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(stats);
        }
        let refresh = self.ladder.config.refresh.max(1);
        for r in 0..self.ladder.rungs.len() {
            let mine: Vec<&Job> = jobs.iter().filter(|j| j.rung == r).collect();
            let (carried, fresh): (Vec<&Job>, Vec<&Job>) =
                mine.into_iter().partition(|j| refresh > 1 && self.carries.usable(j, refresh).is_some());
            for job in carried {
                let carry = self.carries.usable(job, refresh).expect("partitioned on it");
                self.ladder.paste_carried(dst, job, carry, &mut stats)?;
            }
            if fresh.is_empty() {
                continue;
            }
            let crops: Vec<Mat> = fresh.iter().map(|j| j.crop.clone()).collect();
            let session = self.sessions.get(r, self.ladder.config.fidelity)?;
            let t = Instant::now();
            let outputs = session.infer(&crops)?;
            stats.infer_ms += t.elapsed().as_secs_f64() * 1e3;
            for (out, job) in outputs.iter().zip(&fresh) {
                self.ladder.paste(dst, job, out, &mut stats)?;
                if refresh > 1 {
                    self.carries.store(job.key, r, residual(out, &job.crop)?);
                }
            }
        }
        self.carries.retain(&jobs);
        stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(stats)
    }
}
