//! `facerestore`: reads the faces `facedetector` attached, restores them with ONNX
//! generators (the model ladder: each face to the model that suits its size, one batch
//! per model) and blends them back, in place or into a frame `upscale` times larger whose
//! background is interpolated or super-resolved in tiles. The provider that really runs
//! is posted once as a `facerestore-provider` message.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use faceenhance::live::{LiveOutcome, LiveRestorer};
use faceenhance::model::ProviderOptions;
use faceenhance::restore::{FaceRestorer, RestoreConfig, RestoreStats};
use faceenhance::upscale::BackgroundConfig;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::props::{BackgroundChoice, ProviderChoice};
use crate::{meta, video};

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facerestore", gst::DebugColorFlags::empty(), Some("Face restorer")));

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    profile: Option<String>,
    provider: ProviderChoice,
    device_id: i32,
    fp16: bool,
    trt_cache_dir: Option<String>,
    strength: f32,
    feather: f32,
    threads: u32,
    max_latency_ms: u32,
    post_messages: bool,
    upscale: u32,
    background: BackgroundChoice,
    background_model: Option<String>,
    max_stretch: f32,
    force: bool,
    by_detail: bool,
    fidelity: f32,
    restore_interval: u32,
    measure_identity: bool,
    share_sessions: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let d = RestoreConfig::default();
        Self {
            model: d.models.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(","),
            profile: None,
            provider: ProviderChoice::Auto,
            device_id: 0,
            fp16: false,
            trt_cache_dir: None,
            strength: d.strength,
            feather: d.feather,
            threads: 0,
            max_latency_ms: 0,
            post_messages: false,
            upscale: d.upscale,
            background: BackgroundChoice::Bicubic,
            background_model: None,
            max_stretch: d.max_stretch,
            force: d.force,
            by_detail: d.by_detail,
            fidelity: d.fidelity,
            restore_interval: d.refresh,
            measure_identity: d.identity,
            share_sessions: d.share_sessions,
        }
    }
}

/// In step with the stream, or against a deadline (`max-latency`) on a worker thread.
enum Engine {
    InStep(Box<FaceRestorer>),
    Live(Box<LiveRestorer>),
}

/// Everything that lives from `start` to `stop`.
struct State {
    engine: Engine,
    /// Names of the ladder's models, for the stats message and the ROI meta.
    names: Vec<String>,
    /// Negotiated input and output (the output is `upscale` times larger).
    info: Option<gst_video::VideoInfo>,
    out_info: Option<gst_video::VideoInfo>,
    /// Live mode: frames with faces seen, and those that left with their faces
    /// unrestored (the QoS message's processed and dropped).
    live_frames: u64,
    live_late: u64,
}

impl State {
    fn infos(&self) -> Result<(gst_video::VideoInfo, gst_video::VideoInfo), gst::FlowError> {
        match (&self.info, &self.out_info) {
            (Some(i), Some(o)) => Ok((i.clone(), o.clone())),
            _ => Err(gst::FlowError::NotNegotiated),
        }
    }

    /// Each face's model name (by the stats' assignment).
    fn models<'a>(&'a self, faces: usize, stats: &RestoreStats) -> Vec<Option<&'a str>> {
        (0..faces)
            .map(|i| stats.assigned.get(i).copied().flatten().and_then(|m| self.names.get(m)).map(String::as_str))
            .collect()
    }

    /// Faces per model, for the stats message.
    fn counts(&self, stats: &RestoreStats) -> Vec<(String, i32)> {
        self.names.iter().zip(&stats.per_model).map(|(n, c)| (n.clone(), *c as i32)).collect()
    }
}

#[derive(Default)]
pub struct FaceRestore {
    /// Read per frame; never held across an inference, so setting a property never waits.
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The up-scale factor the engine was built with, from `start` to `stop` (0: stopped):
    /// the one value caps negotiation and the engine both read, so they cannot disagree.
    upscale_in_use: std::sync::atomic::AtomicU32,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceRestore {
    const NAME: &'static str = "GstFaceEnhanceRestore";
    type Type = super::FaceRestore;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceRestore {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb(
                        "ONNX generator(s): a file, a folder of models with their profiles, or a comma-separated list \
                         (the model ladder: each face goes to the model whose sizes suit it best); a model's profile \
                         is the .toml beside it unless 'profile' is set",
                    )
                    .default_value(Some(d.model.as_str()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("profile")
                    .nick("Profile")
                    .blurb(
                        "Model profile: a TOML file, a published family (gfpgan-1.2, gfpgan-1.3, gfpgan-1.4, \
                         codeformer, gpen-bfr-256, gpen-bfr-512, restoreformer-plus-plus, real-esrgan-x2, \
                         real-esrgan-x4) or auto (recognised from the model's inputs and outputs); empty: the \
                         .toml beside the model, else auto",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("provider", d.provider)
                    .nick("Execution provider")
                    .blurb("Where the generator runs; the one that really runs is posted on the bus")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("GPU device id")
                    .blurb("CUDA/TensorRT device")
                    .minimum(0)
                    .maximum(64)
                    .default_value(d.device_id)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fp16")
                    .nick("FP16")
                    .blurb("Half precision where the provider supports it (TensorRT)")
                    .default_value(d.fp16)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("trt-cache-dir")
                    .nick("TensorRT cache folder")
                    .blurb("Where TensorRT engines are cached so the next start reuses them")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("strength")
                    .nick("Strength")
                    .blurb("0: faces untouched, 1: restored faces replace the originals")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.strength)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("fidelity")
                    .nick("Fidelity")
                    .blurb(
                        "For models with a fidelity input (CodeFormer's w): 0 = strongest restoration, \
                         1 = closest to the input; other models ignore it",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.fidelity)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("blend-feather")
                    .nick("Blend feather")
                    .blurb("Width of the soft edge of the pasted face, as a fraction of its side")
                    .minimum(0.0)
                    .maximum(0.5)
                    .default_value(d.feather)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("CPU threads")
                    .blurb(
                        "Inference threads on the CPU provider (0: the process's one pool, a thread per core, shared \
                         by every session of every element; N: a pool of N threads for this element's sessions alone)",
                    )
                    .maximum(256)
                    .default_value(d.threads)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-latency")
                    .nick("Maximum latency (ms)")
                    .blurb(
                        "Live calls: every frame leaves within this many ms; the models run on a worker, and a \
                         face whose restoration is not ready in time gets its latest one carried to where it \
                         is now (0: always wait)",
                    )
                    .maximum(60_000)
                    .default_value(d.max_latency_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("restore-interval")
                    .nick("Restore interval")
                    .blurb(
                        "Run the model on a tracked face every N frames and carry its restoration (the residual, \
                         moved with the face) onto the frames between (1: every frame)",
                    )
                    .minimum(1)
                    .maximum(1000)
                    .default_value(d.restore_interval)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("upscale")
                    .nick("Up-scale factor")
                    .blurb("Output frame = input x this factor; faces are pasted at their size in the output")
                    .minimum(1)
                    .maximum(8)
                    .default_value(d.upscale)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("background", d.background)
                    .nick("Background interpolation")
                    .blurb("How the frame is enlarged around the faces when upscale > 1 and no background-model is set")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("background-model")
                    .nick("Background model")
                    .blurb(
                        "ONNX super-resolution model for the whole frame (Real-ESRGAN-shaped, scale = upscale), run \
                         in overlapping tiles of its profile's input size",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("max-stretch")
                    .nick("Maximum stretch")
                    .blurb(
                        "Never worse: a face whose output size is more than this many times the chosen model's \
                         output keeps the background's pixels",
                    )
                    .minimum(1.0)
                    .maximum(100.0)
                    .default_value(d.max_stretch)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("force")
                    .nick("Force")
                    .blurb("Restore every face, however far its model's output must be stretched")
                    .default_value(d.force)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("by-detail")
                    .nick("By detail")
                    .blurb(
                        "Pick each face's model by the detail it has, not only its size: a blurred face (its \
                         blur measured on every frame) goes to the model made for a face of the size its detail \
                         fits, a super-resolution model that redraws it; false: by pixel size alone",
                    )
                    .default_value(d.by_detail)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("measure-identity")
                    .nick("Measure identity")
                    .blurb(
                        "Measure how far each restoration moved its face's identity (descriptor distance of \
                         output to input by dlib's face network, models/face-id.onnx; same person ~0.26 apart, \
                         different people ~0.8), posted as identity-moved in the facerestore message; costs one \
                         face-network run per restored face",
                    )
                    .default_value(d.measure_identity)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("share-sessions")
                    .nick("Share sessions")
                    .blurb(
                        "Share each model's session with every other stream of the process that uses the same \
                         model and provider, and run the faces those streams have ready together as one batch \
                         (many cameras in one process); false: this element's own sessions",
                    )
                    .default_value(d.share_sessions)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb(
                        "Post a 'facerestore' element message per frame (faces, restored, skipped, late, infer-ms, \
                         faces per model)",
                    )
                    .default_value(d.post_messages)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let opt = |v: &glib::Value| v.get::<Option<String>>().expect("type checked upstream").filter(|p| !p.is_empty());
        match pspec.name() {
            "model" => s.model = opt(value).unwrap_or_else(|| Settings::default().model),
            "profile" => s.profile = opt(value),
            "provider" => s.provider = value.get().expect("type checked upstream"),
            "device-id" => s.device_id = value.get().expect("type checked upstream"),
            "fp16" => s.fp16 = value.get().expect("type checked upstream"),
            "trt-cache-dir" => s.trt_cache_dir = opt(value),
            // Read by the streaming thread per frame (see `apply`): setting them never waits
            // for an inference.
            "strength" => s.strength = value.get().expect("type checked upstream"),
            "fidelity" => s.fidelity = value.get().expect("type checked upstream"),
            "blend-feather" => s.feather = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "max-latency" => s.max_latency_ms = value.get().expect("type checked upstream"),
            "restore-interval" => s.restore_interval = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            "upscale" => {
                let k: u32 = value.get().expect("type checked upstream");
                let in_use = self.upscale_in_use.load(std::sync::atomic::Ordering::SeqCst);
                if in_use != 0 && k != in_use {
                    // the engine and the negotiated caps are built for `in_use`
                    gst::warning!(
                        CAT,
                        imp = self,
                        "upscale {k} refused while running at {in_use}: set it in the NULL or READY state"
                    );
                } else {
                    s.upscale = k;
                }
            }
            "background" => s.background = value.get().expect("type checked upstream"),
            "background-model" => s.background_model = opt(value),
            "max-stretch" => s.max_stretch = value.get().expect("type checked upstream"),
            "force" => s.force = value.get().expect("type checked upstream"),
            "by-detail" => s.by_detail = value.get().expect("type checked upstream"),
            "measure-identity" => s.measure_identity = value.get().expect("type checked upstream"),
            "share-sessions" => s.share_sessions = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => s.model.to_value(),
            "profile" => s.profile.to_value(),
            "provider" => s.provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "fp16" => s.fp16.to_value(),
            "trt-cache-dir" => s.trt_cache_dir.to_value(),
            "strength" => s.strength.to_value(),
            "fidelity" => s.fidelity.to_value(),
            "blend-feather" => s.feather.to_value(),
            "threads" => s.threads.to_value(),
            "max-latency" => s.max_latency_ms.to_value(),
            "restore-interval" => s.restore_interval.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "upscale" => s.upscale.to_value(),
            "background" => s.background.to_value(),
            "background-model" => s.background_model.to_value(),
            "max-stretch" => s.max_stretch.to_value(),
            "force" => s.force.to_value(),
            "by-detail" => s.by_detail.to_value(),
            "measure-identity" => s.measure_identity.to_value(),
            "share-sessions" => s.share_sessions.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl BaseTransformImpl for FaceRestore {
    // In place at upscale 1 (set_info switches), into a new larger buffer otherwise.
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::Both;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let _scope = crate::log::element_scope(&*self.obj());
        let s = self.settings.lock().unwrap().clone();
        let config = RestoreConfig {
            models: s.model.split(',').map(str::trim).filter(|m| !m.is_empty()).map(PathBuf::from).collect(),
            profile: s.profile.map(PathBuf::from),
            provider: ProviderOptions {
                provider: s.provider.into(),
                device_id: s.device_id,
                fp16: s.fp16,
                trt_cache_dir: s.trt_cache_dir.map(PathBuf::from),
                threads: s.threads as usize,
            },
            strength: s.strength,
            feather: s.feather,
            upscale: s.upscale,
            background: BackgroundConfig {
                interpolation: s.background.into(),
                model: s.background_model.as_ref().map(PathBuf::from),
                ..Default::default()
            },
            max_stretch: s.max_stretch,
            force: s.force,
            by_detail: s.by_detail,
            fidelity: s.fidelity,
            refresh: s.restore_interval,
            identity: s.measure_identity,
            share_sessions: s.share_sessions,
        };
        if s.max_latency_ms > 0 && s.upscale != 1 {
            return Err(gst::error_msg!(
                gst::LibraryError::Settings,
                ["facerestore: max-latency (live mode) works at upscale 1 only, upscale is {}", s.upscale]
            ));
        }
        let restorer = FaceRestorer::new(config)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["facerestore: {e:#}"]))?;
        let names = restorer.model_names();
        let report = restorer.restorer().report().clone();
        gst::info!(CAT, imp = self, "model {}: {report}", s.model);
        let skipped = gst::List::new(report.skipped.iter().map(|(p, why)| format!("{}: {why}", p.name())));
        let msg = gst::Structure::builder("facerestore-provider")
            .field("provider", report.active.name())
            .field("model", s.model.as_str())
            .field("skipped", skipped)
            .build();
        let engine = if s.max_latency_ms > 0 {
            let budget = std::time::Duration::from_millis(s.max_latency_ms as u64);
            Engine::Live(Box::new(
                LiveRestorer::new(restorer, budget)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::Failed, ["facerestore: {e:#}"]))?,
            ))
        } else {
            Engine::InStep(Box::new(restorer))
        };
        *self.state.lock().unwrap() =
            Some(State { engine, names, info: None, out_info: None, live_frames: 0, live_late: 0 });
        self.upscale_in_use.store(s.upscale, std::sync::atomic::Ordering::SeqCst);
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(msg).src(&*obj).build());
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        self.upscale_in_use.store(0, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // Restorations carried from before a seek belong to other faces.
            match self.state.lock().unwrap().as_mut().map(|s| &mut s.engine) {
                Some(Engine::InStep(r)) => r.reset(),
                Some(Engine::Live(r)) => r.reset(),
                None => {}
            }
        }
        self.parent_sink_event(event)
    }

    /// Live mode (`max-latency`) holds a frame up to that long: the latency query says so.
    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let answered = BaseTransformImplExt::parent_query(self, direction, query);
        if answered && direction == gst::PadDirection::Src {
            let ms = self.settings.lock().unwrap().max_latency_ms;
            if let (true, gst::QueryViewMut::Latency(q)) = (ms > 0, query.view_mut()) {
                let (live, min, max) = q.result();
                let added = gst::ClockTime::from_mseconds(ms as u64);
                q.set(live, min + added, max.map(|m| m + added));
                gst::debug!(CAT, imp = self, "latency: live {live}, min {} (max-latency {ms} ms added)", min + added);
            }
        }
        answered
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let k = self.upscale();
        // Up-scaling draws into packed frames only; in place, I420 is worked on directly.
        let caps = if k == 1 { caps.clone() } else { video::without_planar(caps) };
        let other = video::scale_caps(&caps, k, direction == gst::PadDirection::Sink);
        Some(match filter {
            Some(f) => f.intersect_with_mode(&other, gst::CapsIntersectMode::First),
            None => other,
        })
    }

    fn fixate_caps(&self, direction: gst::PadDirection, caps: &gst::Caps, othercaps: gst::Caps) -> gst::Caps {
        let k = self.upscale();
        let fixed = video::fixate_scaled(caps, othercaps, k, direction == gst::PadDirection::Sink);
        gst::debug!(CAT, imp = self, "fixated {fixed} (upscale {k})");
        fixed
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (strength, fidelity) = self.current();
        let faces = meta::read(buf);
        if faces.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        if strength <= 0.0 {
            // In place at strength 0 the frame goes out as it came: no crop, no model.
            let stats = RestoreStats { faces: faces.len(), ..Default::default() };
            self.post_stats(buf.pts(), &stats, false, self.posting().then(Vec::new));
            return Ok(gst::FlowSuccess::Ok);
        }
        let _scope = crate::log::element_scope(&*self.obj());
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let (info, _) = state.infos()?;
        apply(&mut state.engine, strength, fidelity);
        let result = video::with_frame_mut(buf, &info, |frame| match &mut state.engine {
            Engine::InStep(r) => Ok((r.restore(frame, &faces)?, false)),
            Engine::Live(r) => Ok(match r.restore(frame, &faces)? {
                LiveOutcome::Restored(stats) => (stats, false),
                LiveOutcome::Late(stats) => (stats, true),
            }),
        });
        let (stats, late) = match result {
            Ok(r) => r,
            Err(e) => {
                // Posted after the lock is released: a sync bus handler may call back in.
                drop(guard);
                return Err(self.fail(e));
            }
        };
        label(buf, &faces, &state.models(faces.len(), &stats), 1, &info);
        let counts = self.posting().then(|| state.counts(&stats));
        // Unrestored: late, and no earlier restoration of the face to carry either.
        let unrestored = late && stats.restored == 0;
        state.live_frames += 1;
        state.live_late += unrestored as u64;
        let qos = (state.live_frames, state.live_late);
        drop(guard);
        self.post_stats(buf.pts(), &stats, late, counts);
        if unrestored {
            self.post_qos(buf, qos);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn transform(&self, inbuf: &gst::Buffer, outbuf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let faces = meta::read(inbuf);
        let _scope = crate::log::element_scope(&*self.obj());
        let (strength, fidelity) = self.current();
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let (info, out_info) = state.infos()?;
        let Engine::InStep(restorer) = &mut state.engine else {
            return Err(gst::FlowError::NotSupported);
        };
        restorer.set_strength(strength);
        restorer.set_fidelity(fidelity);
        let result = video::with_frame(inbuf, &info, |src| {
            video::with_frame_mut(outbuf, &out_info, |dst| restorer.restore_into(src, dst, &faces))
                .map_err(anyhow::Error::msg)
        });
        let k = restorer.upscale();
        let stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                drop(guard);
                return Err(self.fail(e));
            }
        };
        label(outbuf, &faces, &state.models(faces.len(), &stats), k, &out_info);
        let counts = self.posting().then(|| state.counts(&stats));
        drop(guard);
        self.post_stats(inbuf.pts(), &stats, false, counts);
        Ok(gst::FlowSuccess::Ok)
    }
}

/// The faces on the output buffer, in its coordinates, each with the model that restored it.
fn label(
    buf: &mut gst::BufferRef,
    faces: &[faceenhance::Face],
    models: &[Option<&str>],
    k: u32,
    out: &gst_video::VideoInfo,
) {
    let scaled: Vec<faceenhance::Face> = faces.iter().map(|f| f.clone().scaled(k as f32)).collect();
    meta::attach_labelled(buf, &scaled, out.width(), out.height(), models);
}

/// Strength and fidelity as set now, for the next frame (in step) or the next job (live).
fn apply(engine: &mut Engine, strength: f32, fidelity: f32) {
    match engine {
        Engine::InStep(r) => {
            r.set_strength(strength);
            r.set_fidelity(fidelity);
        }
        Engine::Live(r) => {
            r.set_strength(strength);
            r.set_fidelity(fidelity);
        }
    }
}

impl FaceRestore {
    /// Live mode: a frame that left with its faces unrestored (late, and no earlier
    /// restoration to carry) is a QoS event, as GStreamer elements report what they could
    /// not do in time: processed = frames with faces so far, dropped = those unrestored.
    fn post_qos(&self, buf: &gst::BufferRef, (frames, dropped): (u64, u64)) {
        let obj = self.obj();
        let segment = gst_base::prelude::BaseTransformExtManual::segment(&*obj).downcast::<gst::ClockTime>().ok();
        let running_time = segment.as_ref().and_then(|s| s.to_running_time(buf.pts()));
        let stream_time = segment.as_ref().and_then(|s| s.to_stream_time(buf.pts()));
        let msg = gst::message::Qos::builder(true)
            .running_time(running_time)
            .stream_time(stream_time)
            .timestamp(buf.pts())
            .duration(buf.duration())
            .stats(gst::format::Buffers::from_u64(frames), gst::format::Buffers::from_u64(dropped))
            .src(&*obj)
            .build();
        let _ = obj.post_message(msg);
    }

    fn current(&self) -> (f32, f32) {
        let s = self.settings.lock().unwrap();
        (s.strength, s.fidelity)
    }

    fn fail(&self, e: String) -> gst::FlowError {
        video::stream_failed(self, "face restoration failed", e)
    }

    /// The up-scale factor caps are made for: the engine's while started, else the setting.
    fn upscale(&self) -> u32 {
        match self.upscale_in_use.load(std::sync::atomic::Ordering::SeqCst) {
            0 => self.settings.lock().unwrap().upscale,
            k => k,
        }
    }

    /// Whether a `facerestore` message goes out per frame (`post-messages`).
    fn posting(&self) -> bool {
        self.settings.lock().unwrap().post_messages
    }

    /// The frame's stats message, with the faces per model (`counts`, made only when
    /// [`Self::posting`]: none, no message).
    fn post_stats(
        &self,
        pts: Option<gst::ClockTime>,
        stats: &RestoreStats,
        late: bool,
        counts: Option<Vec<(String, i32)>>,
    ) {
        gst::trace!(CAT, imp = self, "{} faces, {} restored, {:.1} ms", stats.faces, stats.restored, stats.total_ms);
        let Some(counts) = counts else { return };
        let mut per_model = gst::Structure::new_empty("models");
        for (name, n) in counts {
            per_model.set(name.as_str(), n);
        }
        let s = gst::Structure::builder("facerestore")
            .field("timestamp", pts)
            .field("faces", stats.faces as i32)
            .field("restored", stats.restored as i32)
            .field("skipped", stats.skipped as i32)
            .field("late", late)
            .field("carried", stats.carried as i32)
            .field("infer-ms", stats.infer_ms)
            .field("total-ms", stats.total_ms)
            .field("models", per_model)
            .field("identity-moved", gst::Array::new(stats.identity.iter().flatten().map(|&d| d as f64)))
            .build();
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}

impl gst_video::subclass::prelude::VideoFilterImpl for FaceRestore {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.info = Some(in_info.clone());
        state.out_info = Some(out_info.clone());
        let same = in_info.width() == out_info.width() && in_info.height() == out_info.height();
        gst_base::prelude::BaseTransformExt::set_in_place(&*self.obj(), same);
        Ok(())
    }
}

video::video_element!(
    FaceRestore,
    "Face restorer",
    "Filter/Effect/Video",
    "Restores the faces found by facedetector with an ONNX GAN generator and blends them back",
    video::pad_templates_with_planar
);
