//! GStreamer elements over the `faceenhance` core: `facedetector` (finds faces, attaches
//! `GstVideoRegionOfInterestMeta` of type `face`), `facerestore` (reads that meta, restores
//! and blends the faces, optionally into an up-scaled frame), `facedraw` (draws the meta;
//! `faceoverlay` is taken by gst-plugins-bad), `faceenhance` (a bin of
//! `facedetector ! queue ! facerestore`), `facegallery` (the best crop of each tracked
//! face, an index and a contact sheet) and `faceedit` (edits the faces' attributes). The
//! elements only map buffers and metadata onto the core's types; all the work is in the
//! core.

use gst::glib;

mod facedetector;
mod facedraw;
mod faceedit;
mod faceenhance;
mod facegallery;
mod facerestore;
mod log;
pub mod meta;
mod props;
mod video;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Loaded from a file (not registered statically into an application): the models
    // installed beside that file are the default ones.
    if let Some(file) = plugin.filename() {
        ::faceenhance::paths::set_library_path(file);
    }
    log::install();
    facedetector::register(plugin)?;
    facerestore::register(plugin)?;
    facedraw::register(plugin)?;
    faceenhance::register(plugin)?;
    facegallery::register(plugin)?;
    faceedit::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    faceenhance,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // The crate is "MIT OR Apache-2.0"; GStreamer's licence list has no Apache-2.0, and
    // MIT/X11 is the licence the dual licence grants to everyone.
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://github.com/faceenhance/faceenhance",
    env!("BUILD_REL_DATE")
);
