use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceEdit(ObjectSubclass<imp::FaceEdit>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // The category exists before the first call into the core, whose events go to it.
    std::sync::LazyLock::force(&imp::CAT);
    gst::Element::register(Some(plugin), "faceedit", gst::Rank::NONE, FaceEdit::static_type())
}
