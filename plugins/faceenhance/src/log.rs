//! The core's `tracing` events (provider choices and fall-backs, the model ladder's
//! choices, ONNX Runtime's own messages) forwarded to GStreamer's debug log, so that
//! `GST_DEBUG=facerestore:5` shows them beside the element's own lines.
//!
//! Events at the matching level (error, warning, info, debug; trace becomes log) go to the
//! debug category of the element whose call into the core made them (inside the span it
//! opened, [`element_scope`]: `facedetector`, `facerestore`, ...), the line starting with the
//! element's name; events outside any element go to `faceenhance`. The forwarding
//! subscriber is never the process's global one: a library must leave that to its host (an
//! application that installs its own after loading the plugin would panic). It is the
//! thread's default for the length of an element's call into the core
//! ([`element_scope`]), and only while the process has no global subscriber of its own.

use std::fmt::Write;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

pub static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("faceenhance", gst::DebugColorFlags::empty(), Some("faceenhance core (tracing events)"))
});

/// The forwarding subscriber, made once.
static DISPATCH: LazyLock<tracing::Dispatch> =
    LazyLock::new(|| tracing::Dispatch::new(tracing_subscriber::registry().with(GstLayer)));

/// An element's call into the core: the forwarding subscriber as this thread's default
/// (unless the process has a global one) and the element's span entered.
pub struct ElementScope {
    // dropped first: the span leaves under the subscriber that made it
    _span: tracing::span::EnteredSpan,
    _default: Option<tracing::dispatcher::DefaultGuard>,
}

/// The scope an element opens around its calls into the core, naming itself and its
/// debug category (its factory's name).
pub fn element_scope(element: &impl IsA<gst::Object>) -> ElementScope {
    // none of the host's: ours for this call (thread-local, so the host can still set a
    // global one at any time)
    let none = tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
    let default = none.then(|| tracing::dispatcher::set_default(&DISPATCH));
    let category = element.dynamic_cast_ref::<gst::Element>().and_then(|e| e.factory()).map(|f| f.name());
    let category = category.as_ref().map(|c| c.as_str()).unwrap_or("faceenhance");
    let span = tracing::info_span!("element", element = %element.name(), category = %category);
    ElementScope { _span: span.entered(), _default: default }
}

/// The categories events may go to: the core's and those of the elements that call it;
/// looked up by name until every element's exists, then kept (this runs for every event).
fn categories() -> std::borrow::Cow<'static, [gst::DebugCategory]> {
    static ALL: std::sync::OnceLock<Vec<gst::DebugCategory>> = std::sync::OnceLock::new();
    if let Some(all) = ALL.get() {
        return std::borrow::Cow::Borrowed(all);
    }
    const NAMES: [&str; 5] = ["facedetector", "facerestore", "facegallery", "facedraw", "faceedit"];
    let mut found: Vec<gst::DebugCategory> = NAMES.into_iter().filter_map(gst::DebugCategory::get).collect();
    let complete = found.len() == NAMES.len();
    found.push(*CAT);
    if complete {
        let _ = ALL.set(found.clone());
    }
    std::borrow::Cow::Owned(found)
}

/// Registers the core's debug category (no subscriber is installed: see [`element_scope`]).
pub fn install() {
    LazyLock::force(&CAT);
}

pub fn gst_level(level: &tracing::Level) -> gst::DebugLevel {
    match *level {
        tracing::Level::ERROR => gst::DebugLevel::Error,
        tracing::Level::WARN => gst::DebugLevel::Warning,
        tracing::Level::INFO => gst::DebugLevel::Info,
        tracing::Level::DEBUG => gst::DebugLevel::Debug,
        tracing::Level::TRACE => gst::DebugLevel::Log,
    }
}

/// The element name and debug category an [`element_scope`]'s span carries.
struct ElementName(String, Option<gst::DebugCategory>);

/// `message` first, then the other fields as `name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

struct GstLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for GstLayer {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Events are asked about each time: GST_DEBUG thresholds may change at run time.
        if metadata.is_span() {
            Interest::always()
        } else {
            Interest::sometimes()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        let level = gst_level(metadata.level());
        metadata.is_span() || categories().iter().any(|c| c.above_threshold(level))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "element" {
            return;
        }
        let mut line = Line::default();
        attrs.record(&mut line);
        let field = |key: &str| {
            line.fields.split_whitespace().find_map(|f| f.strip_prefix(key)).unwrap_or_default().to_string()
        };
        let (name, category) = (field("element="), gst::DebugCategory::get(&field("category=")));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ElementName(name, category));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = gst_level(meta.level());
        let element = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().filter_map(|s| s.extensions().get::<ElementName>().map(|e| (e.0.clone(), e.1))).last()
        });
        let category = element.as_ref().and_then(|e| e.1).unwrap_or(*CAT);
        if !category.above_threshold(level) {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let prefix = element.map(|e| format!("<{}> ", e.0)).unwrap_or_default();
        let file = glib::GString::from(meta.file().unwrap_or("<unknown>"));
        category.log(
            None::<&glib::Object>,
            level,
            file.as_gstr(),
            meta.target(),
            meta.line().unwrap_or(0),
            format_args!("{prefix}{}{}", line.message, line.fields),
        );
    }
}
