//! `faceedit`: edits the attributes of the faces `facedetector` attached (glasses on,
//! smile off, ...) with an InterGAN-style edit model, the same edit for a track from frame
//! to frame, smoothed so it does not flicker. `attributes` can change while playing; with
//! nothing asked, frames pass untouched.

use std::sync::{LazyLock, Mutex};

use faceenhance::edit::{edit_names, FaceEditor};
use faceenhance::model::ProviderOptions;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::props::ProviderChoice;
use crate::{meta, video};

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("faceedit", gst::DebugColorFlags::empty(), Some("Face attribute editor")));

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    attributes: String,
    smoothing: f32,
    provider: ProviderChoice,
    threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: faceenhance::paths::default_edit_model().display().to_string(),
            attributes: String::new(),
            smoothing: 0.6,
            provider: ProviderChoice::Auto,
            threads: 0,
        }
    }
}

/// Everything that lives from `start` to `stop`.
#[derive(Default)]
struct State {
    editor: Option<FaceEditor>,
    /// The `attributes` text the editor was last given (applied on the next frame when the
    /// property changes).
    applied: String,
    info: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
pub struct FaceEdit {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEdit {
    const NAME: &'static str = "GstFaceEnhanceEdit";
    type Type = super::FaceEdit;
    type ParentType = gst_video::VideoFilter;
}

/// The attributes the default model edits, for `gst-inspect-1.0` (read from its profile).
fn supported() -> String {
    match edit_names(&faceenhance::paths::default_edit_model()) {
        Ok(names) => names.join(", "),
        Err(e) => format!("(default edit model not readable: {e:#})"),
    }
}

impl ObjectImpl for FaceEdit {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Edit model")
                    .blurb("ONNX edit model with its profile (kind = \"edit\") beside it")
                    .default_value(Some(d.model.as_str()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("attributes")
                    .nick("Attributes")
                    // built once, with the class: ParamSpec blurbs are static
                    .blurb(Box::leak(
                        format!(
                            "What to change, as Name=value pairs separated by commas (1 add, -1 remove, fractions \
                         for less; unnamed attributes stay as they are), e.g. \"Eyeglasses=1,Smiling=-1\". \
                         The default model edits: {}",
                            supported()
                        )
                        .into_boxed_str(),
                    ))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("Share of a tracked face's previous edit kept in this frame's: steadier, slower to follow")
                    .minimum(0.0)
                    .maximum(0.95)
                    .default_value(d.smoothing)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("provider", d.provider)
                    .nick("Execution provider")
                    .blurb("ONNX Runtime execution provider for the edit model")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("Inference threads on the CPU provider (0: ONNX Runtime's default, one per core)")
                    .maximum(256)
                    .default_value(d.threads)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => s.model = value.get::<Option<String>>().expect("type checked upstream").unwrap_or_default(),
            "attributes" => {
                s.attributes = value.get::<Option<String>>().expect("type checked upstream").unwrap_or_default()
            }
            "smoothing" => s.smoothing = value.get().expect("type checked upstream"),
            "provider" => s.provider = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "model" => s.model.to_value(),
            "attributes" => s.attributes.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "provider" => s.provider.to_value(),
            "threads" => s.threads.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl BaseTransformImpl for FaceEdit {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let _scope = crate::log::element_scope(&*self.obj());
        let s = self.settings.lock().unwrap().clone();
        let opts = ProviderOptions { provider: s.provider.into(), threads: s.threads as usize, ..Default::default() };
        let mut editor = FaceEditor::load(std::path::Path::new(&s.model), &opts)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["faceedit: {e:#}"]))?;
        editor
            .set_asks(&s.attributes)
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ["faceedit: attributes: {e:#}"]))?;
        editor.set_smoothing(s.smoothing);
        gst::info!(CAT, imp = self, "model {}: {}; asked: '{}'", s.model, editor.model().report(), s.attributes);
        *self.state.lock().unwrap() = State { editor: Some(editor), applied: s.attributes, info: None };
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // Edits smoothed from before a seek belong to other faces.
            if let Some(e) = self.state.lock().unwrap().editor.as_mut() {
                e.reset();
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (asked, smoothing) = {
            let s = self.settings.lock().unwrap();
            (s.attributes.clone(), s.smoothing)
        };
        let faces = meta::read(buf);
        let mut state = self.state.lock().unwrap();
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let State { editor, applied, .. } = &mut *state;
        let editor = editor.as_mut().ok_or(gst::FlowError::Flushing)?;
        editor.set_smoothing(smoothing);
        // A bad text set while playing keeps the previous edit and says why (posted once the
        // lock is released: a sync bus handler may call back in).
        let mut warning = None;
        if *applied != asked {
            match editor.set_asks(&asked) {
                Ok(()) => gst::info!(CAT, imp = self, "now asked: '{asked}'"),
                Err(e) => warning = Some(format!("faceedit: attributes '{asked}' ignored: {e:#}")),
            }
            *applied = asked;
        }
        let result = if faces.is_empty() {
            Ok(None)
        } else {
            let _scope = crate::log::element_scope(&*self.obj());
            video::with_frame_mut(buf, &info, |frame| editor.edit(frame, &faces)).map(Some)
        };
        drop(state);
        if let Some(w) = warning {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
        let Some(stats) = result.map_err(|e| video::stream_failed(self, "face edit", e))? else {
            return Ok(gst::FlowSuccess::Ok);
        };
        gst::trace!(CAT, imp = self, "{} faces, {} edited", stats.faces, stats.edited);
        Ok(gst::FlowSuccess::Ok)
    }
}

video::in_place_video_filter!(
    FaceEdit,
    "Face attribute editor",
    "Filter/Effect/Video",
    "Edits attributes (glasses, smile, hair colour, age, ...) of the faces found by facedetector with an \
     InterGAN-style ONNX edit model",
    video::pad_templates_with_planar
);
