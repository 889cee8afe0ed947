//! The stages joined: [`FaceRestorer`] (align -> infer -> blend for the faces of one frame),
//! [`Enhancer`] (detect + track + restore, for the CLI, tests and benches), and
//! [`run_threaded`], which overlaps detection of frame n+1 with restoration of frame n on
//! two worker threads joined by bounded channels, frames leaving in order.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::bounded;
use opencv::core::Mat;
use opencv::prelude::*;

use crate::align::{self, Similarity};
use crate::blend;
use crate::detect::{Detector, DetectorConfig, Face};
use crate::frame::{self, Frame, PixelFormat};
use crate::model::{ProviderOptions, Restorer};
use crate::track::{FaceStream, TrackConfig};

#[derive(Clone, Debug)]
pub struct RestoreConfig {
    pub model: PathBuf,
    /// Profile file; None: the TOML beside the model.
    pub profile: Option<PathBuf>,
    pub provider: ProviderOptions,
    /// 0: frame untouched, 1: restored face fully replaces the original.
    pub strength: f32,
    /// Width of the soft mask edge as a fraction of the crop side.
    pub feather: f32,
}

impl Default for RestoreConfig {
    fn default() -> Self {
        Self {
            model: crate::paths::default_model(),
            profile: None,
            provider: ProviderOptions::default(),
            strength: 1.0,
            feather: 0.1,
        }
    }
}

/// What one frame's restoration did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestoreStats {
    pub faces: usize,
    pub restored: usize,
    /// Frame rectangles that may have changed (x, y, w, h).
    pub regions: Vec<[i32; 4]>,
    pub infer_ms: f64,
    pub total_ms: f64,
}

/// Align, infer (one batch per frame) and blend.
pub struct FaceRestorer {
    restorer: Restorer,
    mask: Mat,
    config: RestoreConfig,
}

impl FaceRestorer {
    pub fn new(config: RestoreConfig) -> Result<Self> {
        let restorer = Restorer::load(&config.model, config.profile.as_deref(), &config.provider)?;
        let mask = blend::feather_mask(restorer.profile().output_size, config.feather)?;
        Ok(Self { restorer, mask, config })
    }

    pub fn restorer(&self) -> &Restorer {
        &self.restorer
    }

    pub fn set_strength(&mut self, strength: f32) {
        self.config.strength = strength;
    }

    /// Restores `faces` (frame coordinates) in place.
    pub fn restore(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<RestoreStats> {
        let start = Instant::now();
        let mut stats = RestoreStats { faces: faces.len(), ..Default::default() };
        if faces.is_empty() || self.config.strength <= 0.0 {
            return Ok(stats);
        }
        let profile = self.restorer.profile().clone();
        let mut crops = Vec::with_capacity(faces.len());
        let mut sims: Vec<Similarity> = Vec::with_capacity(faces.len());
        {
            let src = frame.mat()?;
            for face in faces.iter().filter(|f| f.bbox[2] >= 2.0 && f.bbox[3] >= 2.0) {
                let sim = align::estimate(face, profile.template, profile.input_size)?;
                if blend::covered_rect(&sim, profile.input_size, frame.width(), frame.height()).is_none() {
                    continue;
                }
                crops.push(frame::to_bgr(&align::warp(&src, &sim, profile.input_size)?, frame.format())?);
                sims.push(sim);
            }
        }
        if crops.is_empty() {
            return Ok(stats);
        }
        let t = Instant::now();
        let outputs = self.restorer.infer(&crops)?;
        stats.infer_ms = t.elapsed().as_secs_f64() * 1e3;
        let k = profile.scale() as f64;
        for (out, sim) in outputs.iter().zip(&sims) {
            let sim_out = Similarity { a: sim.a * k, b: sim.b * k, tx: sim.tx * k, ty: sim.ty * k };
            if let Some(r) = blend::paste(frame, out, &self.mask, &sim_out, self.config.strength)? {
                stats.regions.push(r);
                stats.restored += 1;
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
        let worker = std::thread::Builder::new().name("facerestore-live".into()).spawn(move || {
            for mut job in job_rx {
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
        Ok(Self { jobs: Some(jobs), done, worker: Some(worker), budget, in_flight: false })
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
        let job = LiveJob { frame: owned, faces: faces.to_vec() };
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
