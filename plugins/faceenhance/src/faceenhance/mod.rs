use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceEnhance(ObjectSubclass<imp::FaceEnhance>) @extends gst::Bin, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "faceenhance", gst::Rank::NONE, FaceEnhance::static_type())
}
