//! The join: the finished segments, checked (every one done, each with the frames the
//! plan counted, the same stream headers), demuxed without decoding, their timestamps put
//! back on the source's timeline, and muxed with the source's audio into one file.

use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use gst::prelude::*;

use super::job::{Record, State};
use super::plan::Plan;
use super::probe::{discard, reader};
use super::work::video_path;
use crate::video::{bus_error, link_audio, make, muxer_for, progress_bar, start, NullOnDrop};

/// What `join` wrote: all segments' frames and faces, and their workers' summed time.
pub struct JoinOutcome {
    pub frames: u64,
    pub faces: u64,
    pub seconds: f64,
}

/// `faceenhance join DIR -o OUT`: the encoded segments in order, timestamps restored to
/// the source's, muxed with the source's audio (passed through where the container takes
/// it) without encoding the video again.
pub fn join(work: &Path, output: &Path, no_progress: bool) -> Result<JoinOutcome> {
    let plan = Plan::read(work)?;
    let states: Vec<State> = (0..plan.segments.len()).map(|i| State::read(work, i)).collect();
    let missing: Vec<String> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_done())
        .map(|(i, s)| match s.record() {
            None => format!("{i} (not started)"),
            // the word its record holds: a lost segment's says done
            Some(r) => format!("{i} ({:?} on {})", r.state, r.host).to_lowercase(),
        })
        .collect();
    ensure!(missing.is_empty(), "{}: segments not done: {}", work.display(), missing.join(", "));
    let records: Vec<Record> = states.iter().filter_map(State::record).cloned().collect();
    let short: Vec<String> = records
        .iter()
        .zip(&plan.segments)
        .filter(|(r, span)| r.frames != span.frames)
        .map(|(r, span)| format!("{} ({} of {} frames)", r.index, r.frames, span.frames))
        .collect();
    ensure!(short.is_empty(), "{}: segments whose frames differ from the plan's: {}", work.display(), short.join(", "));
    let records: Vec<Record> = records.into_iter().filter(|r| r.frames > 0).collect();
    ensure!(!records.is_empty(), "{}: no frames in any segment", work.display());

    let pipeline = gst::Pipeline::new();
    let video_in = gst_app::AppSrc::builder().format(gst::Format::Time).block(true).max_bytes(16 << 20).build();
    // a segment in the samples it is given (see `LEAD`)
    video_in.set_property("handle-segment-change", true);
    let parse = make("h264parse")?;
    let (mux, audio_encoder) = muxer_for(output)?;
    let tmp = output.with_extension(format!(
        "joining.{}",
        output.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default()
    ));
    let sink = gst::ElementFactory::make("filesink").property("location", tmp.to_string_lossy().as_ref()).build()?;
    pipeline.add_many([video_in.upcast_ref(), &parse, &mux, &sink])?;
    gst::Element::link_many([video_in.upcast_ref(), &parse, &mux, &sink])?;

    // audio from the source, once: decodebin stops at what the muxer takes as it is, and
    // at compressed video (not decoded, thrown away)
    let src =
        gst::ElementFactory::make("filesrc").property("location", plan.input.to_string_lossy().as_ref()).build()?;
    let decode = make("decodebin")?;
    let mut stop_caps = gst::Caps::builder("audio/x-raw").build();
    {
        let stop = stop_caps.get_mut().expect("fresh caps");
        if let Some(t) = mux.pad_template("audio_%u") {
            stop.append(t.caps().copy());
        }
        for v in
            ["video/x-h264", "video/x-h265", "video/mpeg", "video/x-vp8", "video/x-vp9", "video/x-av1", "image/jpeg"]
        {
            stop.append(gst::Caps::builder(v).build());
        }
        stop.append(gst::Caps::builder("video/x-raw").build());
    }
    decode.set_property("caps", &stop_caps);
    pipeline.add_many([&src, &decode])?;
    src.link(&decode)?;
    let (pipeline_weak, mux_weak) = (pipeline.downgrade(), mux.downgrade());
    decode.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(mux)) = (pipeline_weak.upgrade(), mux_weak.upgrade()) else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps.structure(0).map(|s| s.name().to_string()).unwrap_or_default();
        let result = if name.starts_with("audio/") {
            link_audio(&pipeline, &mux, pad, &caps, audio_encoder)
        } else {
            discard(&pipeline, pad)
        };
        if let Err(e) = result {
            gst::element_error!(pipeline, gst::StreamError::Failed, ["cannot link a {name} stream: {e:#}"]);
        }
    });

    let _stopped = NullOnDrop(pipeline.clone());
    start(&pipeline).context("cannot start the join")?;
    let total: u64 = records.iter().map(|r| r.frames).sum();
    let bar = progress_bar(no_progress);
    bar.set_length(total);
    let feeder = {
        let (work, records, video_in, bar) = (work.to_path_buf(), records.clone(), video_in.clone(), bar.clone());
        let shown_from = plan.shown_from_ns;
        std::thread::spawn(move || -> Result<u64> {
            let mut caps: Option<gst::Caps> = None;
            let mut pushed = 0u64;
            for rec in &records {
                let n = feed_segment(&video_path(&work, rec.index), rec, shown_from, &video_in, &mut caps, &bar)
                    .with_context(|| format!("segment {}", rec.index))?;
                ensure!(n == rec.frames, "segment {}: its file has {n} frames, its record {}", rec.index, rec.frames);
                pushed += n;
            }
            video_in.end_of_stream().map_err(|e| anyhow!("{e:?}"))?;
            Ok(pushed)
        })
    };
    let bus = pipeline.bus().unwrap();
    // until EOS, an error, or the reader gives up (then its error is the reason: the
    // muxer waits for frames that will not come)
    let mut feeder = Some(feeder);
    let mut fed: Option<Result<u64>> = None;
    let result = loop {
        if feeder.as_ref().is_some_and(|f| f.is_finished()) {
            let r = feeder.take().unwrap().join().unwrap_or_else(|_| Err(anyhow!("the segment reader panicked")));
            if r.is_err() {
                break r.map(|_| ());
            }
            fed = Some(r);
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else { continue };
        if let gst::MessageView::Eos(_) = msg.view() {
            break Ok(());
        }
        if let Some(e) = bus_error(&msg) {
            break Err(e);
        }
    };
    bar.finish_and_clear();
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(f) = feeder {
        fed = Some(f.join().unwrap_or_else(|_| Err(anyhow!("the segment reader panicked"))));
    }
    let joined = result
        .and(fed.unwrap_or_else(|| Err(anyhow!("the segment reader did not finish"))))
        .with_context(|| format!("joining {} into {}", work.display(), output.display()));
    let frames = match joined {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(JoinOutcome {
        frames,
        faces: records.iter().map(|r| r.faces).sum(),
        seconds: records.iter().map(|r| r.seconds).sum(),
    })
}

/// How much later than the source's the join carries its timestamps (an hour, as x264enc
/// does with 1000): room for decoding times before the first frame's presentation.
const LEAD: u64 = 3_600_000_000_000;

/// Reads one encoded segment (demuxed, not decoded) into the join's appsrc, shifting its
/// timestamps back onto the source's timeline.
fn feed_segment(
    path: &Path,
    rec: &Record,
    shown_from: u64,
    video_in: &gst_app::AppSrc,
    caps: &mut Option<gst::Caps>,
    bar: &indicatif::ProgressBar,
) -> Result<u64> {
    let (reader, sink, _, _) = reader(path, "qtdemux", |name| name.starts_with("video/"))?;
    let _stopped = NullOnDrop(reader.clone());
    start(&reader).with_context(|| format!("cannot read {}", path.display()))?;
    let bus = reader.bus().unwrap();
    let mut offset: Option<i128> = None;
    let mut n = 0u64;
    let result = loop {
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            break Err(bus_error(&msg).unwrap());
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            if sink.is_eos() {
                break Ok(());
            }
            continue;
        };
        let c = sample.caps().context("a segment sample without caps")?;
        // the demuxer may state a frame rate for one segment and not for another (it
        // guesses from the first frames); the stream headers must be the same
        let headers = |c: &gst::CapsRef| {
            let mut s = c.structure(0).map(|s| s.to_owned());
            if let Some(s) = s.as_mut() {
                s.remove_field("framerate");
            }
            s
        };
        match caps {
            None => {
                let c = c.to_owned();
                video_in.set_caps(Some(&c));
                *caps = Some(c);
            }
            Some(first) if headers(first) != headers(c) => {
                break Err(anyhow!("its stream parameters differ from the first segment's ({c} vs {first})"));
            }
            _ => {}
        }
        let mut buffer = sample.buffer_owned().context("sample without a buffer")?;
        let pts = buffer.pts().context("an encoded frame without a timestamp")?.nseconds() as i128;
        // the first packet is the segment's first key frame: its first frame in time
        let shift = *offset.get_or_insert(rec.first_pts_ns.unwrap_or(0) as i128 - pts);
        // With B-frames a frame is decoded before it is shown: the first frames' decoding
        // times lie before the first presentation time, below zero when that is zero.
        // Timestamps are carried `LEAD` later in a segment starting at `LEAD`, so running
        // times keep their true, possibly negative, values and the muxer writes them as an
        // edit list (clamping them at zero gave frames one decoding time, and the muxer
        // dropped them: issue 27's 273 of 275 frames).
        let at = |t: i128| gst::ClockTime::from_nseconds((t + shift + LEAD as i128).max(0) as u64);
        {
            let b = buffer.make_mut();
            b.set_pts(at(pts));
            if let Some(dts) = b.dts() {
                b.set_dts(at(dts.nseconds() as i128));
            }
        }
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(gst::ClockTime::from_nseconds(LEAD + shown_from));
        segment.set_time(gst::ClockTime::ZERO);
        let out = gst::Sample::builder().buffer(&buffer).caps(&c.to_owned()).segment(&segment).build();
        if let Err(e) = video_in.push_sample(&out) {
            break Err(anyhow!("the muxer stopped taking frames: {e:?}"));
        }
        n += 1;
        bar.inc(1);
    };
    let _ = reader.set_state(gst::State::Null);
    result.map(|_| n)
}
