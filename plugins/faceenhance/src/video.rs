//! Buffers <-> core frames: the formats the elements accept and the one mapping of a
//! GStreamer video buffer onto a [`faceenhance::Frame`].

use faceenhance::{Frame, PixelFormat};
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

fn layout(info: &VideoInfo) -> Result<(u32, u32, usize, PixelFormat), String> {
    let format = pixel_format(info.format()).ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
    Ok((info.width(), info.height(), info.stride()[0] as usize, format))
}

/// Runs `f` on a read-only view of `buf`.
pub fn with_frame<R>(
    buf: &gst::BufferRef,
    info: &VideoInfo,
    f: impl FnOnce(&Frame) -> anyhow::Result<R>,
) -> Result<R, String> {
    let (w, h, stride, format) = layout(info)?;
    let vf = VideoFrameRef::from_buffer_ref_readable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
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
    let (w, h, stride, format) = layout(info)?;
    let mut vf = VideoFrameRef::from_buffer_ref_writable(buf, info).map_err(|e| format!("cannot map buffer: {e}"))?;
    let data = vf.plane_data_mut(0).map_err(|e| e.to_string())?;
    let mut frame = Frame::new(data, w, h, stride, format).map_err(|e| format!("{e:#}"))?;
    f(&mut frame).map_err(|e| format!("{e:#}"))
}
