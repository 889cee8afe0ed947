//! The stages joined: [`FaceRestorer`] (align -> infer -> blend for the faces of one frame),
//! [`Enhancer`] (detect + track + restore, for the CLI, tests and benches), and
//! [`run_threaded`], which overlaps detection of frame n+1 with restoration of frame n on
//! two worker threads joined by bounded channels, frames leaving in order.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use crossbeam_channel::bounded;
use opencv::core::Mat;
use opencv::prelude::*;

use crate::align::{self, Similarity};
use crate::blend;
use crate::detect::{Detector, DetectorConfig, Face};
use crate::frame::{self, Frame, PixelFormat};
use crate::model::profile::ModelKind;
use crate::model::{Profile, ProviderOptions, Restorer};
use crate::track::{FaceStream, TrackConfig};
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

/// One model of the ladder and its paste-back mask.
struct Rung {
    restorer: Restorer,
    mask: Mat,
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

/// One face on its way through a model.
struct Job {
    face: usize,
    rung: usize,
    crop: Mat,
    sim: Similarity,
}

/// Align, infer (one batch per model and frame) and blend, into the same frame or an
/// up-scaled one.
pub struct FaceRestorer {
    rungs: Vec<Rung>,
    background: Option<Upscaler>,
    config: RestoreConfig,
}

impl FaceRestorer {
    pub fn new(config: RestoreConfig) -> Result<Self> {
        let paths = expand_models(&config.models)?;
        if config.profile.is_some() && paths.len() > 1 {
            bail!("an explicit profile fits one model, but {} models are given", paths.len());
        }
        let mut rungs = Vec::with_capacity(paths.len());
        for path in &paths {
            let mut restorer = Restorer::load(path, config.profile.as_deref(), &config.provider)?;
            let kind = restorer.profile().kind;
            restorer.profile().ensure_kind(ModelKind::Face).with_context(|| match kind {
                ModelKind::Background => format!("model {}: give it as the background model", path.display()),
                _ => format!("model {}", path.display()),
            })?;
            restorer.set_fidelity(config.fidelity);
            let mask = blend::feather_mask(restorer.profile().output_size, config.feather)?;
            rungs.push(Rung { restorer, mask });
        }
        let background = (config.upscale != 1)
            .then(|| Upscaler::new(config.upscale, &config.background, &config.provider))
            .transpose()?;
        Ok(Self { rungs, background, config })
    }

    /// The ladder's first model (the only one unless several are given).
    pub fn restorer(&self) -> &Restorer {
        &self.rungs[0].restorer
    }

    pub fn restorers(&self) -> impl Iterator<Item = &Restorer> {
        self.rungs.iter().map(|r| &r.restorer)
    }

    pub fn upscale(&self) -> u32 {
        self.config.upscale
    }

    pub fn set_strength(&mut self, strength: f32) {
        self.config.strength = strength;
    }

    pub fn strength(&self) -> f32 {
        self.config.strength
    }

    pub fn fidelity(&self) -> f32 {
        self.config.fidelity
    }

    pub fn set_fidelity(&mut self, fidelity: f32) {
        self.config.fidelity = fidelity;
        for rung in &mut self.rungs {
            rung.restorer.set_fidelity(fidelity);
        }
    }

    /// Restores `faces` (frame coordinates) in place; needs `upscale` 1.
    pub fn restore(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<RestoreStats> {
        let start = Instant::now();
        ensure!(self.config.upscale == 1, "upscale {}: restore into a larger frame", self.config.upscale);
        let (jobs, skipped) = self.jobs(frame, faces)?;
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
        let (jobs, skipped) = self.jobs(src, faces)?;
        self.finish(jobs, skipped, dst, faces.len(), start)
    }

    /// Aligned crops of the faces worth restoring, each with its model.
    /// Also returns how many faces never worse left alone.
    fn jobs(&self, src: &Frame, faces: &[Face]) -> Result<(Vec<Job>, usize)> {
        let k = self.config.upscale as f64;
        let sizes: Vec<(i32, i32)> =
            self.rungs.iter().map(|r| (r.restorer.profile().input_size, r.restorer.profile().output_size)).collect();
        let mat = src.mat()?;
        let (mut jobs, mut skipped) = (Vec::with_capacity(faces.len()), 0);
        for (i, face) in faces.iter().enumerate() {
            if face.bbox[2] < 2.0 || face.bbox[3] < 2.0 {
                continue;
            }
            // The crop side in input pixels, from the template at a unit crop size.
            let unit = align::estimate(face, self.rungs[0].restorer.profile().template, 512)?;
            let s_in = 512.0 / unit.scale();
            let max_stretch = self.config.max_stretch as f64;
            let Some((rung, stretch)) = pick_model(&sizes, s_in, k, max_stretch) else { continue };
            tracing::debug!(face = i, s_in, model = rung, stretch, "ladder");
            if stretch > self.config.max_stretch as f64 && !self.config.force {
                skipped += 1;
                continue;
            }
            let profile = self.rungs[rung].restorer.profile();
            let sim = align::estimate(face, profile.template, profile.input_size)?;
            if blend::covered_rect(&sim, profile.input_size, src.width(), src.height()).is_none() {
                continue;
            }
            let crop = frame::to_bgr(&align::warp(&mat, &sim, profile.input_size)?, src.format())?;
            jobs.push(Job { face: i, rung, crop, sim });
        }
        Ok((jobs, skipped))
    }

    /// Infers each model's faces as one batch and pastes them into `dst`.
    fn finish(
        &mut self,
        jobs: Vec<Job>,
        skipped: usize,
        dst: &mut Frame,
        faces: usize,
        start: Instant,
    ) -> Result<RestoreStats> {
        let mut stats = RestoreStats {
            faces,
            skipped,
            per_model: vec![0; self.rungs.len()],
            assigned: vec![None; faces],
            ..Default::default()
        };
        if self.config.strength <= 0.0 {
            stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(stats);
        }
        let k = self.config.upscale as f64;
        for (r, rung) in self.rungs.iter_mut().enumerate() {
            let mine: Vec<&Job> = jobs.iter().filter(|j| j.rung == r).collect();
            if mine.is_empty() {
                continue;
            }
            let crops: Vec<Mat> = mine.iter().map(|j| j.crop.clone()).collect();
            let t = Instant::now();
            let outputs = rung.restorer.infer(&crops)?;
            stats.infer_ms += t.elapsed().as_secs_f64() * 1e3;
            let m = rung.restorer.profile().scale() as f64;
            for (out, job) in outputs.iter().zip(&mine) {
                let sim_out = job.sim.between_scales(k, m);
                if let Some(rect) = blend::paste(dst, out, &rung.mask, &sim_out, self.config.strength)? {
                    stats.regions.push(rect);
                    stats.restored += 1;
                    stats.per_model[r] += 1;
                    stats.assigned[job.face] = Some(r);
                }
            }
        }
        stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(stats)
    }
}

/// Detection + tracking + restoration on one thread.
pub struct Enhancer {
    pub faces: FaceStream,
    pub restorer: FaceRestorer,
}

impl Enhancer {
    pub fn new(detect: DetectorConfig, restore: RestoreConfig) -> Result<Self> {
        let faces = FaceStream::new(Detector::new(detect)?, TrackConfig::default());
        Ok(Self { faces, restorer: FaceRestorer::new(restore)? })
    }

    /// The next frame of a video: faces tracked and smoothed from the frames before.
    pub fn process(&mut self, frame: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        let (faces, _) = self.faces.next(frame)?;
        let stats = self.restorer.restore(frame, &faces)?;
        Ok((faces, stats))
    }

    /// A still picture: nothing carried over from earlier pictures.
    pub fn process_image(&mut self, frame: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        self.faces.reset();
        self.process(frame)
    }

    /// A still picture into `dst`, `upscale` times larger than `src`.
    pub fn process_image_into(&mut self, src: &Frame, dst: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        self.faces.reset();
        let (faces, _) = self.faces.next(src)?;
        let stats = self.restorer.restore_into(src, dst, &faces)?;
        Ok((faces, stats))
    }
}

/// A frame that owns its pixels, for moving between threads.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: PixelFormat,
}

impl OwnedFrame {
    pub fn view(&mut self) -> Result<Frame<'_>> {
        Frame::new(&mut self.data, self.width, self.height, self.stride, self.format)
    }

    /// A packed BGR copy of an OpenCV image.
    pub fn from_bgr(m: &Mat) -> Result<Self> {
        let mut m = m.try_clone()?;
        let f = frame::frame_from_mat(&mut m)?;
        Ok(Self {
            data: f.data().to_vec(),
            width: f.width() as u32,
            height: f.height() as u32,
            stride: f.stride(),
            format: f.format(),
        })
    }
}

/// Enhances a stream of frames on two worker threads (detect | restore) joined by bounded
/// channels of `depth`; `sink` gets every frame, in order, with its faces. The first
/// error from any stage stops the run and is returned.
pub fn run_threaded<I, S>(
    frames: I,
    detect: DetectorConfig,
    restore: RestoreConfig,
    depth: usize,
    mut sink: S,
) -> Result<usize>
where
    I: IntoIterator<Item = OwnedFrame> + Send,
    S: FnMut(OwnedFrame, Vec<Face>, RestoreStats) -> Result<()>,
{
    let (to_detect, detect_rx) = bounded::<OwnedFrame>(depth);
    let (to_restore, restore_rx) = bounded::<(OwnedFrame, Vec<Face>)>(depth);
    let (to_sink, sink_rx) = bounded::<Result<(OwnedFrame, Vec<Face>, RestoreStats)>>(depth);

    std::thread::scope(|scope| {
        let errors = to_sink.clone();
        scope.spawn(move || {
            let run = || -> Result<()> {
                let mut stream = FaceStream::new(Detector::new(detect)?, TrackConfig::default());
                for mut f in detect_rx {
                    let (faces, _) = stream.next(&f.view()?)?;
                    if to_restore.send((f, faces)).is_err() {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(e) = run() {
                let _ = errors.send(Err(e.context("detection thread")));
            }
        });
        scope.spawn(move || {
            let run = || -> Result<()> {
                let mut restorer = FaceRestorer::new(restore)?;
                for (mut f, faces) in restore_rx.iter() {
                    let stats = restorer.restore(&mut f.view()?, &faces)?;
                    if to_sink.send(Ok((f, faces, stats))).is_err() {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(e) = run() {
                let _ = to_sink.send(Err(e.context("restoration thread")));
            }
        });

        // A feeder thread, so this one only drains and the bounded channels cannot deadlock.
        scope.spawn(move || {
            for f in frames {
                if to_detect.send(f).is_err() {
                    break;
                }
            }
        });
        let mut count = 0usize;
        for msg in sink_rx {
            let (f, faces, stats) = msg?;
            sink(f, faces, stats)?;
            count += 1;
        }
        Ok(count)
    })
}

struct LiveJob {
    frame: OwnedFrame,
    faces: Vec<Face>,
    /// The settings of the moment the job was sent: changes while playing reach the worker.
    strength: f32,
    fidelity: f32,
}

/// At most one job is in flight, so a result always belongs to the last job sent.
type LiveDone = Result<(OwnedFrame, RestoreStats)>;

/// Restoration with a deadline, for live calls: the work runs on a worker thread and a
/// frame whose faces are not restored within `budget` goes out as it came in, rather
/// than late. While the worker is still busy with a late frame, new frames pass straight
/// through, so no backlog builds up and latency stays bounded.
pub struct LiveRestorer {
    jobs: Option<crossbeam_channel::Sender<LiveJob>>,
    done: crossbeam_channel::Receiver<LiveDone>,
    worker: Option<std::thread::JoinHandle<()>>,
    budget: std::time::Duration,
    in_flight: bool,
    strength: f32,
    fidelity: f32,
}

/// What [`LiveRestorer::restore`] did with a frame.
#[derive(Debug, PartialEq)]
pub enum LiveOutcome {
    Restored(RestoreStats),
    /// Not restored in time (or the worker was still busy): the frame is unchanged.
    Late,
}

impl LiveRestorer {
    /// Moves `restorer` onto the worker thread.
    pub fn new(mut restorer: FaceRestorer, budget: std::time::Duration) -> Result<Self> {
        let (jobs, job_rx) = bounded::<LiveJob>(1);
        let (done_tx, done) = bounded::<LiveDone>(2);
        let (strength, fidelity) = (restorer.strength(), restorer.fidelity());
        let worker = std::thread::Builder::new().name("facerestore-live".into()).spawn(move || {
            for mut job in job_rx {
                if job.strength != restorer.strength() {
                    restorer.set_strength(job.strength);
                }
                if job.fidelity != restorer.fidelity() {
                    restorer.set_fidelity(job.fidelity);
                }
                let result = job
                    .frame
                    .view()
                    .and_then(|mut f| restorer.restore(&mut f, &job.faces))
                    .map(|stats| (job.frame, stats));
                if done_tx.send(result).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { jobs: Some(jobs), done, worker: Some(worker), budget, in_flight: false, strength, fidelity })
    }

    /// Blend strength for the frames sent from now on (the worker may be busy: this never
    /// waits for it).
    pub fn set_strength(&mut self, strength: f32) {
        self.strength = strength;
    }

    /// Fidelity for the frames sent from now on; never waits for the worker.
    pub fn set_fidelity(&mut self, fidelity: f32) {
        self.fidelity = fidelity;
    }

    /// Restores `faces` in `frame` if that finishes within the budget.
    pub fn restore(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<LiveOutcome> {
        // Collect a late result: it belongs to a frame that has already gone out.
        if self.in_flight {
            match self.done.try_recv() {
                Ok(d) => {
                    d?;
                    self.in_flight = false;
                }
                Err(_) => return Ok(LiveOutcome::Late),
            }
        }
        if faces.is_empty() {
            return Ok(LiveOutcome::Restored(RestoreStats::default()));
        }
        let owned = OwnedFrame {
            data: frame.data().to_vec(),
            width: frame.width() as u32,
            height: frame.height() as u32,
            stride: frame.stride(),
            format: frame.format(),
        };
        let job = LiveJob { frame: owned, faces: faces.to_vec(), strength: self.strength, fidelity: self.fidelity };
        self.jobs
            .as_ref()
            .expect("present until drop")
            .send(job)
            .map_err(|_| anyhow::anyhow!("restoration worker ended"))?;
        self.in_flight = true;
        match self.done.recv_timeout(self.budget) {
            Ok(d) => {
                self.in_flight = false;
                let (restored, stats) = d?;
                let n = frame.data().len();
                frame.data_mut()?.copy_from_slice(&restored.data[..n]);
                Ok(LiveOutcome::Restored(stats))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(LiveOutcome::Late),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(anyhow::anyhow!("restoration worker ended")),
        }
    }
}

impl Drop for LiveRestorer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
