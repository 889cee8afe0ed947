//! One worker on one segment: takes it (see `job`), decodes the input from the key frame
//! at the segment's start, passes exactly the segment's frames (by presentation time)
//! through the chain of `faceenhance video` into `seg-NNNN.part.mp4`, and records the
//! outcome.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, ensure, Context, Result};
use gst::prelude::*;

use super::job::{Record, State, Taken};
use super::plan::{Plan, Span};
use super::probe::reader;
use crate::video::{bus_error, first_error, make, progress_bar, NullOnDrop, Tally, VideoArgs};

/// Enhances one segment into the work folder (done again if an earlier try did not
/// finish; kept if it did).
pub fn run_segment(args: &VideoArgs, work: &Path, plan: &Plan, index: usize, stop: &AtomicBool) -> Result<Record> {
    let span = plan.segments[index].clone();
    let mut claim = match State::take(work, index, span.frames)? {
        Taken::Done(rec) => return Ok(rec),
        Taken::Claimed(claim) => claim,
    };
    let part = claim.part();
    let result =
        if span.frames == 0 { Ok(()) } else { encode_span(args, plan, &span, &part, claim.record_mut(), stop) };
    match result {
        Ok(()) => claim.finish(),
        Err(e) => {
            claim.fail(&e, stop.load(Ordering::SeqCst))?;
            Err(e.context(format!("segment {index} of {}", plan.input.display())))
        }
    }
}

/// Decodes the input from the key frame at the span's start, passes the span's frames
/// (by presentation timestamp) through the enhancement chain into `seg-NNNN.part.mp4`.
fn encode_span(
    args: &VideoArgs,
    plan: &Plan,
    span: &Span,
    part: &Path,
    rec: &mut Record,
    stop: &AtomicBool,
) -> Result<()> {
    // reading side: filesrc ! decodebin ! appsink (first video stream; the rest discarded)
    let (reader, frames_out, video, _) = reader(&plan.input, "decodebin", |name| name == "video/x-raw")?;
    let _reader_stopped = NullOnDrop(reader.clone());
    frames_out.set_max_buffers(4);

    // writing side: appsrc ! <the chain of `faceenhance video`> ! mp4mux ! filesink
    let writer = gst::Pipeline::new();
    let _writer_stopped = NullOnDrop(writer.clone());
    let frames_in = gst_app::AppSrc::builder().format(gst::Format::Time).block(true).max_bytes(64 << 20).build();
    let mux = make("mp4mux")?;
    let sink = gst::ElementFactory::make("filesink").property("location", part.to_string_lossy().as_ref()).build()?;
    writer.add_many([frames_in.upcast_ref(), &mux, &sink])?;
    mux.link(&sink)?;
    let rate = gst::Fraction::new(plan.framerate[0], plan.framerate[1]);
    let (chain_in, encoded) = crate::video::video_chain(&writer, args, &mux, Some(rate), plan.variable_rate)?;
    frames_in.link(&chain_in)?;

    let fail = |p: &gst::Pipeline, what: &str| first_error(p).unwrap_or_else(|| anyhow!("cannot start the {what}"));
    writer.set_state(gst::State::Playing).map_err(|_| fail(&writer, "encoder"))?;
    reader.set_state(gst::State::Paused).map_err(|_| fail(&reader, "decoder"))?;
    let (ok, _, _) = reader.state(gst::ClockTime::from_seconds(60));
    ok.map_err(|_| fail(&reader, "decoder"))?;
    if let Some(start) = span.start_ns {
        // the key frame at `start` or one before it: frames before `start` are dropped below
        reader
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE,
                gst::ClockTime::from_nseconds(start),
            )
            .context("seeking to the segment's key frame")?;
        reader.state(gst::ClockTime::from_seconds(60)).0.map_err(|_| fail(&reader, "decoder"))?;
    }
    reader.set_state(gst::State::Playing).map_err(|_| fail(&reader, "decoder"))?;

    let bar = progress_bar(args.no_progress);
    bar.set_length(span.frames);
    let (reader_bus, writer_bus) = (reader.bus().unwrap(), writer.bus().unwrap());
    let mut tally = Tally::default();
    let mut caps: Option<gst::Caps> = None;
    let poll = |tally: &mut Tally| -> Result<()> {
        while let Some(msg) = reader_bus.pop() {
            if let Some(e) = bus_error(&msg) {
                return Err(e.context("decoding"));
            }
        }
        while let Some(msg) = writer_bus.pop() {
            if let Some(e) = bus_error(&msg) {
                return Err(e.context("enhancing and encoding"));
            }
            tally.take(&msg);
        }
        Ok(())
    };
    let result = (|| -> Result<()> {
        loop {
            ensure!(!stop.load(Ordering::SeqCst), "stopped (Ctrl-C)");
            poll(&mut tally)?;
            let Some(sample) = frames_out.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
                if *video.lock().unwrap() && frames_out.is_eos() {
                    break;
                }
                continue;
            };
            let buffer = sample.buffer_owned().context("sample without a buffer")?;
            let pts = buffer.pts().context("a decoded frame without a timestamp")?.nseconds();
            if span.start_ns.is_some_and(|s| pts < s) {
                continue;
            }
            if span.end_ns.is_some_and(|e| pts >= e) {
                break;
            }
            if rec.first_pts_ns.is_none() {
                if let Some(s) = span.start_ns {
                    ensure!(
                        pts == s,
                        "the first frame after seeking is at {pts} ns, the segment starts at {s} ns: \
                         the input's index is not exact, run it in one piece"
                    );
                }
                rec.first_pts_ns = Some(pts);
            }
            if let Some(c) = sample.caps().filter(|c| caps.as_deref() != Some(*c)) {
                let c = c.to_owned();
                frames_in.set_caps(Some(&c));
                caps = Some(c);
            }
            frames_in.push_buffer(buffer).map_err(|e| anyhow!("the encoder stopped taking frames: {e:?}"))?;
            rec.last_pts_ns = Some(rec.last_pts_ns.map_or(pts, |l| l.max(pts)));
            rec.frames += 1;
            bar.set_position(rec.frames);
        }
        frames_in.end_of_stream().map_err(|e| anyhow!("end of stream: {e:?}"))?;
        reader.set_state(gst::State::Null)?;
        loop {
            ensure!(!stop.load(Ordering::SeqCst), "stopped (Ctrl-C)");
            let Some(msg) = writer_bus.timed_pop(gst::ClockTime::from_mseconds(200)) else { continue };
            if let gst::MessageView::Eos(_) = msg.view() {
                break;
            }
            if let Some(e) = bus_error(&msg) {
                return Err(e.context("enhancing and encoding"));
            }
            tally.take(&msg);
        }
        Ok(())
    })();
    bar.finish_and_clear();
    let _ = reader.set_state(gst::State::Null);
    let _ = writer.set_state(gst::State::Null);
    rec.faces = tally.faces;
    result?;
    let written = encoded.load(Ordering::Relaxed);
    ensure!(written == rec.frames, "{} frames went in, the encoder took {written}", rec.frames);
    // a segment that decoded more or fewer frames than the plan counted packets would
    // leave a gap or a double in the joined file: failed, never done
    ensure!(
        rec.frames == span.frames,
        "segment {}: the decoder gave {} frames where the file has {} video packets",
        span.index,
        rec.frames,
        span.frames
    );
    Ok(())
}
