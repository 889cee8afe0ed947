//! Archives at scale: a video is cut into key-frame-aligned segments in a work folder, each
//! segment is enhanced and encoded on its own (one process, or one task of a cluster array
//! job), and `join` puts the encoded segments together without encoding them again, with
//! the source's audio.
//!
//! Frame-exact by construction: the plan lists the presentation times of the video's key
//! frames, and segment `k` owns exactly the decoded frames whose timestamp lies in
//! `[start_k, start_k+1)`. Its worker seeks to the key frame at `start_k` (or before it),
//! drops what comes earlier (an open GOP's leading B-frames belong to the segment before),
//! and stops at the first frame of the next segment, in presentation order, so B-frames
//! and variable frame rates need nothing special. The work folder holds `plan.json`, one
//! `seg-NNNN.mp4` per finished segment (written as `.part` and renamed, so a killed worker
//! leaves nothing that looks finished) and `seg-NNNN.json`, the segment's record (state,
//! host, frames, faces, timing) that `faceenhance status` prints.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use clap::Args;
use gst::prelude::*;
use serde::{Deserialize, Serialize};

use crate::video::{
    bus_error, first_error, link_audio, make, muxer_for, progress_bar, start, transcode, NullOnDrop, Tally, VideoArgs,
};

/// The options of `faceenhance video` that split the work.
#[derive(Args, Clone, Debug)]
pub struct SegmentArgs {
    /// Work in key-frame-aligned segments in a work folder (OUTPUT.work/, or --work) and
    /// pick up where an earlier run stopped: finished segments are kept, only unfinished
    /// ones are done again. Once the output is written, the files the job made are removed,
    /// and the folder too if faceenhance created it. An existing --work must be empty or
    /// a faceenhance work folder: any other folder is refused.
    #[arg(long)]
    pub resume: bool,
    /// Work folder of a segmented run (shared storage for a cluster).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Enhance only segment K (0-based) of N into --work, e.g. one task of an array job;
    /// `faceenhance join DIR -o OUT` puts the segments together.
    #[arg(long, value_name = "K/N", requires = "work", conflicts_with = "output")]
    pub segment: Option<Part>,
    /// With --resume: keep the work folder (segments and records) after the output is written.
    #[arg(long)]
    pub keep_work: bool,
    /// Length of a segment with --resume, in seconds of video (cut at the nearest key frame).
    #[arg(long, default_value_t = 60.0)]
    pub segment_seconds: f64,
    /// A list of inputs, one per line: `INPUT` or `INPUT<TAB>OUTPUT` (`#` starts a comment).
    /// Each output gets OUTPUT.json beside it: what was done. Outputs with a finished record
    /// are skipped, so a shard can be run again after a failure.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "output", "segment"])]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only the lines whose index (0-based, counting inputs) is K modulo N.
    #[arg(long, value_name = "K/N", requires = "manifest")]
    pub shard: Option<Part>,
    /// With --manifest: folder for the outputs of lines that name none (INPUT's stem + .mp4).
    #[arg(long, value_name = "DIR", requires = "manifest")]
    pub out_dir: Option<PathBuf>,
}

/// `K/N`: the K-th (0-based) of N parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub k: usize,
    pub n: usize,
}

impl FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("'{s}' is not K/N"))?;
        let k: usize = k.trim().parse().map_err(|_| format!("'{s}': K is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| format!("'{s}': N is not a number"))?;
        if n == 0 || k >= n {
            return Err(format!("'{s}': K must be in 0..N (0-based) and N at least 1"));
        }
        Ok(Part { k, n })
    }
}

/// `faceenhance video` by its options: a manifest shard, one segment, a resumable run or
/// a plain one-pipeline transcode.
pub fn dispatch(args: &VideoArgs, stop: &AtomicBool) -> Result<()> {
    let s = &args.segments;
    if let Some(manifest) = &s.manifest {
        return run_manifest(args, manifest, stop);
    }
    let input = args.input.as_deref().context("an input is required")?;
    if let Some(part) = s.segment {
        let work = s.work.as_deref().context("--segment needs --work")?;
        ensure!(args.faces.is_none(), "--faces needs the whole video in one run (not --segment)");
        let plan = Plan::open_or_make(work, input, Parts::Count(part.n), &settings(args)?)?;
        let rec = run_segment(args, work, &plan, part.k, stop)?;
        println!("{}", rec.summary());
        return Ok(());
    }
    let output = args.output.as_deref().context("--output is required")?;
    if s.resume || s.work.is_some() {
        run_resumable(args, input, output, stop)?;
    } else {
        transcode(args, input, output, stop)?;
    }
    Ok(())
}

/// The options that change the pixels or the encoding: segments made with other settings
/// must not be joined, so the plan keeps them and every worker compares. How a worker
/// runs (its thread count, GPU number, engine cache) may differ from node to node.
fn settings(args: &VideoArgs) -> Result<String> {
    Ok(format!(
        "{} quality={} chroma={:?} compare={:?}",
        args.opts.settings()?,
        args.quality,
        args.chroma,
        args.compare
    ))
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Writes JSON through a temporary file and a rename: readers (other workers, `status`)
/// never see half a file, and a killed writer leaves the old one.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not a faceenhance work file", path.display()))
}

/// Marks a faceenhance work folder. Its text starts with "created" when faceenhance (or
/// its Slurm script) made the folder, "adopted" when the user gave an empty one: only a
/// created folder is ever removed.
const CREATED_MARKER: &str = ".faceenhance-work";

fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

/// A work folder is ours or refused: one that does not exist is created and marked; an
/// existing one must be empty or hold a faceenhance plan (or our marker). Any other folder
/// (`--work ~/Videos`) is the user's, and nothing is written into it.
fn claim_work_folder(work: &Path) -> Result<()> {
    match std::fs::create_dir(work) {
        Ok(()) => {
            std::fs::write(work.join(CREATED_MARKER), b"created by faceenhance; removed with the folder\n")
                .with_context(|| format!("writing into {}", work.display()))?;
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // a missing parent: make the parents, then the folder itself as ours
            let parent = work.parent().filter(|p| !p.as_os_str().is_empty()).context("--work has no parent")?;
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            return claim_work_folder(work);
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", work.display())),
    }
    ensure!(work.is_dir(), "{} exists and is not a folder: use another --work", work.display());
    if Plan::path(work).is_file() || work.join(CREATED_MARKER).is_file() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(work).with_context(|| format!("reading {}", work.display()))?;
    ensure!(
        entries.next().is_none(),
        "{} is not a faceenhance work folder (it has files and no plan.json): refusing to use it; \
         give --work a new or empty folder",
        work.display()
    );
    // the user's empty folder: ours to work in, not to remove
    std::fs::write(work.join(CREATED_MARKER), b"adopted by faceenhance: the user's folder, never removed\n")
        .with_context(|| format!("writing into {}", work.display()))?;
    Ok(())
}

/// Removes what a job wrote into its work folder (plan, segments, records, leases,
/// temporaries), and the folder itself only when faceenhance created it and nothing else
/// is left in it. Never recursive: a file the job did not make stays.
pub fn remove_work(work: &Path) -> Result<()> {
    let ours = |name: &str| {
        name == "plan.json"
            || name == CREATED_MARKER
            || (name.starts_with("seg-")
                && (name.ends_with(".mp4") || name.ends_with(".json") || name.ends_with(".lease")))
            || name.contains(".json.tmp")
    };
    let created = std::fs::read(work.join(CREATED_MARKER)).is_ok_and(|t| t.starts_with(b"created"));
    for e in std::fs::read_dir(work).with_context(|| format!("reading {}", work.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type()?.is_file() && ours(&name) && name != CREATED_MARKER {
            std::fs::remove_file(e.path()).with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    if created {
        let left: Vec<String> = std::fs::read_dir(work)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != CREATED_MARKER)
            .collect();
        if left.is_empty() {
            std::fs::remove_file(work.join(CREATED_MARKER))?;
            std::fs::remove_dir(work).with_context(|| format!("removing {}", work.display()))?;
        } else {
            eprintln!("{}: kept, it holds files faceenhance did not make: {}", work.display(), left.join(", "));
        }
    } else {
        let _ = std::fs::remove_file(work.join(CREATED_MARKER));
    }
    Ok(())
}

/// How a new plan cuts the video.
#[derive(Clone, Copy, Debug)]
pub enum Parts {
    /// Into this many segments (`--segment K/N`: every worker must agree on N).
    Count(usize),
    /// Into segments of about this many seconds (`--resume`).
    Seconds(f64),
}

/// One segment of the plan: frames with `start_ns <= pts < end_ns` (`None`: open end).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Span {
    pub index: usize,
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    /// Video packets with a timestamp in the span (the frames the segment must write).
    pub frames: u64,
}

/// How a video is cut: written once into the work folder, read by every worker and `join`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub version: u32,
    pub input: PathBuf,
    pub input_bytes: u64,
    /// The input's modification time (seconds since 1970) when the plan was made: a file
    /// replaced by another of the same size is not the same input.
    #[serde(default)]
    pub input_mtime: Option<u64>,
    pub settings: String,
    pub frames: u64,
    pub key_frames: u64,
    pub first_pts_ns: u64,
    pub last_pts_ns: u64,
    /// The stream's frame rate as its container first states it: every segment's encoder
    /// is given this one, so all segments share their stream headers.
    pub framerate: [i32; 2],
    /// Where the source's shown time starts on its timestamps (its video segment's start,
    /// e.g. an MP4 edit list hiding B-frame delay): the join starts there too, so the joined
    /// video keeps the source's place against its audio.
    #[serde(default)]
    pub shown_from_ns: u64,
    /// The frame interval changes (see `variable_rate`): encoded without B-frames.
    pub variable_rate: bool,
    pub segments: Vec<Span>,
}

impl Plan {
    fn path(work: &Path) -> PathBuf {
        work.join("plan.json")
    }

    /// The work folder's plan, checked against this input, segment count and settings;
    /// or a new one (the same for every worker that makes it: written atomically, so two
    /// workers starting at once agree). `parts`: a fixed count, or segments of about this
    /// many seconds (then an existing plan's count is taken as it is).
    pub fn open_or_make(work: &Path, input: &Path, parts: Parts, settings: &str) -> Result<Plan> {
        let input = std::fs::canonicalize(input).with_context(|| format!("{}: no such file", input.display()))?;
        let meta = std::fs::metadata(&input)?;
        let bytes = meta.len();
        let mtime = mtime_of(&meta);
        let path = Plan::path(work);
        claim_work_folder(work)?;
        if path.is_file() {
            let plan: Plan = read_json(&path)?;
            ensure!(
                plan.input == input
                    && plan.input_bytes == bytes
                    && (plan.input_mtime.is_none() || plan.input_mtime == mtime),
                "{} belongs to {} ({} bytes), not {} ({bytes} bytes): use another --work",
                work.display(),
                plan.input.display(),
                plan.input_bytes,
                input.display()
            );
            if let Parts::Count(n) = parts {
                ensure!(
                    plan.segments.len() == n,
                    "{} is cut into {} segments, not {n}",
                    work.display(),
                    plan.segments.len()
                );
            }
            ensure!(
                plan.settings == settings,
                "{} was made with other settings:\n  {}\nnot\n  {settings}\n(use the same options, or another --work)",
                work.display(),
                plan.settings
            );
            return Ok(plan);
        }
        let (packets, framerate, shown_from) = probe_with_start(&input)?;
        let n = match parts {
            Parts::Count(n) => n,
            Parts::Seconds(secs) => {
                let first = packets.iter().map(|p| p.pts).min().unwrap_or(0);
                let last = packets.iter().map(|p| p.pts).max().unwrap_or(0);
                (((last - first) as f64 / 1e9 / secs).ceil() as usize).max(1)
            }
        };
        let mut plan = Plan::cut(&input, bytes, settings, &packets, framerate, n)?;
        plan.input_mtime = mtime;
        plan.shown_from_ns = shown_from;
        write_json(&path, &plan)?;
        Ok(plan)
    }

    /// Cuts at the key frames nearest to N equal parts of the video's time span; with
    /// fewer key frames than cuts, the last segments are empty.
    pub fn cut(
        input: &Path,
        bytes: u64,
        settings: &str,
        packets: &[Packet],
        framerate: [i32; 2],
        n: usize,
    ) -> Result<Plan> {
        ensure!(!packets.is_empty(), "{}: no video frames", input.display());
        let first = packets.iter().map(|p| p.pts).min().unwrap();
        let last = packets.iter().map(|p| p.pts).max().unwrap();
        let mut keys: Vec<u64> = packets.iter().filter(|p| p.key && p.pts > first).map(|p| p.pts).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut cuts: Vec<u64> = Vec::new();
        let span = (last - first) as f64;
        for i in 1..n {
            let target = first as f64 + span * i as f64 / n as f64;
            let after = cuts.last().copied().unwrap_or(first);
            let best = keys
                .iter()
                .copied()
                .filter(|&k| k > after)
                .min_by(|a, b| (*a as f64 - target).abs().total_cmp(&(*b as f64 - target).abs()));
            match best {
                Some(k) => cuts.push(k),
                None => break,
            }
        }
        let mut segments = Vec::with_capacity(n);
        for index in 0..n {
            let start = if index == 0 { None } else { cuts.get(index - 1).copied() };
            let end = cuts.get(index).copied();
            // a segment past the last cut (too few key frames) is empty
            let empty = index > 0 && start.is_none();
            let frames = if empty {
                0
            } else {
                packets.iter().filter(|p| start.is_none_or(|s| p.pts >= s) && end.is_none_or(|e| p.pts < e)).count()
                    as u64
            };
            let (start_ns, end_ns) = if empty { (Some(last + 1), Some(last + 1)) } else { (start, end) };
            segments.push(Span { index, start_ns, end_ns, frames });
        }
        Ok(Plan {
            version: 1,
            input: input.to_path_buf(),
            input_bytes: bytes,
            input_mtime: None,
            shown_from_ns: 0,
            settings: settings.to_string(),
            frames: packets.len() as u64,
            key_frames: packets.iter().filter(|p| p.key).count() as u64,
            first_pts_ns: first,
            last_pts_ns: last,
            framerate,
            variable_rate: variable_rate(packets),
            segments,
        })
    }
}

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
fn reader(
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
fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<()> {
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

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Done,
    Failed,
    Stopped,
}

/// What one worker did with one segment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub index: usize,
    pub state: State,
    pub host: String,
    pub pid: u32,
    pub started_unix: u64,
    pub finished_unix: Option<u64>,
    pub seconds: f64,
    pub frames: u64,
    pub expected_frames: u64,
    pub faces: u64,
    pub first_pts_ns: Option<u64>,
    pub last_pts_ns: Option<u64>,
    pub bytes: u64,
    pub error: Option<String>,
}

impl Record {
    fn path(work: &Path, index: usize) -> PathBuf {
        work.join(format!("seg-{index:04}.json"))
    }
    fn video(work: &Path, index: usize) -> PathBuf {
        work.join(format!("seg-{index:04}.mp4"))
    }
    fn part(work: &Path, index: usize) -> PathBuf {
        work.join(format!("seg-{index:04}.part.mp4"))
    }
    pub fn load(work: &Path, index: usize) -> Option<Record> {
        read_json(&Record::path(work, index)).ok()
    }
    /// Finished and its video is there, whole.
    pub fn is_done(&self, work: &Path) -> bool {
        self.state == State::Done
            && (self.frames == 0
                || std::fs::metadata(Record::video(work, self.index)).is_ok_and(|m| m.len() == self.bytes))
    }
    fn summary(&self) -> String {
        format!(
            "segment {}: {:?}, {} of {} frames, {} faces, {:.1} s ({:.1} fps) on {}",
            self.index,
            self.state,
            self.frames,
            self.expected_frames,
            self.faces,
            self.seconds,
            self.frames as f64 / self.seconds.max(1e-3),
            self.host
        )
    }
}

/// Enhances one segment into the work folder (done again if an earlier try did not
/// finish; kept if it did).
pub fn run_segment(args: &VideoArgs, work: &Path, plan: &Plan, index: usize, stop: &AtomicBool) -> Result<Record> {
    if let Some(rec) = Record::load(work, index).filter(|r| r.is_done(work)) {
        return Ok(rec);
    }
    let _lease = Lease::take(work, index)?;
    // a worker that held the lease may have finished while this one waited to take it
    if let Some(rec) = Record::load(work, index).filter(|r| r.is_done(work)) {
        return Ok(rec);
    }
    let span = plan.segments[index].clone();
    let mut rec = Record {
        index,
        state: State::Running,
        host: hostname(),
        pid: std::process::id(),
        started_unix: now_unix(),
        finished_unix: None,
        seconds: 0.0,
        frames: 0,
        expected_frames: span.frames,
        faces: 0,
        first_pts_ns: None,
        last_pts_ns: None,
        bytes: 0,
        error: None,
    };
    write_json(&Record::path(work, index), &rec)?;
    let started = Instant::now();
    let result = if span.frames == 0 { Ok(()) } else { encode_span(args, plan, &span, work, &mut rec, stop) };
    rec.seconds = started.elapsed().as_secs_f64();
    rec.finished_unix = Some(now_unix());
    match result {
        Ok(()) => {
            if span.frames > 0 {
                std::fs::rename(Record::part(work, index), Record::video(work, index))?;
                rec.bytes = std::fs::metadata(Record::video(work, index))?.len();
            }
            rec.state = State::Done;
            write_json(&Record::path(work, index), &rec)?;
            Ok(rec)
        }
        Err(e) => {
            rec.state = if stop.load(Ordering::SeqCst) { State::Stopped } else { State::Failed };
            rec.error = Some(format!("{e:#}"));
            let _ = std::fs::remove_file(Record::part(work, index));
            write_json(&Record::path(work, index), &rec)?;
            Err(e.context(format!("segment {index} of {}", plan.input.display())))
        }
    }
}

/// Who works on a segment: `seg-NNNN.lease` (host, pid, time), made with create-new so two
/// workers cannot both take it, refreshed every `LEASE_BEAT` while the worker lives and
/// removed when it is done. A lease whose holder is gone (a dead pid on this host, or no
/// refresh for `LEASE_STALE` from another host) is taken over.
pub struct Lease {
    path: PathBuf,
    beat: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

#[derive(Serialize, Deserialize)]
struct LeaseHolder {
    host: String,
    pid: u32,
    since_unix: u64,
}

const LEASE_BEAT: std::time::Duration = std::time::Duration::from_secs(20);
/// A lease not refreshed for this long is stale (a worker on another host died or lost
/// the shared storage). `FACEENHANCE_LEASE_STALE_S` overrides it (tests).
fn lease_stale() -> std::time::Duration {
    let s = std::env::var("FACEENHANCE_LEASE_STALE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    std::time::Duration::from_secs(s)
}

impl Lease {
    fn path(work: &Path, index: usize) -> PathBuf {
        work.join(format!("seg-{index:04}.lease"))
    }

    pub fn take(work: &Path, index: usize) -> Result<Lease> {
        let path = Lease::path(work, index);
        let me = LeaseHolder { host: hostname(), pid: std::process::id(), since_unix: now_unix() };
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => {
                    serde_json::to_writer(f, &me)?;
                    let (alive, p) = (Arc::new(AtomicBool::new(true)), path.clone());
                    let flag = alive.clone();
                    let beat = std::thread::spawn(move || {
                        let mut last = Instant::now();
                        while flag.load(Ordering::SeqCst) {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            if last.elapsed() >= LEASE_BEAT {
                                // a new modification time says the holder lives
                                let _ = std::fs::File::options()
                                    .append(true)
                                    .open(&p)
                                    .and_then(|f| f.set_modified(SystemTime::now()));
                                last = Instant::now();
                            }
                        }
                    });
                    return Ok(Lease { path, beat: Some((alive, beat)) });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder: Option<LeaseHolder> =
                        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    let gone = match &holder {
                        Some(h) if h.host == me.host => !Path::new(&format!("/proc/{}", h.pid)).exists(),
                        _ => age > lease_stale(),
                    };
                    if !gone {
                        let who = holder.map_or("an unreadable lease".to_string(), |h| {
                            format!(
                                "{} (pid {}) since {} s ago",
                                h.host,
                                h.pid,
                                now_unix().saturating_sub(h.since_unix)
                            )
                        });
                        bail!(
                            "segment {index} is being done by {who}; its lease {} was refreshed {} s ago",
                            path.display(),
                            age.as_secs()
                        );
                    }
                    tracing::warn!(segment = index, "taking over a stale lease ({})", path.display());
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("segment {index}: another worker took {} at the same moment", path.display())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((alive, beat)) = self.beat.take() {
            alive.store(false, Ordering::SeqCst);
            let _ = beat.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Decodes the input from the key frame at the span's start, passes the span's frames
/// (by presentation timestamp) through the enhancement chain into `seg-NNNN.part.mp4`.
fn encode_span(
    args: &VideoArgs,
    plan: &Plan,
    span: &Span,
    work: &Path,
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
    let part = Record::part(work, span.index);
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

/// `faceenhance video IN -o OUT --resume`: every unfinished segment, then the join; the
/// work folder is removed once OUT is written.
pub fn run_resumable(args: &VideoArgs, input: &Path, output: &Path, stop: &AtomicBool) -> Result<JoinOutcome> {
    let work = match &args.segments.work {
        Some(w) => w.clone(),
        None => {
            let mut name = output.file_name().context("--output has no file name")?.to_os_string();
            name.push(".work");
            output.with_file_name(name)
        }
    };
    ensure!(args.segments.segment_seconds > 0.0, "--segment-seconds must be positive");
    let plan = Plan::open_or_make(&work, input, Parts::Seconds(args.segments.segment_seconds), &settings(args)?)?;
    let n = plan.segments.len();
    let kept = (0..n).filter(|&i| Record::load(&work, i).is_some_and(|r| r.is_done(&work))).count();
    if kept > 0 {
        println!("{}: {kept} of {n} segments already done, resuming", work.display());
    }
    for i in 0..n {
        let rec = run_segment(args, &work, &plan, i, stop)?;
        tracing::info!("{}", rec.summary());
    }
    let outcome = join(&work, output, args.no_progress)?;
    if !args.segments.keep_work {
        remove_work(&work)?;
    }
    println!(
        "{} -> {}: {} frames in {} segments, {} faces found, {:.1} s of work",
        input.display(),
        output.display(),
        outcome.frames,
        n,
        outcome.faces,
        outcome.seconds
    );
    Ok(outcome)
}

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
    let plan: Plan = read_json(&Plan::path(work))?;
    let records: Vec<Option<Record>> = (0..plan.segments.len()).map(|i| Record::load(work, i)).collect();
    let missing: Vec<String> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.as_ref().is_some_and(|r| r.is_done(work)))
        .map(|(i, r)| match r {
            None => format!("{i} (not started)"),
            Some(r) => format!("{i} ({:?} on {})", r.state, r.host).to_lowercase(),
        })
        .collect();
    ensure!(missing.is_empty(), "{}: segments not done: {}", work.display(), missing.join(", "));
    let short: Vec<String> = records
        .iter()
        .flatten()
        .zip(&plan.segments)
        .filter(|(r, span)| r.frames != span.frames)
        .map(|(r, span)| format!("{} ({} of {} frames)", r.index, r.frames, span.frames))
        .collect();
    ensure!(short.is_empty(), "{}: segments whose frames differ from the plan's: {}", work.display(), short.join(", "));
    let records: Vec<Record> = records.into_iter().flatten().filter(|r| r.frames > 0).collect();
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
                let n = feed_segment(&Record::video(&work, rec.index), rec, shown_from, &video_in, &mut caps, &bar)
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

/// `faceenhance status DIR`: every segment's state, frames, faces and timing.
pub fn status(work: &Path) -> Result<String> {
    let plan: Plan = read_json(&Plan::path(work))?;
    let mut out = format!(
        "{}: {} ({} frames, {} key frames) in {} segments\n",
        work.display(),
        plan.input.display(),
        plan.frames,
        plan.key_frames,
        plan.segments.len()
    );
    out += &format!(
        "{:>4}  {:>9}  {:>9}  {:>8}  {:>13}  {:>7}  {:>8}  {:>6}  host\n",
        "seg", "start s", "end s", "state", "frames", "faces", "seconds", "fps"
    );
    let (mut done, mut frames, mut seconds) = (0usize, 0u64, 0.0f64);
    let secs = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{:.3}", t as f64 / 1e9));
    for span in &plan.segments {
        let rec = Record::load(work, span.index);
        let state = match &rec {
            None => "waiting".to_string(),
            Some(r) if r.state == State::Done && !r.is_done(work) => "lost".to_string(),
            Some(r) => format!("{:?}", r.state).to_lowercase(),
        };
        let r = rec.as_ref();
        if r.is_some_and(|r| r.is_done(work)) {
            done += 1;
        }
        frames += r.map_or(0, |r| r.frames);
        seconds += r.map_or(0.0, |r| r.seconds);
        out += &format!(
            "{:>4}  {:>9}  {:>9}  {:>8}  {:>13}  {:>7}  {:>8}  {:>6}  {}{}\n",
            span.index,
            secs(span.start_ns.or(Some(plan.first_pts_ns))),
            secs(span.end_ns),
            state,
            format!("{}/{}", r.map_or(0, |r| r.frames), span.frames),
            r.map_or("-".into(), |r| r.faces.to_string()),
            r.map_or("-".into(), |r| format!("{:.1}", r.seconds)),
            r.filter(|r| r.seconds > 0.0).map_or("-".into(), |r| format!("{:.1}", r.frames as f64 / r.seconds)),
            r.map_or("-", |r| r.host.as_str()),
            r.and_then(|r| r.error.as_ref()).map_or(String::new(), |e| format!("  ({e})")),
        );
    }
    out += &format!(
        "{done} of {} segments done, {frames} of {} frames, {seconds:.1} s of work\n",
        plan.segments.len(),
        plan.frames
    );
    Ok(out)
}

/// What was done for one line of a manifest, written beside its output as OUTPUT.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    pub input: PathBuf,
    /// The input's size and modification time when it was done: a rerun skips the line
    /// only when the record is of this very file.
    #[serde(default)]
    pub input_bytes: Option<u64>,
    #[serde(default)]
    pub input_mtime: Option<u64>,
    pub output: PathBuf,
    pub state: State,
    pub host: String,
    pub finished_unix: Option<u64>,
    pub frames: u64,
    pub faces: u64,
    pub seconds: f64,
    pub settings: String,
    pub error: Option<String>,
}

impl OutputRecord {
    fn is_of(&self, id: &InputIdentity) -> bool {
        self.input == id.path && self.input_bytes == Some(id.bytes) && self.input_mtime == id.mtime
    }
}

/// The (input, output) pairs of a manifest, in order.
pub fn read_manifest(path: &Path, out_dir: Option<&Path>) -> Result<Vec<(PathBuf, PathBuf)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut cols = line.split('\t').map(str::trim).filter(|c| !c.is_empty());
        let input = base.join(cols.next().unwrap());
        let output = match (cols.next(), out_dir) {
            (Some(o), _) => base.join(o),
            (None, Some(dir)) => {
                let stem = input.file_stem().with_context(|| format!("{}:{}: no file name", path.display(), no + 1))?;
                dir.join(format!("{}.mp4", stem.to_string_lossy()))
            }
            (None, None) => bail!("{}:{}: no output and no --out-dir", path.display(), no + 1),
        };
        items.push((input, output));
    }
    Ok(items)
}

/// Which file an input is: its canonical path, size and modification time.
struct InputIdentity {
    path: PathBuf,
    bytes: u64,
    mtime: Option<u64>,
}

impl InputIdentity {
    fn of(input: &Path) -> Result<Self> {
        let path = std::fs::canonicalize(input).with_context(|| format!("{}: no such file", input.display()))?;
        let meta = std::fs::metadata(&path)?;
        Ok(Self { path, bytes: meta.len(), mtime: mtime_of(&meta) })
    }
}

/// An output path as the file system sees it (its folder made canonical where it exists),
/// so `out/a.mp4` and `./out/a.mp4` are one output.
fn output_key(output: &Path) -> PathBuf {
    let name = output.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).join(name)
}

fn run_manifest(args: &VideoArgs, manifest: &Path, stop: &AtomicBool) -> Result<()> {
    let s = &args.segments;
    let items = read_manifest(manifest, s.out_dir.as_deref())?;
    // two lines writing one output: the second would overwrite the first, or be skipped
    // as "done already" with the first's file
    let mut seen: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    for (i, (_, output)) in items.iter().enumerate() {
        let key = output_key(output);
        if let Some(j) = seen.insert(key, i) {
            bail!(
                "{}: inputs {j} and {i} (0-based) both write {}: give one of them its own output",
                manifest.display(),
                output.display()
            );
        }
    }
    let shard = s.shard.unwrap_or(Part { k: 0, n: 1 });
    let mut failed = Vec::new();
    for (i, (input, output)) in items.iter().enumerate() {
        if i % shard.n != shard.k {
            continue;
        }
        let record_path = output.with_extension(format!(
            "{}.json",
            output.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default()
        ));
        let identity = InputIdentity::of(input)?;
        match read_json::<OutputRecord>(&record_path) {
            Ok(r) if r.state == State::Done && output.is_file() && r.is_of(&identity) => {
                println!("{}: done already ({})", output.display(), record_path.display());
                continue;
            }
            Ok(r) if r.state == State::Done && output.is_file() => {
                println!(
                    "{}: its record is of another input ({}) or an older version of it: doing it again",
                    output.display(),
                    r.input.display()
                );
            }
            _ => {}
        }
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let started = Instant::now();
        let result = if s.resume || s.work.is_some() {
            // each line its own work folder under --work (one plan per input)
            let mut line_args = args.clone();
            if let Some(w) = &s.work {
                let stem = output.file_stem().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                line_args.segments.work = Some(w.join(format!("{i:04}-{stem}")));
            }
            run_resumable(&line_args, input, output, stop).map(|o| (o.frames, o.faces, false))
        } else {
            transcode(args, input, output, stop).map(|o| (o.frames, o.faces, o.stopped))
        };
        let mut record = OutputRecord {
            input: identity.path.clone(),
            input_bytes: Some(identity.bytes),
            input_mtime: identity.mtime,
            output: output.clone(),
            state: State::Done,
            host: hostname(),
            finished_unix: Some(now_unix()),
            frames: 0,
            faces: 0,
            seconds: started.elapsed().as_secs_f64(),
            settings: settings(args)?,
            error: None,
        };
        match result {
            Ok((frames, faces, stopped)) => {
                (record.frames, record.faces) = (frames, faces);
                if stopped {
                    // a playable but partial file: the next run of the shard does it again
                    record.state = State::Stopped;
                }
            }
            Err(e) => {
                eprintln!("{}: {e:#}", input.display());
                record.state = if stop.load(Ordering::SeqCst) { State::Stopped } else { State::Failed };
                record.error = Some(format!("{e:#}"));
                failed.push(input.display().to_string());
            }
        }
        write_json(&record_path, &record)?;
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    ensure!(failed.is_empty(), "{} of the shard's inputs failed: {}", failed.len(), failed.join(", "));
    Ok(())
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

    #[test]
    fn parts_parse_and_refuse_nonsense() {
        assert_eq!("2/5".parse::<Part>().unwrap(), Part { k: 2, n: 5 });
        for bad in ["5/5", "1/0", "a/3", "3", "-1/2"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cuts_fall_on_key_frames_and_every_frame_is_in_one_segment() {
        // 40 frames at 10 ms, B-frame order (pts not monotonic), key frames every 10
        let mut list = Vec::new();
        for i in 0..40u64 {
            let pts = if i % 10 == 1 {
                (i + 1) * 10
            } else if i % 10 == 2 {
                (i - 1) * 10
            } else {
                i * 10
            };
            list.push((pts, i % 10 == 0));
        }
        let p = packets(&list);
        let plan = Plan::cut(Path::new("x"), 0, "", &p, [25, 1], 3).unwrap();
        let starts: Vec<Option<u64>> = plan.segments.iter().map(|s| s.start_ns).collect();
        assert_eq!(starts, vec![None, Some(100), Some(300)]);
        assert_eq!(plan.segments.iter().map(|s| s.frames).sum::<u64>(), 40);
        assert_eq!(plan.segments[0].end_ns, Some(100));
        assert_eq!(plan.segments[2].end_ns, None);
        // more segments than key frames: the last ones are empty, none is lost
        let plan = Plan::cut(Path::new("x"), 0, "", &p, [25, 1], 6).unwrap();
        assert_eq!(plan.segments.iter().map(|s| s.frames).sum::<u64>(), 40);
        assert_eq!(plan.segments.iter().filter(|s| s.frames == 0).count(), 2);
    }
}
