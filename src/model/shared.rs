//! One session per model for the whole process, and faces of many streams in one batch
//! (issue 28, item 5: DeepStream's nvstreammux idea without a muxer). A CCTV box runs 4-16
//! cameras, each a pipeline with its own `facerestore`; every stream opening its own
//! sessions paid each model's memory and warm-up once per camera, and ran its faces alone.
//!
//! Streams that ask for the same model file, profile and provider get one [`SharedRestorer`]
//! (the registry keeps it while a stream holds it). Its batching needs no thread of its
//! own: a stream hands its faces in as a request; when the session is idle that stream runs
//! it, together with every request that came in meanwhile at the same fidelity, and
//! answers them all; when it is busy the stream waits for the answer, and its faces go in
//! the next batch beside those of every other stream that was waiting. Each stream keeps
//! its own tracks, ids and QoS: only the model run is shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, Weak};

use anyhow::{anyhow, Result};
use ndarray::{Array4, ArrayView3, Axis};
use opencv::core::Mat;

use super::restorer::{from_tensor, to_tensor, weighted_from_tensor};
use super::{Profile, ProviderOptions, ProviderReport, Restorer};

/// What a stream wants back for each face.
pub enum Form {
    /// The weighted BGRA image the paste takes, with these weights (u8, the output's size).
    Weighted(Arc<Mat>),
    /// The output as BGR f32 in [0, 255] (a live worker's residual).
    Bgr,
}

/// A model's session shared by the streams of a process.
pub struct SharedRestorer {
    profile: Profile,
    report: ProviderReport,
    path: PathBuf,
    state: Mutex<State>,
    answered: Condvar,
}

struct Request {
    id: u64,
    fidelity: f32,
    input: Array4<f32>,
    form: Form,
}

#[derive(Default)]
struct State {
    /// The session, or None while a stream runs it.
    restorer: Option<Restorer>,
    queue: Vec<Request>,
    answers: HashMap<u64, Result<Vec<Mat>, String>>,
    next_id: u64,
    counts: Counts,
}

/// How the session was used: model runs and the requests (one per stream and frame) and
/// faces they carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub runs: u64,
    pub requests: u64,
    pub faces: u64,
}

/// Shared sessions by model file, profile and provider; an entry lives while a stream
/// holds it.
static REGISTRY: LazyLock<Mutex<HashMap<String, Weak<SharedRestorer>>>> = LazyLock::new(Default::default);

impl SharedRestorer {
    /// The process's session for `path` (with `profile`, on `provider`), opened now if no
    /// stream holds one; with `share` false a session of the caller's own.
    pub fn open(path: &Path, profile: Option<&Path>, provider: &ProviderOptions, share: bool) -> Result<Arc<Self>> {
        if !share {
            return Ok(Arc::new(Self::load(path, profile, provider)?));
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let key = format!("{}|{profile:?}|{provider:?}", canonical.display());
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|_, w| w.strong_count() > 0);
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            tracing::debug!(model = %path.display(), "sharing the process's session");
            return Ok(shared);
        }
        let shared = Arc::new(Self::load(path, profile, provider)?);
        registry.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }

    fn load(path: &Path, profile: Option<&Path>, provider: &ProviderOptions) -> Result<Self> {
        let restorer = Restorer::load(path, profile, provider)?;
        Ok(Self {
            profile: restorer.profile().clone(),
            report: restorer.report().clone(),
            path: path.to_path_buf(),
            state: Mutex::new(State { restorer: Some(restorer), ..Default::default() }),
            answered: Condvar::new(),
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn report(&self) -> &ProviderReport {
        &self.report
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Model runs, requests and faces so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // a panic in a run is answered as an error (see `run_queue`); the state stays whole
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Restores `crops` (BGR-first u8 of the model's input size) at `fidelity`, in one
    /// batch with the faces other streams hand in meanwhile; one image per crop in `form`.
    pub fn infer(&self, crops: &[&Mat], fidelity: f32, form: Form) -> Result<Vec<Mat>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        // the tensor is made on the caller's thread, outside the lock
        let input = to_tensor(crops, &self.profile)?;
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push(Request { id, fidelity, input, form });
        loop {
            if let Some(answer) = state.answers.remove(&id) {
                return answer.map_err(|e| anyhow!(e));
            }
            if state.restorer.is_some() && !state.queue.is_empty() {
                state = self.run_next(state);
            } else {
                state = self.answered.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Runs the waiting requests of the first one's fidelity as one batch and answers each
    /// (an error, or a panic in the run, is every request's answer in that batch). One
    /// batch per call: a stream whose answer came goes back to its frame, and a waiting
    /// one runs the next batch.
    fn run_next<'a>(&'a self, mut state: std::sync::MutexGuard<'a, State>) -> std::sync::MutexGuard<'a, State> {
        {
            let fidelity = state.queue[0].fidelity;
            let (mut batch, rest): (Vec<Request>, Vec<Request>) =
                std::mem::take(&mut state.queue).into_iter().partition(|r| r.fidelity == fidelity);
            state.queue = rest;
            let mut restorer = state.restorer.take().expect("idle: the caller checked");
            drop(state);
            let faces: usize = batch.iter().map(|r| r.input.shape()[0]).sum();
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_batch(&mut restorer, fidelity, &mut batch)
            }))
            .unwrap_or_else(|_| Err(anyhow!("the model run panicked")));
            state = self.lock();
            state.restorer = Some(restorer);
            state.counts.runs += 1;
            state.counts.requests += batch.len() as u64;
            state.counts.faces += faces as u64;
            match run {
                Ok(outputs) => {
                    for (r, out) in batch.iter().zip(outputs) {
                        state.answers.insert(r.id, Ok(out));
                    }
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    for r in &batch {
                        state.answers.insert(r.id, Err(e.clone()));
                    }
                }
            }
            self.answered.notify_all();
        }
        state
    }

    /// One model run over the requests' faces; each request's outputs in its form.
    fn run_batch(&self, restorer: &mut Restorer, fidelity: f32, batch: &mut [Request]) -> Result<Vec<Vec<Mat>>> {
        restorer.set_fidelity(fidelity);
        let sizes: Vec<usize> = batch.iter().map(|r| r.input.shape()[0]).collect();
        // which request, and which form, each output belongs to
        let owners: Vec<usize> = sizes.iter().enumerate().flat_map(|(i, &n)| std::iter::repeat_n(i, n)).collect();
        let input = if batch.len() == 1 {
            // one stream's faces: its tensor as it is
            std::mem::replace(&mut batch[0].input, Array4::zeros((0, 0, 0, 0)))
        } else {
            let views: Vec<_> = batch.iter().map(|r| r.input.view()).collect();
            ndarray::concatenate(Axis(0), &views)?
        };
        let mut next = owners.into_iter();
        let profile = &self.profile;
        let flat = restorer.run_tensor(input, |t: ArrayView3<f32>| {
            let owner = next.next().expect("one owner per output");
            let image = match &batch[owner].form {
                Form::Weighted(weights) => weighted_from_tensor(t, profile, weights)?,
                Form::Bgr => from_tensor(t, profile)?,
            };
            Ok((owner, image))
        })?;
        let mut out: Vec<Vec<Mat>> = sizes.iter().map(|&n| Vec::with_capacity(n)).collect();
        for (owner, image) in flat {
            out[owner].push(image);
        }
        Ok(out)
    }
}
