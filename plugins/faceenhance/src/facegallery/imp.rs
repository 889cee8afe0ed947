//! `facegallery`: a pass-through that watches the face meta (after `facerestore`, so the
//! crops are the restored faces) and, at end of stream, writes each tracked face's best
//! crop, `index.json` and `contact-sheet.png` into `location`, then posts a
//! `facegallery` message with the count and the index path. A track not seen for
//! `faceenhance::gallery::RETIRE_AFTER_FRAMES` frames has its crop written at once and
//! dropped from memory, so a long stream's gallery stays small. I420 frames are read only
//! where a face is, and files are written by the gallery's own thread. With `identity-threshold`
//! above 0 (the default) tracks are grouped into people by face descriptor, so a person
//! who leaves and comes back is one person with two tracks.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use faceenhance::gallery::{Gallery, Identities, IDENTITY_THRESHOLD};
use faceenhance::model::identity::{self, IdentityNet};
use faceenhance::model::ProviderOptions;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::{meta, video};

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facegallery", gst::DebugColorFlags::empty(), Some("Face gallery")));

/// Everything that lives from `start` to `stop`.
#[derive(Default)]
struct State {
    /// From start until it is written (EOS or stop): then `None`, and frames pass through.
    gallery: Option<Gallery>,
    frames: u64,
    /// The negotiated frames.
    info: Option<gst_video::VideoInfo>,
}

struct Settings {
    location: Option<String>,
    identity_threshold: f64,
    /// None: the shipped `models/face-id.onnx`.
    identity_model: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { location: None, identity_threshold: IDENTITY_THRESHOLD as f64, identity_model: None }
    }
}

#[derive(Default)]
pub struct FaceGallery {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceGallery {
    const NAME: &'static str = "GstFaceEnhanceGallery";
    type Type = super::FaceGallery;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceGallery {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Folder")
                    .blurb("Where the face crops, index.json and contact-sheet.png are written (created)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("identity-threshold")
                    .nick("Identity threshold")
                    .blurb(
                        "Tracks whose best faces' descriptors lie within this distance of a person's mean are \
                         one person in index.json and the contact sheet (one person's photos ~0.26 apart, \
                         different people ~0.8); 0 lists every track as its own person",
                    )
                    .minimum(0.0)
                    .maximum(2.0)
                    .default_value(IDENTITY_THRESHOLD as f64)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("identity-model")
                    .nick("Identity model")
                    .blurb("The face descriptor net (ONNX; unset: the shipped models/face-id.onnx)")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location = value.get().expect("type checked upstream"),
            "identity-threshold" => s.identity_threshold = value.get().expect("type checked upstream"),
            "identity-model" => s.identity_model = value.get().expect("type checked upstream"),
            other => unreachable!("facegallery has no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location.to_value(),
            "identity-threshold" => s.identity_threshold.to_value(),
            "identity-model" => s.identity_model.to_value(),
            other => unreachable!("facegallery has no property {other}"),
        }
    }
}

impl FaceGallery {
    /// Writes the gallery once (EOS, or stop without EOS) and tells the application.
    fn write(&self) -> Result<(), gst::ErrorMessage> {
        // The gallery leaves the state: the files are written outside the lock (a sync bus
        // handler or a property read never waits on the disk).
        let taken = self.state.lock().unwrap().gallery.take();
        let Some(mut gallery) = taken else { return Ok(()) };
        let index = gallery.write().map_err(|e| gst::error_msg!(gst::ResourceError::Write, ["facegallery: {e:#}"]))?;
        let (faces, people) = (gallery.len() as i32, gallery.people().len() as i32);
        gst::info!(CAT, imp = self, "{faces} tracks of {people} people written, index {}", index.display());
        let s = gst::Structure::builder("facegallery")
            .field("faces", faces)
            .field("people", people)
            .field("index", index.display().to_string())
            .build();
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        Ok(())
    }
}

impl BaseTransformImpl for FaceGallery {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (location, threshold, model) = {
            let s = self.settings.lock().unwrap();
            (s.location.clone(), s.identity_threshold, s.identity_model.clone())
        };
        let location = location
            .ok_or_else(|| gst::error_msg!(gst::ResourceError::NotFound, ["facegallery: no location (folder) set"]))?;
        let mut gallery = Gallery::new(&PathBuf::from(&location))
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ["facegallery: {e:#}"]))?;
        if threshold > 0.0 {
            let model = model.map(PathBuf::from).unwrap_or_else(identity::default_model);
            let net = IdentityNet::load(&model, &ProviderOptions::default()).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["facegallery: {e:#} (identity-threshold=0 lists tracks without grouping them)"]
                )
            })?;
            gallery = gallery.with_identities(Identities::new(net, threshold as f32));
        }
        *self.state.lock().unwrap() = State { gallery: Some(gallery), ..Default::default() };
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // A pipeline stopped without EOS still leaves its gallery.
        let result = self.write();
        *self.state.lock().unwrap() = State::default();
        result
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            if let Err(e) = self.write() {
                self.post_error_message(e);
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip_passthrough(&self, buf: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let faces = meta::read(buf);
        let models = meta::models(buf);
        let ns = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
        let mut state = self.state.lock().unwrap();
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let number = state.frames;
        state.frames += 1;
        // written at EOS: later frames (a seek after it) pass through
        let Some(gallery) = state.gallery.as_mut() else { return Ok(gst::FlowSuccess::Ok) };
        let result = if faces.is_empty() {
            // Tracks not seen for a while go to disk even while no one is in the picture.
            gallery.retire(number).map_err(|e| format!("{e:#}"))
        } else {
            video::with_frame(buf, &info, |frame| gallery.offer(frame, &faces, &models, number, ns))
        };
        // Posted after the lock is released: a sync bus handler may call back in.
        drop(state);
        result.map_err(|e| video::stream_failed(self, "face gallery", e))?;
        Ok(gst::FlowSuccess::Ok)
    }
}

video::in_place_video_filter!(
    FaceGallery,
    "Face gallery",
    "Filter/Analyzer/Video",
    "Keeps the best crop of each tracked face and writes them, an index and a contact sheet at end of stream",
    video::pad_templates_with_planar
);
