//! Restoration with a deadline, for live calls. The models run on a worker thread; the
//! streaming thread only aligns each face and pastes the latest restoration of it, carried
//! to where the face is now (its residual added to the face's new crop). So every frame
//! leaves within `budget`, and a tracked face is restored on every frame although the
//! model may take several frame periods: it is re-run whenever the worker is free.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use opencv::core::Mat;

use crate::detect::Face;
use crate::frame::Frame;
use crate::model::shared::Form;
use crate::restore::{residual, Carries, FaceRestorer, Ladder, RestoreStats, LEVELS};

/// Crops for the worker: (face key, ladder rung, aligned crop), and the fidelity to use.
struct LiveJob {
    crops: Keyed,
    fidelity: f32,
}

/// (face key, ladder rung, image): a crop on its way to the worker, or its residual back.
type Keyed = Vec<(u64, usize, Mat)>;

/// The worker's answer: a residual per crop, and the inference time (ms).
type LiveDone = Result<(Keyed, f64)>;

/// What [`LiveRestorer::restore`] did with a frame.
#[derive(Debug, PartialEq)]
pub enum LiveOutcome {
    /// The faces were restored by a run of the model on this very frame (or needed none).
    Restored(RestoreStats),
    /// The model did not finish in time (or was busy with an earlier frame): faces with an
    /// earlier restoration got it carried onto this frame (`carried`), others went out
    /// unchanged.
    Late(RestoreStats),
}

/// See the module documentation.
pub struct LiveRestorer {
    ladder: Ladder,
    carries: Carries,
    jobs: Option<Sender<LiveJob>>,
    done: Receiver<LiveDone>,
    worker: Option<std::thread::JoinHandle<()>>,
    budget: Duration,
    in_flight: bool,
    fidelity: f32,
}

impl LiveRestorer {
    /// Moves `restorer`'s sessions onto the worker thread; its ladder stays here.
    pub fn new(restorer: FaceRestorer, budget: Duration) -> Result<Self> {
        let fidelity = restorer.fidelity();
        let (ladder, mut sessions) = restorer.into_parts();
        let rungs = ladder.rungs();
        let (jobs, job_rx) = bounded::<LiveJob>(1);
        let (done_tx, done) = bounded::<LiveDone>(2);
        // The caller's subscriber and span (an element's): the worker's events (a rung's
        // session opening) are logged as the element's.
        let span = tracing::Span::current();
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let worker = std::thread::Builder::new().name("facerestore-live".into()).spawn(move || {
            let _default = tracing::dispatcher::set_default(&dispatch);
            let _entered = span.enter();
            for job in job_rx {
                let mut run = || -> LiveDone {
                    let t = Instant::now();
                    let mut out = Vec::with_capacity(job.crops.len());
                    for r in 0..rungs {
                        let mine: Vec<&(u64, usize, Mat)> = job.crops.iter().filter(|c| c.1 == r).collect();
                        if mine.is_empty() {
                            continue;
                        }
                        // a rung's first face opens its session here, off the streaming thread
                        let session = sessions.get(r)?;
                        let crops: Vec<&Mat> = mine.iter().map(|c| &c.2).collect();
                        for (o, (key, rung, crop)) in session.infer(&crops, job.fidelity, Form::Bgr)?.iter().zip(mine) {
                            out.push((*key, *rung, residual(o, crop, LEVELS)?));
                        }
                    }
                    Ok((out, t.elapsed().as_secs_f64() * 1e3))
                };
                if done_tx.send(run()).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self {
            ladder,
            carries: Carries::default(),
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            budget,
            in_flight: false,
            fidelity,
        })
    }

    /// Blend strength from the next frame on (never waits for the worker).
    pub fn set_strength(&mut self, strength: f32) {
        self.ladder.set_strength(strength);
    }

    /// Fidelity for the restorations asked for from now on; never waits for the worker.
    pub fn set_fidelity(&mut self, fidelity: f32) {
        self.fidelity = fidelity;
    }

    /// Forget carried restorations (a seek).
    pub fn reset(&mut self) {
        self.carries.clear();
    }

    /// Keeps the worker's restorations; returns the inference time they took.
    fn adopt(&mut self, done: LiveDone) -> Result<f64> {
        let (residuals, ms) = done?;
        for (key, rung, r) in residuals {
            self.carries.store(key, rung, r);
        }
        Ok(ms)
    }

    /// Restores `faces` in `frame`: with a run of the model on this frame if it finishes
    /// within the budget, else with each face's latest restoration carried onto it.
    pub fn restore(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<LiveOutcome> {
        let start = Instant::now();
        // A result that came in since the last frame belongs to an earlier frame: carried.
        if self.in_flight {
            match self.done.try_recv() {
                Ok(d) => {
                    self.adopt(d)?;
                    self.in_flight = false;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err(anyhow!("restoration worker ended")),
            }
        }
        let (jobs, skipped) = self.ladder.plan(frame, faces)?;
        let mut stats = self.ladder.stats(faces.len(), skipped);
        if jobs.is_empty() || self.ladder.config().strength <= 0.0 {
            stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(LiveOutcome::Restored(stats));
        }
        let refresh = self.ladder.config().refresh.max(1);
        let mut fresh = false;
        if !self.in_flight {
            let crops: Keyed = jobs
                .iter()
                .filter(|j| self.carries.usable(j, refresh).is_none())
                .map(|j| (j.key, j.rung, j.crop.clone()))
                .collect();
            if !crops.is_empty() {
                let job = LiveJob { crops, fidelity: self.fidelity };
                self.jobs
                    .as_ref()
                    .expect("present until drop")
                    .send(job)
                    .map_err(|_| anyhow!("restoration worker ended"))?;
                self.in_flight = true;
                match self.done.recv_timeout(self.budget.saturating_sub(start.elapsed())) {
                    Ok(d) => {
                        stats.infer_ms = self.adopt(d)?;
                        self.in_flight = false;
                        fresh = true;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(anyhow!("restoration worker ended")),
                }
            } else {
                fresh = true;
            }
        }
        for job in &jobs {
            if let Some(carry) = self.carries.latest(job) {
                self.ladder.paste_carried(frame, job, carry, &mut stats)?;
            }
        }
        if fresh {
            // Restorations made for this frame are not carried ones.
            stats.carried = jobs.iter().filter(|j| self.carries.latest(j).is_some_and(|c| c.age() > 0)).count();
        }
        self.carries.retain(&jobs);
        stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(if fresh { LiveOutcome::Restored(stats) } else { LiveOutcome::Late(stats) })
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
