//! Buffers <-> core frames: the formats the elements accept and the one mapping of a
//! GStreamer video buffer onto a [`faceenhance::Frame`].

use std::sync::Mutex;

use faceenhance::{Frame, PixelFormat};
use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};

pub const FORMATS: [VideoFormat; 6] =
    [VideoFormat::Bgrx, VideoFormat::Bgra, VideoFormat::Rgbx, VideoFormat::Rgba, VideoFormat::Bgr, VideoFormat::Rgb];

pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new().format_list(FORMATS).build()
}

pub fn pad_templates() -> Vec<gst::PadTemplate> {
    let caps = caps();
    vec![
        gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
        gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
    ]
}

pub fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    PixelFormat::from_name(f.to_str().as_str())
}

fn layout(info: &VideoInfo) -> Result<(u32, u32, PixelFormat), String> {
    let format = pixel_format(info.format()).ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
    Ok((info.width(), info.height(), format))
}

/// The row stride of a mapped frame: the buffer's `GstVideoMeta` where upstream attached
/// one (padded rows, e.g. from a decoder or a hardware allocator), else the caps' layout.
/// The negotiated caps' stride is only right for buffers without a meta.
fn mapped_stride<T>(vf: &VideoFrameRef<T>) -> Result<usize, String> {
    let stride = vf.plane_stride()[0];
    usize::try_from(stride).ok().filter(|&s| s > 0).ok_or_else(|| format!("unsupported row stride {stride}"))
}

/// Runs `f` on a read-only view of `buf`.
pub fn with_frame<R>(
    buf: &gst::BufferRef,
    info: &VideoInfo,
    f: impl FnOnce(&Frame) -> anyhow::Result<R>,
) -> Result<R, String> {
    let (w, h, format) = layout(info)?;
    let vf = VideoFrameRef::from_buffer_ref_readable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
    let stride = mapped_stride(&vf)?;
    let data = vf.plane_data(0).map_err(|e| e.to_string())?;
    let frame = Frame::new_readonly(data, w, h, stride, format).map_err(|e| format!("{e:#}"))?;
    f(&frame).map_err(|e| format!("{e:#}"))
}

/// Runs `f` on a writable view of `buf`.
pub fn with_frame_mut<R>(
    buf: &mut gst::BufferRef,
    info: &VideoInfo,
    f: impl FnOnce(&mut Frame) -> anyhow::Result<R>,
) -> Result<R, String> {
    let (w, h, format) = layout(info)?;
    let mut vf = VideoFrameRef::from_buffer_ref_writable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
    let stride = mapped_stride(&vf)?;
    let data = vf.plane_data_mut(0).map_err(|e| e.to_string())?;
    let mut frame = Frame::new(data, w, h, stride, format).map_err(|e| format!("{e:#}"))?;
    f(&mut frame).map_err(|e| format!("{e:#}"))
}

/// Posts a stream error on the bus (`{what}: {reason}`) and returns the flow error that
/// stops the stream: how every element reports a frame it could not process.
pub fn stream_failed<T: gst::subclass::prelude::ElementImpl>(imp: &T, what: &str, reason: String) -> gst::FlowError {
    use gst::subclass::prelude::ObjectSubclassExt;
    gst::element_imp_error!(imp, gst::StreamError::Failed, ["{what}: {reason}"]);
    gst::FlowError::Error
}

/// The video info negotiated on an element's sink pad (set in `set_info`, read per buffer).
#[derive(Default)]
pub struct Negotiated(Mutex<Option<VideoInfo>>);

impl Negotiated {
    pub fn set(&self, info: &VideoInfo) {
        *self.0.lock().unwrap() = Some(info.clone());
    }

    pub fn get(&self) -> Result<VideoInfo, gst::FlowError> {
        self.0.lock().unwrap().clone().ok_or(gst::FlowError::NotNegotiated)
    }
}

/// Element metadata and the pad templates every element shares.
macro_rules! video_element {
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr) => {
        impl gst::subclass::prelude::GstObjectImpl for $ty {}

        impl gst::subclass::prelude::ElementImpl for $ty {
            fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                static META: std::sync::LazyLock<gst::subclass::ElementMetadata> = std::sync::LazyLock::new(|| {
                    gst::subclass::ElementMetadata::new($long_name, $klass, $description, "faceenhance developers")
                });
                Some(&*META)
            }

            fn pad_templates() -> &'static [gst::PadTemplate] {
                static T: std::sync::LazyLock<Vec<gst::PadTemplate>> =
                    std::sync::LazyLock::new($crate::video::pad_templates);
                T.as_ref()
            }
        }
    };
}
pub(crate) use video_element;

/// An in-place filter over the shared formats: [`video_element!`] plus a `VideoFilterImpl`
/// that records the negotiated info in the element's `info: Negotiated` field.
macro_rules! in_place_video_filter {
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr) => {
        $crate::video::video_element!($ty, $long_name, $klass, $description);

        impl gst_video::subclass::prelude::VideoFilterImpl for $ty {
            fn set_info(
                &self,
                _incaps: &gst::Caps,
                in_info: &gst_video::VideoInfo,
                _outcaps: &gst::Caps,
                _out_info: &gst_video::VideoInfo,
            ) -> Result<(), gst::LoggableError> {
                self.info.set(in_info);
                Ok(())
            }
        }
    };
}
pub(crate) use in_place_video_filter;

/// Caps `factor` times larger (towards the source pad) or smaller (towards the sink pad):
/// widths and heights, fixed or ranges, are scaled; a fixed size that does not divide by
/// the factor has no counterpart and its structure is dropped.
pub fn scale_caps(caps: &gst::Caps, factor: u32, up: bool) -> gst::Caps {
    let k = factor.max(1) as i32;
    let map = |v: i32| -> Option<i32> {
        if up {
            v.checked_mul(k)
        } else {
            (v % k == 0).then_some(v / k)
        }
    };
    let mut out = gst::Caps::new_empty();
    let out_mut = out.get_mut().expect("new caps are writable");
    for (s, features) in caps.iter_with_features() {
        let mut s = s.to_owned();
        let mut ok = true;
        for field in ["width", "height"] {
            if let Ok(v) = s.get::<i32>(field) {
                match map(v) {
                    Some(v) => s.set(field, v),
                    None => ok = false,
                }
            } else if let Ok(r) = s.get::<gst::IntRange<i32>>(field) {
                let (lo, hi) = if up {
                    (r.min().saturating_mul(k), r.max().saturating_mul(k))
                } else {
                    ((r.min() + k - 1) / k, r.max() / k)
                };
                if lo > hi {
                    ok = false;
                } else {
                    s.set(field, gst::IntRange::new(lo.max(1), hi.max(1)));
                }
            }
        }
        if ok {
            out_mut.append_structure_full(s, Some(features.to_owned()));
        }
    }
    out
}
