//! `facedetector`: finds faces with the core's detector (every `detect-interval` frames,
//! keeping the last faces in between), gives them track ids, attaches them as ROI meta and
//! posts a `facedetector` element message per analysed frame.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use faceenhance::detect::{Detector, DetectorConfig};
use faceenhance::search::SearchConfig;
use faceenhance::track::{FaceStream, TrackConfig};
use faceenhance::Face;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::props::DetectorChoice;
use crate::{meta, video};

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facedetector", gst::DebugColorFlags::empty(), Some("Face detector")));

#[derive(Debug, Clone)]
struct Settings {
    detector: DetectorChoice,
    model: Option<String>,
    score_threshold: f32,
    nms_threshold: f32,
    detect_interval: u32,
    min_face_size: u32,
    max_faces: u32,
    smoothing: bool,
    post_messages: bool,
    sweep_frames: u32,
    threads: u32,
    enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let d = DetectorConfig::default();
        Self {
            detector: DetectorChoice::Auto,
            model: None,
            score_threshold: -1.0,
            nms_threshold: d.nms_threshold,
            detect_interval: 1,
            min_face_size: d.min_face_size as u32,
            max_faces: d.max_faces as u32,
            smoothing: TrackConfig::default().smoothing,
            post_messages: true,
            sweep_frames: SearchConfig::default().sweep_frames,
            threads: 0,
            enabled: true,
        }
    }
}

/// Everything that lives from `start` to `stop`.
struct State {
    faces: FaceStream,
    /// The negotiated frames.
    info: Option<gst_video::VideoInfo>,
    interval: u32,
    sweep_frames: u32,
    /// Detection was off on the last frame: the tracks say nothing about this one.
    was_disabled: bool,
}

#[derive(Default)]
pub struct FaceDetector {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceDetector {
    const NAME: &'static str = "GstFaceEnhanceDetector";
    type Type = super::FaceDetector;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceDetector {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecEnum::builder_with_default("detector", d.detector)
                    .nick("Detector")
                    .blurb("Detection back-end")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("Detector model")
                    .blurb("YuNet (or CenterFace) ONNX file; with detector=auto a YuNet model selects YuNet")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("score-threshold")
                    .nick("Score threshold")
                    .blurb("Faces scoring below this are dropped; -1: the detector's own (yunet 0.6, centerface 0.45, haar 0.9)")
                    .minimum(-1.0)
                    .maximum(1.0)
                    .default_value(d.score_threshold)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("Overlap (IoU) above which the weaker of two boxes is dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.nms_threshold)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("detect-interval")
                    .nick("Detect interval")
                    .blurb("Run detection every N frames; faces are followed by optical flow in between")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(d.detect_interval)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Smallest face side (px in the frame) to report")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(d.min_face_size)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("At most this many faces per frame, highest scores first")
                    .minimum(0)
                    .maximum(10_000)
                    .default_value(d.max_faces)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("One-Euro smoothing of boxes and landmarks, so restored faces do not jitter")
                    .default_value(d.smoothing)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("sweep-frames")
                    .nick("Sweep frames")
                    .blurb(
                        "Frames over which one full search for new faces is spread (known faces are \
                         re-detected every frame, and only where the picture changed is searched); \
                         0: search the whole frame every frame",
                    )
                    .minimum(0)
                    .maximum(100_000)
                    .default_value(d.sweep_frames)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("CPU threads")
                    .blurb("Threads for detection (ONNX Runtime and OpenCV; OpenCV's is process-wide); 0: all cores")
                    .minimum(0)
                    .maximum(1024)
                    .default_value(d.threads)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("enabled")
                    .nick("Enabled")
                    .blurb("false: frames pass untouched, nothing is detected (faceenhance sets it with strength 0)")
                    .default_value(d.enabled)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a 'facedetector' element message (faces=(int)N, boxes) per analysed frame")
                    .default_value(d.post_messages)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "detector" => s.detector = value.get().expect("type checked upstream"),
            "model" => {
                s.model = value.get::<Option<String>>().expect("type checked upstream").filter(|m| !m.is_empty())
            }
            "score-threshold" => s.score_threshold = value.get().expect("type checked upstream"),
            "nms-threshold" => s.nms_threshold = value.get().expect("type checked upstream"),
            "detect-interval" => s.detect_interval = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "max-faces" => s.max_faces = value.get().expect("type checked upstream"),
            "smoothing" => s.smoothing = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            "sweep-frames" => s.sweep_frames = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "enabled" => s.enabled = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "detector" => s.detector.to_value(),
            "model" => s.model.to_value(),
            "score-threshold" => s.score_threshold.to_value(),
            "nms-threshold" => s.nms_threshold.to_value(),
            "detect-interval" => s.detect_interval.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "max-faces" => s.max_faces.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "sweep-frames" => s.sweep_frames.to_value(),
            "threads" => s.threads.to_value(),
            "enabled" => s.enabled.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl BaseTransformImpl for FaceDetector {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let _scope = crate::log::element_scope(&*self.obj());
        let s = self.settings.lock().unwrap().clone();
        let config = DetectorConfig {
            kind: s.detector.into(),
            model: s.model.map(PathBuf::from),
            score_threshold: (s.score_threshold >= 0.0).then_some(s.score_threshold),
            nms_threshold: s.nms_threshold,
            min_face_size: s.min_face_size as f32,
            max_faces: s.max_faces as usize,
            threads: s.threads as usize,
            ..Default::default()
        };
        if s.threads > 0 {
            // OpenCV's pool is the process's: the last element started with a budget sets it.
            if let Err(e) = opencv::core::set_num_threads(s.threads as i32) {
                gst::warning!(CAT, imp = self, "OpenCV threads: {e}");
            }
        }
        let detector = Detector::new(config).map_err(|e| {
            gst::error_msg!(gst::ResourceError::OpenRead, ["facedetector: cannot start the detector: {e:#}"])
        })?;
        gst::info!(CAT, imp = self, "detector {} ready", detector.backend_name());
        let faces = FaceStream::new(detector, TrackConfig { smoothing: s.smoothing, ..Default::default() });
        *self.state.lock().unwrap() =
            Some(State { faces, info: None, interval: 0, sweep_frames: u32::MAX, was_disabled: false });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // Faces of frames before a seek say nothing about the frames after it.
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                state.faces.reset();
            }
        }
        self.parent_sink_event(event)
    }

    /// Disabled: a passthrough (no copy, no meta), and the tracks start afresh after.
    fn before_transform(&self, _inbuf: &gst::BufferRef) {
        let enabled = self.settings.lock().unwrap().enabled;
        if !enabled {
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                state.was_disabled = true;
            }
        }
        self.obj().set_passthrough(!enabled);
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (interval, sweep_frames, post, enabled) = {
            let s = self.settings.lock().unwrap();
            (s.detect_interval.max(1), s.sweep_frames, s.post_messages, s.enabled)
        };
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        if !enabled {
            // Switched off between before_transform and here: the next frame passes through.
            state.was_disabled = true;
            return Ok(gst::FlowSuccess::Ok);
        }
        if std::mem::take(&mut state.was_disabled) {
            state.faces.reset();
        }
        if state.interval != interval {
            state.faces.set_interval(interval);
            state.interval = interval;
        }
        if state.sweep_frames != sweep_frames {
            state.faces.set_sweep_frames(sweep_frames);
            state.sweep_frames = sweep_frames;
        }
        let stream = &mut state.faces;
        let result = {
            let _scope = crate::log::element_scope(&*self.obj());
            video::with_frame(buf, &info, |frame| stream.next(frame))
        };
        // Errors are posted after the lock is released: a sync bus handler may call back
        // into the element.
        drop(guard);
        let (faces, analysed) = result.map_err(|e| video::stream_failed(self, "face detection failed", e))?;
        meta::attach(buf, &faces, info.width(), info.height());
        if analysed && post {
            self.post_faces(buf, &faces);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl gst_video::subclass::prelude::VideoFilterImpl for FaceDetector {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        let before = state.info.as_ref().map(|i| (i.width(), i.height()));
        let now = (in_info.width(), in_info.height());
        if before.is_some_and(|b| b != now) {
            // The tracks and their smoothing filters are in the old frame's coordinates.
            gst::debug!(CAT, imp = self, "frame size {before:?} -> {now:?}: tracking starts afresh");
            state.faces.reset();
        }
        state.info = Some(in_info.clone());
        Ok(())
    }
}

video::video_element!(
    FaceDetector,
    "Face detector",
    "Filter/Analyzer/Video",
    "Finds faces (CenterFace through ONNX Runtime, YuNet or Haar through OpenCV) and attaches them as \
     region-of-interest meta",
    video::pad_templates_with_planar
);

impl FaceDetector {
    fn post_faces(&self, buf: &gst::BufferRef, faces: &[Face]) {
        let boxes = gst::List::new(faces.iter().map(|f| {
            gst::Structure::builder("face")
                .field("x", f.bbox[0].round() as i32)
                .field("y", f.bbox[1].round() as i32)
                .field("width", f.bbox[2].round() as i32)
                .field("height", f.bbox[3].round() as i32)
                .field("score", f.score as f64)
                .field("id", f.id)
                .build()
        }));
        let obj = self.obj();
        let running_time = obj.segment().downcast::<gst::ClockTime>().ok().and_then(|s| s.to_running_time(buf.pts()));
        let s = gst::Structure::builder("facedetector")
            .field("timestamp", buf.pts())
            .field("running-time", running_time)
            .field("faces", faces.len() as i32)
            .field("boxes", boxes)
            .build();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}
