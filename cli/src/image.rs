//! Still images through the same elements as videos (`appsrc ! faceenhance ! videoconvert
//! ! appsink`, one frame), and pictures side by side.

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use gst::prelude::*;
use gst_video::prelude::*;
use opencv::core::{Mat, Point, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{core, imgcodecs, imgproc};

use faceenhance::frame::{Frame, PixelFormat};

use crate::options::{self, EnhanceOpts};
use crate::video::{bus_error, make, start, Tally};

/// One picture (packed BGR) through a `faceenhance` bin set up by `opts`: the enhanced
/// picture (`upscale` times larger) and what the elements reported (with
/// `measure_identity`, how far each restoration moved its face's identity).
pub fn enhance(opts: &EnhanceOpts, picture: &Mat, measure_identity: bool) -> Result<(Mat, Tally)> {
    let (w, h) = (picture.cols() as u32, picture.rows() as u32);
    ensure!(picture.typ() == core::CV_8UC3, "a packed BGR picture is expected");
    let info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgr, w, h).fps(gst::Fraction::new(25, 1)).build()?;
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder().caps(&info.to_caps()?).format(gst::Format::Time).build();
    let enhancer = options::element()?;
    opts.apply(&enhancer)?;
    if measure_identity {
        enhancer.set_property("measure-identity", true);
    }
    let convert = make("videoconvert")?;
    let bgr = gst::Caps::builder("video/x-raw").field("format", "BGR").build();
    // wait-on-eos off: the picture is pulled once the bus says the stream is done.
    let sink = gst_app::AppSink::builder().caps(&bgr).sync(false).wait_on_eos(false).build();
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast(), enhancer];
    chain.extend(opts.edit_element()?);
    chain.extend([convert, sink.clone().upcast()]);
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;

    // The picture into a buffer laid out as GStreamer lays out BGR (rows padded to 4 bytes).
    let mut buffer = gst::Buffer::with_size(info.size())?;
    {
        let buf = buffer.get_mut().expect("fresh buffer");
        buf.set_pts(gst::ClockTime::ZERO);
        buf.set_duration(gst::ClockTime::from_mseconds(40));
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &info).map_err(|_| anyhow!("map"))?;
        let stride = frame.plane_stride()[0] as usize;
        let mut view = Frame::new(frame.plane_data_mut(0)?, w, h, stride, PixelFormat::Bgr)?;
        picture.copy_to(&mut view.mat_mut()?)?;
    }
    start(&pipeline)?;
    let pushed = src.push_buffer(buffer).map(|_| ()).map_err(|e| anyhow!("{e:?}"));
    let _ = src.end_of_stream();
    let bus = pipeline.bus().expect("pipelines have a bus");
    let mut tally = Tally::default();
    let outcome = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(600)) else {
            break Err(anyhow!("no result within 10 minutes"));
        };
        if let gst::MessageView::Eos(_) = msg.view() {
            break pushed;
        }
        if let Some(e) = bus_error(&msg) {
            break Err(e);
        }
        tally.take(&msg);
    };
    let sample = outcome.and_then(|_| sink.try_pull_sample(gst::ClockTime::ZERO).context("no picture came out"));
    pipeline.set_state(gst::State::Null)?;
    let sample = sample?;
    let out_info = gst_video::VideoInfo::from_caps(sample.caps().context("caps")?)?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().context("buffer")?, &out_info)
        .map_err(|_| anyhow!("map"))?;
    ensure!(out_info.format() == gst_video::VideoFormat::Bgr, "{:?} out", out_info.format());
    let stride = frame.plane_stride()[0] as usize;
    let view =
        Frame::new_readonly(frame.plane_data(0)?, out_info.width(), out_info.height(), stride, PixelFormat::Bgr)?;
    // A packed copy: the view has the buffer's padded rows.
    let out = view.mat()?.try_clone()?;
    Ok((out, tally))
}

pub fn read(path: &Path) -> Result<Mat> {
    let m = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR)?;
    if m.empty() {
        bail!("{}: not an image OpenCV can read", path.display());
    }
    Ok(m)
}

pub fn write(path: &Path, m: &Mat) -> Result<()> {
    if !imgcodecs::imwrite(path, m, &Vector::new())? {
        bail!("{}: could not write", path.display());
    }
    Ok(())
}

pub fn side_by_side(left: &Mat, right: &Mat, scale: i32) -> Result<Mat> {
    let mut r = Mat::default();
    let h = left.rows();
    let w = (right.cols() as f64 * h as f64 / right.rows() as f64).round() as i32;
    imgproc::resize(right, &mut r, Size::new(w.max(1), h), 0.0, 0.0, imgproc::INTER_CUBIC)?;
    let mut both = Mat::default();
    let pair: Vector<Mat> = Vector::from_iter([left.clone(), r]);
    core::hconcat(&pair, &mut both)?;
    let mut out = Mat::default();
    let s = scale.max(1);
    imgproc::resize(&both, &mut out, Size::new(both.cols() * s, both.rows() * s), 0.0, 0.0, imgproc::INTER_NEAREST)?;
    for (text, x) in [("input", 4), ("faceenhance", left.cols() * s + 4)] {
        let org = Point::new(x, 14);
        // Dark outline, then white: readable on any background.
        for (shade, thickness) in [(0.0, 3), (255.0, 1)] {
            let (font, colour) = (imgproc::FONT_HERSHEY_SIMPLEX, Scalar::all(shade));
            imgproc::put_text(&mut out, text, org, font, 0.45, colour, thickness, imgproc::LINE_AA, false)?;
        }
    }
    Ok(out)
}
