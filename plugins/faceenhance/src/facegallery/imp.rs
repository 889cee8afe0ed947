//! `facegallery`: a pass-through that watches the face meta (after `facerestore`, so the
//! crops are the restored faces) and, at end of stream, writes each tracked face's best
//! crop, `index.json` and `contact-sheet.png` into `location`, then posts a
//! `facegallery` message with the count and the index path. A track not seen for
//! `faceenhance::gallery::RETIRE_AFTER_FRAMES` frames has its crop written at once and
//! dropped from memory, so a long stream's gallery stays small.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use faceenhance::gallery::Gallery;
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
    gallery: Option<Gallery>,
    frames: u64,
    written: bool,
    /// The negotiated frames.
    info: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
pub struct FaceGallery {
    location: Mutex<Option<String>>,
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
            vec![glib::ParamSpecString::builder("location")
                .nick("Folder")
                .blurb("Where the face crops, index.json and contact-sheet.png are written (created)")
                .mutable_ready()
                .build()]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, _pspec: &glib::ParamSpec) {
        *self.location.lock().unwrap() = value.get::<Option<String>>().expect("type checked upstream");
    }

    fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
        self.location.lock().unwrap().to_value()
    }
}

impl FaceGallery {
    /// Writes the gallery once (EOS, or stop without EOS) and tells the application.
    fn write(&self) -> Result<(), gst::ErrorMessage> {
        let mut state = self.state.lock().unwrap();
        let Some(gallery) = state.gallery.as_ref().filter(|_| !state.written) else { return Ok(()) };
        let index = gallery.write().map_err(|e| gst::error_msg!(gst::ResourceError::Write, ["facegallery: {e:#}"]))?;
        let faces = gallery.len() as i32;
        state.written = true;
        drop(state);
        gst::info!(CAT, imp = self, "{faces} faces written, index {}", index.display());
        let s = gst::Structure::builder("facegallery")
            .field("faces", faces)
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
        let location =
            self.location.lock().unwrap().clone().ok_or_else(|| {
                gst::error_msg!(gst::ResourceError::NotFound, ["facegallery: no location (folder) set"])
            })?;
        let gallery = Gallery::new(&PathBuf::from(&location))
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ["facegallery: {e:#}"]))?;
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
        let gallery = state.gallery.as_mut().ok_or(gst::FlowError::Flushing)?;
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
    "Keeps the best crop of each tracked face and writes them, an index and a contact sheet at end of stream"
);
