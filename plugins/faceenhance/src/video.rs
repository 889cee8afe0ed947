//! Buffers <-> core frames: the formats the elements accept and the one mapping of a
//! GStreamer video buffer onto a [`faceenhance::Frame`].

use faceenhance::{Frame, PixelFormat};
use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};

pub const FORMATS: [VideoFormat; 6] =
    [VideoFormat::Bgrx, VideoFormat::Bgra, VideoFormat::Rgbx, VideoFormat::Rgba, VideoFormat::Bgr, VideoFormat::Rgb];

/// What a decoder gives and an encoder takes: detection and restoration work on it
/// directly, so no colour conversion of the whole frame surrounds them (that alone cost
/// 1.5x a 720p decode + encode).
pub const PLANAR: VideoFormat = VideoFormat::I420;

pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new().format_list(FORMATS).build()
}

/// The packed formats and I420 (first: preferred when upstream offers it).
pub fn caps_with_planar() -> gst::Caps {
    gst_video::VideoCapsBuilder::new().format_list(std::iter::once(PLANAR).chain(FORMATS)).build()
}

fn templates(caps: gst::Caps) -> Vec<gst::PadTemplate> {
    vec![
        gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
        gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
    ]
}

/// Templates of the elements that draw or copy pixels directly (packed formats).
pub fn pad_templates() -> Vec<gst::PadTemplate> {
    templates(caps())
}

/// Templates of facedetector, facerestore and the faceenhance bin (packed and I420).
pub fn pad_templates_with_planar() -> Vec<gst::PadTemplate> {
    templates(caps_with_planar())
}

/// `caps` without I420 (facerestore up-scaling works on packed frames only).
pub fn without_planar(caps: &gst::Caps) -> gst::Caps {
    caps.intersect_with_mode(&self::caps(), gst::CapsIntersectMode::First)
}

pub fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    PixelFormat::from_name(f.to_str().as_str())
}

fn layout(info: &VideoInfo) -> Result<(u32, u32, PixelFormat), String> {
    // (I420 is read through its planes: see with_frame.)
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

/// The strides of an I420 frame's three planes, as mapped (a video meta's, where one is).
fn plane_strides<T>(vf: &VideoFrameRef<T>) -> Result<[usize; 3], String> {
    let s = vf.plane_stride();
    let get =
        |i: usize| usize::try_from(s[i]).ok().filter(|&v| v > 0).ok_or_else(|| format!("plane {i} stride {}", s[i]));
    Ok([get(0)?, get(1)?, get(2)?])
}

/// Runs `f` on a read-only view of `buf`.
pub fn with_frame<R>(
    buf: &gst::BufferRef,
    info: &VideoInfo,
    f: impl FnOnce(&Frame) -> anyhow::Result<R>,
) -> Result<R, String> {
    let (w, h, format) = layout(info)?;
    let vf = VideoFrameRef::from_buffer_ref_readable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
    let frame = if format.is_planar() {
        let [y, u, v, _] = vf.planes_data();
        Frame::new_i420_readonly([y, u, v], w, h, plane_strides(&vf)?)
    } else {
        Frame::new_readonly(vf.plane_data(0).map_err(|e| e.to_string())?, w, h, mapped_stride(&vf)?, format)
    };
    f(&frame.map_err(|e| format!("{e:#}"))?).map_err(|e| format!("{e:#}"))
}

/// Runs `f` on a writable view of `buf`.
pub fn with_frame_mut<R>(
    buf: &mut gst::BufferRef,
    info: &VideoInfo,
    f: impl FnOnce(&mut Frame) -> anyhow::Result<R>,
) -> Result<R, String> {
    let (w, h, format) = layout(info)?;
    let mut vf = VideoFrameRef::from_buffer_ref_writable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
    let mut frame = if format.is_planar() {
        let strides = plane_strides(&vf)?;
        let [y, u, v, _] = vf.planes_data_mut();
        Frame::new_i420([y, u, v], w, h, strides)
    } else {
        let stride = mapped_stride(&vf)?;
        Frame::new(vf.plane_data_mut(0).map_err(|e| e.to_string())?, w, h, stride, format)
    }
    .map_err(|e| format!("{e:#}"))?;
    f(&mut frame).map_err(|e| format!("{e:#}"))
}

/// Posts a stream error on the bus (`{what}: {reason}`) and returns the flow error that
/// stops the stream: how every element reports a frame it could not process.
pub fn stream_failed<T: gst::subclass::prelude::ElementImpl>(imp: &T, what: &str, reason: String) -> gst::FlowError {
    use gst::subclass::prelude::ObjectSubclassExt;
    gst::element_imp_error!(imp, gst::StreamError::Failed, ["{what}: {reason}"]);
    gst::FlowError::Error
}

/// Element metadata and pad templates (the packed formats, or those `$templates` makes).
macro_rules! video_element {
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr) => {
        $crate::video::video_element!($ty, $long_name, $klass, $description, $crate::video::pad_templates);
    };
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr, $templates:path) => {
        impl gst::subclass::prelude::GstObjectImpl for $ty {}

        impl gst::subclass::prelude::ElementImpl for $ty {
            fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                static META: std::sync::LazyLock<gst::subclass::ElementMetadata> = std::sync::LazyLock::new(|| {
                    gst::subclass::ElementMetadata::new($long_name, $klass, $description, "faceenhance developers")
                });
                Some(&*META)
            }

            fn pad_templates() -> &'static [gst::PadTemplate] {
                static T: std::sync::LazyLock<Vec<gst::PadTemplate>> = std::sync::LazyLock::new($templates);
                T.as_ref()
            }
        }
    };
}
pub(crate) use video_element;

/// An in-place filter over the shared formats (or those `$templates` makes):
/// [`video_element!`] plus a `VideoFilterImpl` that records the negotiated info in the
/// element's `state: Mutex<State>`, whose `info` field is an `Option<VideoInfo>`.
macro_rules! in_place_video_filter {
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr) => {
        $crate::video::in_place_video_filter!($ty, $long_name, $klass, $description, $crate::video::pad_templates);
    };
    ($ty:ty, $long_name:expr, $klass:expr, $description:expr, $templates:path) => {
        $crate::video::video_element!($ty, $long_name, $klass, $description, $templates);

        impl gst_video::subclass::prelude::VideoFilterImpl for $ty {
            fn set_info(
                &self,
                _incaps: &gst::Caps,
                in_info: &gst_video::VideoInfo,
                _outcaps: &gst::Caps,
                _out_info: &gst_video::VideoInfo,
            ) -> Result<(), gst::LoggableError> {
                self.state.lock().unwrap().info = Some(in_info.clone());
                Ok(())
            }
        }
    };
}
pub(crate) use in_place_video_filter;

/// Caps `factor` times larger (towards the source pad) or smaller (towards the sink pad):
/// widths and heights, fixed, ranges or lists of either, are scaled. Enlarged ranges step
/// by the factor (only multiples have a counterpart); a fixed size that does not divide by
/// the factor has no counterpart: it leaves its list, and a structure left without a size
/// is dropped.
pub fn scale_caps(caps: &gst::Caps, factor: u32, up: bool) -> gst::Caps {
    let k = factor.max(1) as i32;
    let mut out = gst::Caps::new_empty();
    let out_mut = out.get_mut().expect("new caps are writable");
    for (s, features) in caps.iter_with_features() {
        let mut s = s.to_owned();
        let mut ok = true;
        for field in ["width", "height"] {
            let Ok(v) = s.value(field) else { continue };
            match scale_value(v, k, up) {
                Some(v) => s.set_value(field, v),
                None => ok = false,
            }
        }
        if ok {
            out_mut.append_structure_full(s, Some(features.to_owned()));
        }
    }
    out
}

/// One size value `k` times larger or smaller; None: nothing in it has a counterpart.
/// Values of other types are kept as they are.
fn scale_value(v: &gst::glib::SendValue, k: i32, up: bool) -> Option<gst::glib::SendValue> {
    use gst::prelude::*;
    if let Ok(n) = v.get::<i32>() {
        let n = if up { n.checked_mul(k)? } else { (n % k == 0).then_some(n / k)? };
        return Some(n.to_send_value());
    }
    if let Ok(r) = v.get::<gst::IntRange<i32>>() {
        let range = if up {
            let (lo, hi) = (r.min().max(1).min(i32::MAX / k), r.max().min(i32::MAX / k));
            if lo > hi {
                return None;
            }
            if k == 1 {
                gst::IntRange::new(lo, hi)
            } else {
                gst::IntRange::with_step(lo * k, hi * k, k)
            }
        } else {
            let (lo, hi) = ((r.min() + k - 1) / k, r.max() / k);
            if lo.max(1) > hi {
                return None;
            }
            gst::IntRange::new(lo.max(1), hi)
        };
        return Some(range.to_send_value());
    }
    if let Ok(list) = v.get::<gst::List>() {
        let mut items: Vec<gst::glib::SendValue> = list.iter().filter_map(|v| scale_value(v, k, up)).collect();
        return match items.len() {
            0 => None,
            1 => items.pop(),
            _ => Some(gst::List::from_values(items).to_send_value()),
        };
    }
    Some(v.clone())
}

/// Fixates `othercaps` (the other pad's possible caps) for an element whose output is
/// `factor` times its input: the size nearest to `caps`' size times `factor` (towards the
/// source pad, `up`) or divided by it, and the same format, then the rest as GStreamer
/// would.
pub fn fixate_scaled(caps: &gst::Caps, mut othercaps: gst::Caps, factor: u32, up: bool) -> gst::Caps {
    othercaps.truncate();
    let k = factor.max(1) as i32;
    if let (Some(known), Some(other)) = (caps.structure(0), othercaps.make_mut().structure_mut(0)) {
        for field in ["width", "height"] {
            if let Ok(n) = known.get::<i32>(field) {
                other.fixate_field_nearest_int(field, if up { n.saturating_mul(k) } else { n / k });
            }
        }
        if let Ok(format) = known.get::<&str>("format") {
            other.fixate_field_str("format", format);
        }
    }
    othercaps.fixate();
    othercaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    #[test]
    fn scale_caps_scales_lists_of_sizes_and_ranges() {
        // Compared as text: GStreamer's own caps equality trips over lists mixing values
        // and ranges (g_value_get_int on a range).
        let c = caps("video/x-raw, width=(int){ 64, 65, [ 10, 20 ] }, height=(int)[ 9, 31 ]");
        assert_eq!(
            scale_caps(&c, 2, true).to_string(),
            caps("video/x-raw, width=(int){ 128, 130, [ 20, 40, 2 ] }, height=(int)[ 18, 62, 2 ]").to_string()
        );
        // 65 has no half: it leaves the list.
        assert_eq!(
            scale_caps(&c, 2, false).to_string(),
            caps("video/x-raw, width=(int){ 32, [ 5, 10 ] }, height=(int)[ 5, 15 ]").to_string()
        );
        // Nothing divides: the structure goes, the next stays.
        let c = caps("video/x-raw, width=(int){ 63, 65 }, height=(int)64; video/x-raw, width=(int)66, height=(int)64");
        assert_eq!(
            scale_caps(&c, 2, false).to_string(),
            caps("video/x-raw, width=(int)33, height=(int)32").to_string()
        );
        // A single survivor is a plain value; an open range stays valid.
        let c = caps("video/x-raw, width=(int){ 63, 64 }, height=(int)[ 1, 2147483647 ]");
        assert_eq!(
            scale_caps(&c, 4, true).to_string(),
            caps("video/x-raw, width=(int){ 252, 256 }, height=(int)[ 4, 2147483644, 4 ]").to_string()
        );
        assert_eq!(
            scale_caps(&c, 2, false).to_string(),
            caps("video/x-raw, width=(int)32, height=(int)[ 1, 1073741823 ]").to_string()
        );
        assert_eq!(scale_caps(&c, 1, true).to_string(), c.to_string());
    }

    #[test]
    fn fixate_scaled_picks_the_scaled_size_and_the_same_format() {
        let input = caps("video/x-raw, format=(string)RGBx, width=(int)64, height=(int)48, framerate=(fraction)25/1");
        let other = caps(
            "video/x-raw, format=(string){ BGRx, RGBx }, width=(int)[ 1, 4000 ], height=(int)[ 1, 4000 ], \
             framerate=(fraction)[ 0/1, 100/1 ]; video/x-raw, format=(string)BGR, width=(int)1, height=(int)1",
        );
        let fixed = fixate_scaled(&input, other.clone(), 3, true);
        assert!(fixed.is_fixed());
        let s = fixed.structure(0).unwrap();
        assert_eq!((s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap()), (192, 144));
        assert_eq!(s.get::<&str>("format").unwrap(), "RGBx");
        let output = caps("video/x-raw, format=(string)BGRx, width=(int)192, height=(int)144");
        let s = fixate_scaled(&output, other, 3, false).structure(0).unwrap().to_owned();
        assert_eq!((s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap()), (64, 48));
        assert_eq!(s.get::<&str>("format").unwrap(), "BGRx");
    }
}
