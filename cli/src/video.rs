//! `faceenhance video`: decodebin -> faceenhance -> x264 (4:2:0 High profile unless
//! `--chroma 444`) -> MP4/MKV, audio passed through
//! when the container takes it (else re-encoded), a progress bar, Ctrl-C -> EOS so the
//! file is finalised and playable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use gst::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::options::EnhanceOpts;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Compare {
    /// Input on the left, enhanced on the right, in one frame twice as wide.
    SideBySide,
}

/// Chroma subsampling of the H.264 written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Chroma {
    /// 4:2:0 (I420, High profile): what players, browsers and phones decode.
    #[value(name = "420")]
    C420,
    /// 4:4:4 (Y444, High 4:4:4 Predictive profile): full colour resolution, but many
    /// players and hardware decoders refuse it.
    #[value(name = "444")]
    C444,
}

impl Chroma {
    /// The raw format fed to x264 and the H.264 profile asked of it.
    fn formats(self) -> (&'static str, &'static str) {
        match self {
            Chroma::C420 => ("I420", "high"),
            Chroma::C444 => ("Y444", "high-4:4:4"),
        }
    }
}

#[derive(Args, Clone)]
pub struct VideoArgs {
    /// Input video (anything GStreamer reads); omit with --manifest.
    #[arg(required_unless_present = "manifest")]
    pub input: Option<PathBuf>,
    /// Output file: .mp4/.m4v/.mov (MP4) or .mkv (Matroska).
    #[arg(short, long, required_unless_present_any = ["manifest", "segment"])]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub segments: crate::segment::SegmentArgs,
    #[command(flatten)]
    pub opts: EnhanceOpts,
    /// x264 constant quality: 0 lossless .. 51 worst.
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u32).range(0..=51))]
    pub quality: u32,
    /// Chroma subsampling: 420 (High profile, plays everywhere) or 444 (High 4:4:4, full
    /// colour resolution, which many players cannot decode).
    #[arg(long, value_enum, default_value = "420")]
    pub chroma: Chroma,
    /// Write the input and the output next to each other.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,
    /// No progress bar (logs and CI).
    #[arg(long)]
    pub no_progress: bool,
    /// Face gallery: the best restored crop of each tracked face as a PNG, index.json and
    /// contact-sheet.png, written into this folder.
    #[arg(long, value_name = "DIR")]
    pub faces: Option<PathBuf>,
    /// With --faces: tracks whose faces lie within this descriptor distance of a person are
    /// listed as that person (one person's photos ~0.26 apart, different people ~0.8); 0
    /// lists every track on its own.
    #[arg(long, value_name = "D", default_value_t = faceenhance::gallery::IDENTITY_THRESHOLD)]
    pub faces_threshold: f32,
}

pub fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("GStreamer element '{factory}' is not installed"))
}

/// The muxer for the output's extension and the audio encoder to use when the input's
/// audio cannot be passed through.
pub fn muxer_for(output: &std::path::Path) -> Result<(gst::Element, &'static str)> {
    let ext = output.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" | "mov" => Ok((make("mp4mux")?, "avenc_aac")),
        "mkv" => Ok((make("matroskamux")?, "opusenc")),
        _ => bail!("{}: unsupported output type '.{ext}' (use .mp4 or .mkv)", output.display()),
    }
}

struct Graph {
    pipeline: gst::Pipeline,
    frames: Arc<AtomicU64>,
}

/// What the elements report on the bus while a transcode runs.
#[derive(Default)]
pub struct Tally {
    pub faces: u64,
    /// Faces that reached the restorer (every frame's, also between detections), those
    /// restored, and those kept as they were (never worse).
    pub seen: u64,
    pub restored: u64,
    pub skipped: u64,
    /// Milliseconds spent restoring (crop, models, blend), over all frames.
    pub restore_ms: f64,
    pub provider: String,
    /// Tracks, people and the index path of the gallery written.
    pub gallery: Option<(i32, i32, String)>,
    /// With `--measure-identity`: how far each fresh restoration moved its face's
    /// identity (descriptor distance to its input), in the order they came.
    pub identity_moved: Vec<f64>,
}

impl Tally {
    /// Counts an element message (faces found, the provider that ran, the gallery written).
    pub fn take(&mut self, msg: &gst::Message) {
        let gst::MessageView::Element(e) = msg.view() else { return };
        let Some(s) = e.structure() else { return };
        let count = |field: &str| s.get::<i32>(field).unwrap_or(0).max(0) as u64;
        match s.name().as_str() {
            "facedetector" => self.faces += count("faces"),
            "facerestore" => {
                self.seen += count("faces");
                self.restored += count("restored");
                self.skipped += count("skipped");
                self.restore_ms += s.get::<f64>("total-ms").unwrap_or(0.0);
                if let Ok(a) = s.get::<gst::Array>("identity-moved") {
                    self.identity_moved.extend(a.iter().filter_map(|v| v.get::<f64>().ok()));
                }
            }
            "facerestore-provider" => self.provider = s.get::<String>("provider").unwrap_or_default(),
            "facegallery" => {
                self.gallery = Some((
                    s.get("faces").unwrap_or(0),
                    s.get("people").unwrap_or(0),
                    s.get("index").unwrap_or_default(),
                ))
            }
            _ => {}
        }
    }
}

impl Tally {
    /// "identity moved 0.041 mean, 0.090 most over N restorations", when measured.
    pub fn identity_summary(&self) -> Option<String> {
        let v = &self.identity_moved;
        (!v.is_empty()).then(|| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let max = v.iter().copied().fold(0.0, f64::max);
            format!(
                "identity moved {mean:.3} on average, {max:.3} at most over {} restorations (same person ~0.26)",
                v.len()
            )
        })
    }
}

/// The error a bus message carries, with its debug detail.
pub fn bus_error(msg: &gst::Message) -> Option<anyhow::Error> {
    match msg.view() {
        gst::MessageView::Error(e) => {
            Some(anyhow!("{}{}", e.error(), e.debug().map(|d| format!("\n  ({d})")).unwrap_or_default()))
        }
        _ => None,
    }
}

/// A finished transcode: frames written, faces found, stopped early by Ctrl-C.
pub struct Outcome {
    pub frames: u64,
    pub faces: u64,
    pub stopped: bool,
}

/// The video chain every transcode shares, added to `pipeline` and linked into `mux`:
/// videoconvert -> [tee + compositor for --compare] -> faceenhance -> [faceedit] -> [facegallery] ->
/// videocrop -> videoconvert -> x264enc -> queue. Returns its first element (to feed raw
/// frames into) and a counter of the frames the encoder took.
///
/// The encoder is told one frame rate for the whole stream, `framerate` or else the first
/// it sees: a variable-frame-rate input whose caps change rate mid-stream would otherwise
/// make x264 start over with new stream headers, which MP4 and Matroska cannot take (the
/// timestamps carry the real timing either way), and segments encoded apart would not
/// join. With `variable_rate` the encoder makes no B-frames: MP4's muxer sizes the track
/// by decode times, and when frames are reordered over a changing frame interval the last
/// frames fall outside it (measured: 2 of 59 frames lost by mp4mux, none by Matroska).
pub fn video_chain(
    pipeline: &gst::Pipeline,
    args: &VideoArgs,
    mux: &gst::Element,
    framerate: Option<gst::Fraction>,
    variable_rate: bool,
) -> Result<(gst::Element, Arc<AtomicU64>)> {
    // Video: convert -> [tee for the comparison] -> faceenhance -> convert -> x264.
    let convert_in = make("videoconvert")?;
    let enhance = make("faceenhance")?;
    args.opts.apply(&enhance)?;
    let upscale = enhance.property::<u32>("upscale");
    // Edits after restoration, and the gallery watches the finished faces:
    // enhance -> [faceedit] -> [facegallery] -> ...
    let mut after = Vec::new();
    after.extend(args.opts.edit_element()?);
    if let Some(dir) = &args.faces {
        let gallery = make("facegallery")?;
        gallery.set_property("location", dir.to_string_lossy().as_ref());
        gallery.set_property("identity-threshold", args.faces_threshold as f64);
        after.push(gallery);
    }
    let enhanced = after.last().cloned().unwrap_or_else(|| enhance.clone());
    // x264 takes 4:2:0 at even sizes only: an odd last column or row is cropped off
    // (right and bottom set from the caps as they arrive; 0 and 0 pass frames through).
    let crop = make("videocrop")?;
    if args.chroma == Chroma::C420 {
        let crop_weak = crop.downgrade();
        crop.static_pad("sink").unwrap().add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                if let gst::EventView::Caps(c) = ev.view() {
                    if let (Ok(vi), Some(crop)) = (gst_video::VideoInfo::from_caps(c.caps()), crop_weak.upgrade()) {
                        crop.set_property("right", (vi.width() % 2) as i32);
                        crop.set_property("bottom", (vi.height() % 2) as i32);
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
    let convert_out = make("videoconvert")?;
    // x264 encodes whatever it is fed: RGB or Y444 would give High 4:4:4, which most
    // players do not decode. Ask for the chroma format and the profile explicitly.
    let (raw_format, profile) = args.chroma.formats();
    let raw = gst::ElementFactory::make("capsfilter")
        .property("caps", gst::Caps::builder("video/x-raw").field("format", raw_format).build())
        .build()?;
    let encode = make("x264enc")?;
    let pinned = Mutex::new(framerate);
    encode.static_pad("sink").unwrap().add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else { return gst::PadProbeReturn::Ok };
        let gst::EventView::Caps(c) = ev.view() else { return gst::PadProbeReturn::Ok };
        let Some(rate) = c.caps().structure(0).and_then(|s| s.get::<gst::Fraction>("framerate").ok()) else {
            return gst::PadProbeReturn::Ok;
        };
        let pinned = *pinned.lock().unwrap().get_or_insert(rate);
        if rate != pinned {
            let mut caps = c.caps_owned();
            caps.make_mut().set("framerate", pinned);
            info.data = Some(gst::PadProbeData::Event(gst::event::Caps::new(&caps)));
        }
        gst::PadProbeReturn::Ok
    });
    encode.set_property_from_str("pass", "qual");
    encode.set_property("quantizer", args.quality);
    if variable_rate {
        encode.set_property("bframes", 0u32);
    }
    encode.set_property_from_str("speed-preset", "medium");
    // One thread budget (issue 28): with `--threads N` the enhancer's sessions hold N cores
    // and x264 the others; with the default (0: the shared pool, a thread per core, idle
    // threads never spin) x264 keeps its own count.
    let enhancer_threads: u32 = enhance.property("threads");
    if enhancer_threads > 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        encode.set_property("threads", cores.saturating_sub(enhancer_threads).max(1));
    }
    let coded = gst::ElementFactory::make("capsfilter")
        .property("caps", gst::Caps::builder("video/x-h264").field("profile", profile).build())
        .build()?;
    let vqueue = make("queue")?;
    pipeline.add_many([&convert_in, &enhance])?;
    pipeline.add_many([&crop, &convert_out, &raw, &encode, &coded, &vqueue])?;
    if !after.is_empty() {
        pipeline.add_many(&after)?;
        let chain: Vec<&gst::Element> = std::iter::once(&enhance).chain(&after).collect();
        gst::Element::link_many(chain)?;
    }
    match args.compare {
        None => {
            convert_in.link(&enhance)?;
            enhanced.link(&crop)?;
        }
        Some(Compare::SideBySide) => {
            let tee = make("tee")?;
            let (q_in, q_out) = (make("queue")?, make("queue")?);
            let mix = make("compositor")?;
            let shape = make("capsfilter")?;
            pipeline.add_many([&tee, &q_in, &q_out, &mix, &shape])?;
            gst::Element::link_many([&convert_in, &tee, &q_in])?;
            gst::Element::link_many([&tee, &q_out, &enhance])?;
            let left = mix.request_pad_simple("sink_%u").context("compositor pad")?;
            let right = mix.request_pad_simple("sink_%u").context("compositor pad")?;
            q_in.static_pad("src").unwrap().link(&left)?;
            enhanced.static_pad("src").unwrap().link(&right)?;
            // The right half starts where the left frame ends, and the output keeps the
            // input's pixel aspect ratio (else compositor resamples to square pixels and the
            // halves no longer line up pixel for pixel): both known once caps arrive. At
            // --upscale the input half is enlarged (bilinear) to the output's size.
            let k = upscale as i32;
            let right_pad = right.clone();
            let left_pad = left.clone();
            let shape_weak = shape.downgrade();
            left.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                    if let gst::EventView::Caps(c) = ev.view() {
                        if let Ok(vi) = gst_video::VideoInfo::from_caps(c.caps()) {
                            let (w, h) = (vi.width() as i32 * k, vi.height() as i32 * k);
                            if k != 1 {
                                left_pad.set_property("width", w);
                                left_pad.set_property("height", h);
                            }
                            right_pad.set_property("xpos", w);
                            if let Some(shape) = shape_weak.upgrade() {
                                let caps =
                                    gst::Caps::builder("video/x-raw").field("pixel-aspect-ratio", vi.par()).build();
                                shape.set_property("caps", caps);
                            }
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
            gst::Element::link_many([&mix, &shape, &crop])?;
        }
    }
    gst::Element::link_many([&crop, &convert_out, &raw, &encode, &coded, &vqueue, mux])?;

    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    encode.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    Ok((convert_in, frames))
}

fn build(args: &VideoArgs, input: &Path, output: &Path) -> Result<Graph> {
    if !input.is_file() {
        bail!("{}: no such file", input.display());
    }
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc").property("location", input.to_string_lossy().as_ref()).build()?;
    let decode = make("decodebin")?;
    let (mux, audio_encoder) = muxer_for(output)?;
    let sink = gst::ElementFactory::make("filesink").property("location", output.to_string_lossy().as_ref()).build()?;
    // Stop decoding audio where the muxer can take it as it is: pass-through.
    let mut stop_caps = gst::Caps::builder("video/x-raw").build();
    {
        let stop = stop_caps.get_mut().expect("fresh caps");
        stop.append(gst::Caps::builder("audio/x-raw").build());
        if let Some(t) = mux.pad_template("audio_%u") {
            stop.append(t.caps().copy());
        }
    }
    decode.set_property("caps", &stop_caps);

    pipeline.add_many([&src, &decode, &mux, &sink])?;
    // a demux-only pass (seconds for hours of video) tells a variable frame rate
    // (without packet timestamps the rate cannot be told: encoded as for a variable one)
    let vfr = match crate::segment::probe::probe(input) {
        Ok((packets, _)) => crate::segment::probe::variable_rate(&packets),
        Err(e) if e.chain().any(|c| c.is::<crate::segment::probe::NoTimestamps>()) => true,
        Err(e) => return Err(e),
    };
    let (convert_in, frames) = video_chain(&pipeline, args, &mux, None, vfr)?;
    src.link(&decode)?;
    mux.link(&sink)?;
    // Streams appear as decodebin finds them: the first video, and every audio stream.
    let video_linked = Arc::new(Mutex::new(false));
    let pipeline_weak = pipeline.downgrade();
    let mux_weak = mux.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(mux)) = (pipeline_weak.upgrade(), mux_weak.upgrade()) else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps.structure(0).map(|s| s.name().to_string()).unwrap_or_default();
        let result = if name == "video/x-raw" {
            let mut linked = video_linked.lock().unwrap();
            if *linked {
                return;
            }
            *linked = true;
            pad.link(&convert_in.static_pad("sink").unwrap()).map(|_| ()).map_err(|e| anyhow!("video: {e:?}"))
        } else if name.starts_with("audio/") {
            link_audio(&pipeline, &mux, pad, &caps, audio_encoder)
        } else {
            return;
        };
        if let Err(e) = result {
            gst::element_error!(pipeline, gst::StreamError::Failed, ["cannot link a {name} stream: {e:#}"]);
        }
    });
    Ok(Graph { pipeline, frames })
}

/// Audio into the muxer: as it is when the muxer takes these caps, else re-encoded.
pub fn link_audio(
    pipeline: &gst::Pipeline,
    mux: &gst::Element,
    pad: &gst::Pad,
    caps: &gst::Caps,
    encoder: &str,
) -> Result<()> {
    let takes_as_is = mux.pad_template("audio_%u").is_some_and(|t| t.caps().can_intersect(caps));
    let queue = make("queue")?;
    let chain: Vec<gst::Element> = if takes_as_is {
        vec![queue]
    } else {
        vec![queue, make("audioconvert")?, make("audioresample")?, make(encoder)?]
    };
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain)?;
    let last = chain.last().expect("at least the queue");
    let mux_pad = mux.request_pad_simple("audio_%u").context("muxer has no audio input")?;
    last.static_pad("src").unwrap().link(&mux_pad)?;
    for e in &chain {
        e.sync_state_with_parent()?;
    }
    pad.link(&chain[0].static_pad("sink").unwrap())?;
    tracing::info!(caps = %caps, pass_through = takes_as_is, "audio stream");
    Ok(())
}

pub fn run(args: &VideoArgs) -> Result<()> {
    crate::options::init()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    crate::segment::dispatch(args, &stop)
}

/// One input to one output in one pipeline (no work folder): the plain `faceenhance video`.
pub fn transcode(args: &VideoArgs, input: &Path, output: &Path, stop: &AtomicBool) -> Result<Outcome> {
    let graph = build(args, input, output)?;
    let pipeline = &graph.pipeline;
    let bar = progress_bar(args.no_progress);
    start(pipeline)?;
    let bus = pipeline.bus().expect("pipelines have a bus");
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut eos_sent: Option<Instant> = None;
    let outcome = loop {
        if stop.load(Ordering::SeqCst) && eos_sent.is_none() {
            // Let the muxer write its index: a stopped file stays playable.
            bar.println("stopping: finishing the file ...");
            pipeline.send_event(gst::event::Eos::new());
            eos_sent = Some(Instant::now());
        }
        if eos_sent.is_some_and(|t| t.elapsed() > Duration::from_secs(20)) {
            break Err(anyhow!("the pipeline did not finish within 20 s of Ctrl-C"));
        }
        if let Some(d) = pipeline.query_duration::<gst::ClockTime>() {
            bar.set_length(d.mseconds());
        }
        if let Some(p) = pipeline.query_position::<gst::ClockTime>() {
            bar.set_position(p.mseconds());
        }
        let frames = graph.frames.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{frames} frames, {:.1} fps",
            frames as f64 / started.elapsed().as_secs_f64().max(1e-3)
        ));
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else { continue };
        if let gst::MessageView::Eos(_) = msg.view() {
            break Ok(());
        }
        if let Some(e) = bus_error(&msg) {
            break Err(e);
        }
        tally.take(&msg);
    };
    bar.finish_and_clear();
    pipeline.set_state(gst::State::Null)?;
    let frames = graph.frames.load(Ordering::Relaxed);
    if let Err(e) = outcome {
        // Nothing came through: do not leave an empty, unplayable file behind.
        if frames == 0 {
            let _ = std::fs::remove_file(output);
        }
        return Err(e.context(format!("{} -> {}", input.display(), output.display())));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} -> {}: {frames} frames in {secs:.1} s ({:.1} fps), {} faces found, {} of {} faces restored, {} kept \
         (never worse), restoration on {}{}",
        input.display(),
        output.display(),
        frames as f64 / secs.max(1e-3),
        tally.faces,
        tally.restored,
        tally.seen,
        tally.skipped,
        tally.provider,
        if eos_sent.is_some() { " (stopped early)" } else { "" }
    );
    if let Some((n, people, index)) = &tally.gallery {
        let who = if *people == 1 { "person" } else { "people" };
        println!("face gallery: {n} tracks of {people} {who}, index {index}");
    }
    if let Some(line) = tally.identity_summary() {
        println!("{line}");
    }
    Ok(Outcome { frames, faces: tally.faces, stopped: eos_sent.is_some() })
}

/// The progress bar of a transcode (hidden with --no-progress).
pub fn progress_bar(hidden: bool) -> ProgressBar {
    let bar = if hidden { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}")
            .expect("valid template"),
    );
    bar
}

/// Sets its pipeline to NULL when dropped: every way out of a function (an early `?`
/// included) leaves nothing running or half started.
pub struct NullOnDrop(pub gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Sets `pipeline` playing; when an element refuses (a model that does not load), the
/// error it posted, with the pipeline stopped again so nothing is left half started.
pub fn start(pipeline: &gst::Pipeline) -> Result<()> {
    if pipeline.set_state(gst::State::Playing).is_ok() {
        return Ok(());
    }
    let e = first_error(pipeline).unwrap_or_else(|| anyhow!("cannot start"));
    pipeline.set_state(gst::State::Null)?;
    Err(e)
}

/// The first error message waiting on the bus (a failed state change leaves one).
pub fn first_error(pipeline: &gst::Pipeline) -> Option<anyhow::Error> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(anyhow!("{}{}", e.error(), e.debug().map(|d| format!("\n  ({d})")).unwrap_or_default()));
        }
    }
    None
}
