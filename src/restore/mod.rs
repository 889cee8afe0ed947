//! Restoration of the faces of a frame: the model ladder (which model suits each face's
//! size, [`pick_model`]), alignment to each model's template, inference (one batch per
//! model and frame), and blending back into the frame or an up-scaled one. A face's last
//! restoration can be carried onto the next frames ([`RestoreConfig::refresh`]): its
//! residual (output minus input, in the aligned crop) is added to the face's new crop,
//! so a tracked face stays restored without running the model on every frame.
//!
//! One job per module: [`config`] (what is asked), [`ladder`] (which model, crops, paste,
//! sessions), [`carry`] (restorations carried between model runs), and here
//! [`FaceRestorer`], which runs them over a frame.

pub mod carry;
pub mod config;
pub mod ladder;
pub mod sharpness;

pub(crate) use carry::{residual, Carries, LEVELS};
pub use config::{expand_models, RestoreConfig, RestoreStats};
use ladder::{check_model_file, Job, Rung, Sessions};
pub use ladder::{pick_model, Ladder};

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use opencv::core::Mat;

use crate::align::Template;
use crate::blend;
use crate::detect::Face;
use crate::frame::Frame;
use crate::model::identity::{self, IdentityNet};
use crate::model::profile::ModelKind;
use crate::model::profile::ProfileSource;
use crate::model::shared::{Form, SharedRestorer};
use crate::model::Profile;
use crate::upscale::Upscaler;

/// Align, infer (one batch per model and frame) and blend, into the same frame or an
/// up-scaled one.
pub struct FaceRestorer {
    ladder: Ladder,
    sessions: Sessions,
    carries: Carries,
    background: Option<Upscaler>,
    /// With `RestoreConfig::identity`: the face net that measures each restoration.
    identity: Option<IdentityNet>,
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
        let mut sessions = Sessions {
            slots: Vec::with_capacity(paths.len()),
            provider: config.provider.clone(),
            share: config.share_sessions,
        };
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
                    let r =
                        SharedRestorer::open(path, config.profile.as_deref(), &config.provider, config.share_sessions)?;
                    (r.profile().clone(), Some(r))
                }
            };
            let kind = profile.kind;
            profile.ensure_kind(ModelKind::Face).with_context(|| match kind {
                ModelKind::Background => format!("model {}: give it as the background model", path.display()),
                _ => format!("model {}", path.display()),
            })?;
            let weights = Arc::new(blend::feather_weights(profile.output_size, config.feather)?);
            rungs.push(Rung { profile, weights });
            sessions.slots.push((path.clone(), session));
        }
        let background = (config.upscale != 1)
            .then(|| Upscaler::new(config.upscale, &config.background, &config.provider))
            .transpose()?;
        let identity = config
            .identity
            .then(|| IdentityNet::load(&identity::default_model(), &config.provider))
            .transpose()
            .context("identity measure")?;
        Ok(Self { ladder: Ladder::new(rungs, config), sessions, carries: Carries::default(), background, identity })
    }

    /// The ladder's first model (the only one unless several are given).
    pub fn restorer(&self) -> &SharedRestorer {
        self.sessions.slots[0].1.as_ref().expect("the first rung opens at start")
    }

    /// The sessions opened so far (the first rung's, and those faces have needed).
    pub fn restorers(&self) -> impl Iterator<Item = &SharedRestorer> {
        self.sessions.slots.iter().filter_map(|s| s.1.as_deref())
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
            let crops: Vec<&Mat> = fresh.iter().map(|j| &j.crop).collect();
            let weights = Form::Weighted(self.ladder.rungs[r].weights.clone());
            let session = self.sessions.get(r)?;
            let t = Instant::now();
            // straight from the session's output to the weighted 8-bit image the paste
            // takes, in one batch with the faces other streams have ready
            let outputs = session.infer(&crops, self.ladder.config.fidelity, weights)?;
            stats.infer_ms += t.elapsed().as_secs_f64() * 1e3;
            if let Some(id) =
                self.identity.as_mut().filter(|_| self.ladder.rungs[r].profile.template == Template::Ffhq5)
            {
                for (job, d) in fresh.iter().zip(id.moved(&crops, &outputs)?) {
                    stats.identity[job.face] = Some(d);
                }
            }
            for (out, job) in outputs.iter().zip(&fresh) {
                if refresh > 1 {
                    self.carries.store(job.key, r, residual(out, &job.crop, LEVELS)?);
                }
                self.ladder.paste(dst, job, out, &mut stats)?;
            }
        }
        self.carries.retain(&jobs);
        stats.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(stats)
    }
}
