//! Reading a file without decoding it: the video packets' timestamps and key-frame flags
//! (the plan cuts on them), the stream's frame rate and where its shown time starts, and
//! whether its rate is variable; and the small readers the worker and the join build on
//! (the first video stream into an appsink, every other stream thrown away).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use gst::prelude::*;

use crate::video::{bus_error, make, start, NullOnDrop};

/// A container that gives its video packets no timestamps (AVI with MPEG-4 Part 2, as
/// avimux writes it): it cannot be cut frame-exactly, but it can be transcoded whole.
#[derive(Debug)]
pub struct NoTimestamps(pub usize);

impl std::fmt::Display for NoTimestamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "video packet {} has no timestamp: the container gives none, so it cannot be cut frame-exactly \
             (transcode it without --resume/--segment, or remux it into MP4 or MKV first)",
            self.0
        )
    }
}

impl std::error::Error for NoTimestamps {}

/// One compressed video packet as the demuxer gives it.
#[derive(Clone, Copy, Debug)]
pub struct Packet {
    pub pts: u64,
    pub key: bool,
}

/// A new pipeline reading `path` through `demuxer` (parsebin, decodebin, qtdemux) into an
/// appsink that gets the first video stream (see `first_video_to`, whose flags it returns).
#[allow(clippy::type_complexity)]
pub fn reader(
    path: &Path,
    demuxer: &str,
    is_video: fn(&str) -> bool,
) -> Result<(gst::Pipeline, gst_app::AppSink, Arc<Mutex<bool>>, Arc<AtomicBool>)> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc").property("location", path.to_string_lossy().as_ref()).build()?;
    let demux = make(demuxer)?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add_many([&src, &demux, sink.upcast_ref()])?;
    src.link(&demux)?;
    let (video, other_ended) = first_video_to(&pipeline, &demux, &sink, is_video);
    Ok((pipeline, sink, video, other_ended))
}

/// Links the first pad of `demux` whose media type `is_video` accepts to `sink`, and every
/// other pad to a fakesink of its own. Returns whether a video pad was linked (so far) and
/// whether a discarded stream has ended: a file without video ends there, while its
/// unlinked appsink would wait for ever.
fn first_video_to(
    pipeline: &gst::Pipeline,
    demux: &gst::Element,
    sink: &gst_app::AppSink,
    is_video: fn(&str) -> bool,
) -> (Arc<Mutex<bool>>, Arc<AtomicBool>) {
    let linked = Arc::new(Mutex::new(false));
    let ended = Arc::new(AtomicBool::new(false));
    let (found, other_ended) = (linked.clone(), ended.clone());
    let (pipeline_weak, sink_weak) = (pipeline.downgrade(), sink.downgrade());
    demux.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sink)) = (pipeline_weak.upgrade(), sink_weak.upgrade()) else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let video = caps.structure(0).is_some_and(|s| is_video(s.name().as_str()));
        let mut first = linked.lock().unwrap();
        let result = if video && !*first {
            *first = true;
            pad.link(&sink.static_pad("sink").unwrap()).map(|_| ()).map_err(|e| anyhow!("{e:?}"))
        } else {
            let ended = ended.clone();
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                    if ev.type_() == gst::EventType::Eos {
                        ended.store(true, Ordering::SeqCst);
                    }
                }
                gst::PadProbeReturn::Ok
            });
            discard(&pipeline, pad)
        };
        if let Err(e) = result {
            gst::element_error!(pipeline, gst::StreamError::Failed, ["cannot link a stream: {e:#}"]);
        }
    });
    (found, other_ended)
}

/// A stream nobody needs, into a fakesink of its own that takes no part in preroll: behind
/// parsebin one streaming thread feeds every stream, and a fakesink that prerolled on the
/// file's first audio packet would hold that thread while the video sink waits for its
/// first packet (a pipeline that never reaches PAUSED: issue 27's "no video packet").
pub fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
    let fake = gst::ElementFactory::make("fakesink").property("sync", false).property("async", false).build()?;
    pipeline.add(&fake)?;
    fake.sync_state_with_parent()?;
    pad.link(&fake.static_pad("sink").unwrap())?;
    Ok(())
}

/// Whether the intervals between frames (in presentation order) differ by more than 2 %
/// from one another: a variable frame rate.
pub fn variable_rate(packets: &[Packet]) -> bool {
    let mut pts: Vec<u64> = packets.iter().map(|p| p.pts).collect();
    pts.sort_unstable();
    let steps: Vec<u64> = pts.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0).collect();
    match (steps.iter().min(), steps.iter().max()) {
        (Some(&lo), Some(&hi)) => hi as f64 > lo as f64 * 1.02,
        _ => false,
    }
}

/// Timestamps and key-frame flags of the first video stream's packets, read without
/// decoding (parsebin: demuxer + parser), and the frame rate its caps first state (0/1:
/// none).
pub fn probe(input: &Path) -> Result<(Vec<Packet>, [i32; 2])> {
    probe_with_start(input).map(|(p, r, _)| (p, r))
}

/// [`probe`], and where the stream's shown time starts on its timestamps (its segment's
/// start: an MP4 edit list that hides B-frame delay, 0 for most files).
pub fn probe_with_start(input: &Path) -> Result<(Vec<Packet>, [i32; 2], u64)> {
    let (pipeline, sink, video, other_ended) =
        reader(input, "parsebin", |name| name.starts_with("video/") || name.starts_with("image/"))?;
    let _stopped = NullOnDrop(pipeline.clone());
    start(&pipeline).with_context(|| format!("{}", input.display()))?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    let mut packets = Vec::new();
    let mut framerate = None;
    let mut shown_from = 0u64;
    let mut last = Instant::now();
    let result = loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            last = Instant::now();
            if framerate.is_none() {
                let rate = sample.caps().and_then(|c| c.structure(0)?.get::<gst::Fraction>("framerate").ok());
                framerate = Some(rate.map_or([0, 1], |r| [r.numer(), r.denom()]));
                shown_from = sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>().and_then(|s| s.start()))
                    .map_or(0, |t| t.nseconds());
            }
            let buf = sample.buffer().context("sample without a buffer")?;
            let Some(pts) = buf.pts() else {
                break Err(anyhow::Error::new(NoTimestamps(packets.len())));
            };
            packets.push(Packet { pts: pts.nseconds(), key: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT) });
            continue;
        }
        // (an appsink that has not started reports EOS too)
        let linked = *video.lock().unwrap();
        if linked && sink.is_eos() {
            break Ok(());
        }
        if !linked && other_ended.load(Ordering::SeqCst) {
            break Err(anyhow!("it has no video stream"));
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            break Err(bus_error(&msg).unwrap());
        }
        if last.elapsed() > std::time::Duration::from_secs(30) {
            break Err(anyhow!("the demuxer gave no video packet and no end for 30 s"));
        }
    };
    pipeline.set_state(gst::State::Null)?;
    result.with_context(|| format!("reading the frames of {}", input.display()))?;
    Ok((packets, framerate.unwrap_or([0, 1]), shown_from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(pts_key: &[(u64, bool)]) -> Vec<Packet> {
        pts_key.iter().map(|&(pts, key)| Packet { pts, key }).collect()
    }

    #[test]
    fn a_variable_frame_rate_is_told_from_a_constant_one() {
        let cfr = packets(&(0..50).map(|i| (i * 33_366_666 + (i % 3), i % 10 == 0)).collect::<Vec<_>>());
        assert!(!variable_rate(&cfr));
        let mut vfr: Vec<(u64, bool)> = (0..30).map(|i| (i * 40, false)).collect();
        vfr.extend((0..30).map(|i| (1200 + i * 100, false)));
        assert!(variable_rate(&packets(&vfr)));
    }
}
