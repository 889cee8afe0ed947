//! The core's `tracing` events (provider choices and fall-backs, the model ladder's
//! choices, ONNX Runtime's own messages) forwarded to GStreamer's debug log, so that
//! `GST_DEBUG=faceenhance:5` shows them beside the elements' own lines.
//!
//! Events go to the `faceenhance` category at the matching level (error, warning, info,
//! debug; trace becomes log). Inside a span an element opened ([`element_span`]) the line
//! starts with that element's name. The subscriber is installed once, in `plugin_init`, and
//! only where the process has none: an application with its own (the `faceenhance` command
//! line) keeps it.

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

/// The span an element opens around its calls into the core, naming itself.
pub fn element_span(element: &impl IsA<gst::Object>) -> tracing::Span {
    tracing::info_span!("element", element = %element.name())
}

/// Installs the forwarding subscriber unless the process already has one.
pub fn install() {
    LazyLock::force(&CAT);
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(GstLayer));
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

/// The element name an [`element_span`] carries.
struct ElementName(String);

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
        metadata.is_span() || CAT.above_threshold(gst_level(metadata.level()))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "element" {
            return;
        }
        let mut line = Line::default();
        attrs.record(&mut line);
        let name = line.fields.trim_start().strip_prefix("element=").unwrap_or_default().to_string();
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ElementName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = gst_level(meta.level());
        if !CAT.above_threshold(level) {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let element = ctx.event_scope(event).and_then(|scope| {
            scope.from_root().filter_map(|s| s.extensions().get::<ElementName>().map(|e| e.0.clone())).last()
        });
        let prefix = element.map(|e| format!("<{e}> ")).unwrap_or_default();
        let file = glib::GString::from(meta.file().unwrap_or("<unknown>"));
        CAT.log(
            None::<&glib::Object>,
            level,
            file.as_gstr(),
            meta.target(),
            meta.line().unwrap_or(0),
            format_args!("{prefix}{}{}", line.message, line.fields),
        );
    }
}
