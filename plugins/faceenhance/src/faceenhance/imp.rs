//! `faceenhance`: `facedetector ! queue ! facerestore` in one bin, so detection of the next
//! frame overlaps restoration of this one, with the common properties proxied to the child
//! that owns them.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::props::{BackgroundChoice, DetectorChoice, ProviderChoice};
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("faceenhance-bin", gst::DebugColorFlags::empty(), Some("Face enhancer bin"))
});

/// (bin property, child, child property).
const PROXIED: [(&str, Child, &str); 31] = [
    ("model", Child::Restore, "model"),
    ("profile", Child::Restore, "profile"),
    ("provider", Child::Restore, "provider"),
    ("device-id", Child::Restore, "device-id"),
    ("fp16", Child::Restore, "fp16"),
    ("trt-cache-dir", Child::Restore, "trt-cache-dir"),
    ("strength", Child::Restore, "strength"),
    ("fidelity", Child::Restore, "fidelity"),
    ("max-latency", Child::Restore, "max-latency"),
    ("restore-interval", Child::Restore, "restore-interval"),
    ("upscale", Child::Restore, "upscale"),
    ("background", Child::Restore, "background"),
    ("background-model", Child::Restore, "background-model"),
    ("max-stretch", Child::Restore, "max-stretch"),
    ("force", Child::Restore, "force"),
    ("by-detail", Child::Restore, "by-detail"),
    ("measure-identity", Child::Restore, "measure-identity"),
    ("share-sessions", Child::Restore, "share-sessions"),
    ("post-messages", Child::Restore, "post-messages"),
    ("blend-feather", Child::Restore, "blend-feather"),
    ("threads", Child::Both, "threads"),
    ("detector", Child::Detect, "detector"),
    ("detector-model", Child::Detect, "model"),
    ("detect-interval", Child::Detect, "detect-interval"),
    ("sweep-frames", Child::Detect, "sweep-frames"),
    ("min-face-size", Child::Detect, "min-face-size"),
    ("max-faces", Child::Detect, "max-faces"),
    ("score-threshold", Child::Detect, "score-threshold"),
    ("smoothing", Child::Detect, "smoothing"),
    ("nms-threshold", Child::Detect, "nms-threshold"),
    ("detector-post-messages", Child::Detect, "post-messages"),
];

#[derive(Clone, Copy)]
enum Child {
    Detect,
    Restore,
    /// Set on both (one thread budget); read from facerestore.
    Both,
}

pub struct FaceEnhance {
    detect: gst::Element,
    restore: gst::Element,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEnhance {
    const NAME: &'static str = "GstFaceEnhanceBin";
    type Type = super::FaceEnhance;
    type ParentType = gst::Bin;

    fn new() -> Self {
        let make = |factory: &str, name: &str| {
            gst::ElementFactory::make(factory).name(name).build().expect("element of this same plugin")
        };
        Self { detect: make("facedetector", "detect"), restore: make("facerestore", "restore") }
    }
}

impl FaceEnhance {
    fn child(&self, c: Child) -> &gst::Element {
        match c {
            Child::Detect => &self.detect,
            Child::Restore | Child::Both => &self.restore,
        }
    }

    fn route(name: &str) -> (Child, &'static str) {
        let (_, c, p) = PROXIED.iter().find(|(n, _, _)| *n == name).expect("only proxied properties are installed");
        (*c, p)
    }
}

impl ObjectImpl for FaceEnhance {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let detect = gst::ElementFactory::make("facedetector").build().expect("facedetector is registered");
            let restore = gst::ElementFactory::make("facerestore").build().expect("facerestore is registered");
            PROXIED
                .iter()
                .map(|(name, child, prop)| {
                    let el = match child {
                        Child::Detect => &detect,
                        Child::Restore | Child::Both => &restore,
                    };
                    let spec = el.find_property(prop).expect("child property exists");
                    let blurb = spec.blurb().unwrap_or_default().to_string();
                    let blurb = match child {
                        Child::Detect => format!("{blurb} (facedetector '{prop}')"),
                        Child::Restore => format!("{blurb} (facerestore '{prop}')"),
                        Child::Both => "CPU threads for detection and restoration (ONNX Runtime \
                                        intra-op threads, OpenCV); 0: all cores"
                            .to_string(),
                    };
                    renamed(&spec, name, &blurb)
                })
                .collect()
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let (c, p) = Self::route(pspec.name());
        let child = self.child(c);
        gst::debug!(CAT, imp = self, "{} -> {}:{p} = {value:?}", pspec.name(), child.name());
        child.set_property_from_value(p, value);
        if let Child::Both = c {
            self.detect.set_property_from_value(p, value);
        }
        if pspec.name() == "strength" {
            // Strength 0 is a passthrough: nothing to detect either.
            let on = value.get::<f32>().expect("type checked upstream") > 0.0;
            self.detect.set_property("enabled", on);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let (c, p) = Self::route(pspec.name());
        self.child(c).property_value(p)
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let queue = gst::ElementFactory::make("queue")
            .name("queue")
            .property("max-size-buffers", 4u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .build()
            .expect("queue is in GStreamer core");
        obj.add_many([&self.detect, &queue, &self.restore]).expect("fresh elements");
        gst::Element::link_many([&self.detect, &queue, &self.restore]).expect("same caps on both sides");
        let ghost = |templ: &str, target: &gst::Element, pad: &str| {
            let templ = obj.pad_template(templ).expect("template exists");
            let target = target.static_pad(pad).expect("static pad");
            let g = gst::GhostPad::builder_from_template_with_target(&templ, &target).expect("compatible pad").build();
            obj.add_pad(&g).expect("unique pad");
        };
        ghost("sink", &self.detect, "sink");
        ghost("src", &self.restore, "src");
        gst::debug!(CAT, imp = self, "built {} ! {} ! {}", self.detect.name(), queue.name(), self.restore.name());
    }
}

/// A copy of a child's property spec (type, range, default, flags) under the bin's name.
fn renamed(spec: &glib::ParamSpec, name: &str, blurb: &str) -> glib::ParamSpec {
    let nick = spec.nick().to_string();
    let flags = spec.flags();
    if let Some(p) = spec.downcast_ref::<glib::ParamSpecString>() {
        return glib::ParamSpecString::builder(name)
            .nick(&nick)
            .blurb(blurb)
            .default_value(p.default_value())
            .flags(flags)
            .build();
    }
    // The numeric specs differ only in their type.
    macro_rules! numeric {
        ($($t:ty),*) => {$(
            if let Some(p) = spec.downcast_ref::<$t>() {
                return <$t>::builder(name)
                    .nick(&nick)
                    .blurb(blurb)
                    .minimum(p.minimum())
                    .maximum(p.maximum())
                    .default_value(p.default_value())
                    .flags(flags)
                    .build();
            }
        )*};
    }
    numeric!(glib::ParamSpecFloat, glib::ParamSpecUInt, glib::ParamSpecInt);
    if let Some(p) = spec.downcast_ref::<glib::ParamSpecBoolean>() {
        return glib::ParamSpecBoolean::builder(name)
            .nick(&nick)
            .blurb(blurb)
            .default_value(p.default_value())
            .flags(flags)
            .build();
    }
    if spec.value_type() == DetectorChoice::static_type() {
        return glib::ParamSpecEnum::builder::<DetectorChoice>(name).nick(&nick).blurb(blurb).flags(flags).build();
    }
    if spec.value_type() == ProviderChoice::static_type() {
        return glib::ParamSpecEnum::builder::<ProviderChoice>(name).nick(&nick).blurb(blurb).flags(flags).build();
    }
    if spec.value_type() == BackgroundChoice::static_type() {
        return glib::ParamSpecEnum::builder::<BackgroundChoice>(name).nick(&nick).blurb(blurb).flags(flags).build();
    }
    unreachable!("faceenhance proxies only string, number, boolean and enum properties ({})", spec.name())
}

impl GstObjectImpl for FaceEnhance {}

impl ElementImpl for FaceEnhance {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face enhancer",
                "Filter/Effect/Video",
                "Finds, restores and blends back faces: facedetector ! queue ! facerestore",
                "faceenhance developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(video::pad_templates_with_planar);
        T.as_ref()
    }
}

impl BinImpl for FaceEnhance {}
