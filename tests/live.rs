//! Live mode (`facerestore max-latency`) while playing: strength changes reach the worker,
//! setting them never waits for an inference, and the latency query counts max-latency.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;
use opencv::core::Mat;
use opencv::prelude::*;

const MAX_LATENCY_MS: u64 = 2000;

/// A BGRx frame of a BGR image, as GStreamer lays it out.
fn bgrx(m: &Mat) -> (gst::Caps, Vec<u8>) {
    let (w, h) = (m.cols(), m.rows());
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    for px in m.data_bytes().unwrap().chunks(3) {
        out.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "BGRx")
        .field("width", w)
        .field("height", h)
        .field("framerate", gst::Fraction::new(25, 1))
        .build();
    (caps, out)
}

#[test]
fn live_mode_takes_strength_while_playing_without_waiting_and_reports_its_latency() {
    gst::init().unwrap();
    gstfaceenhance::plugin_register_static().unwrap();
    let dir = std::env::temp_dir().join(format!("faceenhance-live-{}", std::process::id()));
    let model = conv_model(&dir, "slow", 100, 1);
    let (caps, frame) = bgrx(&imread(&astronaut()));
    // force: the astronaut's face is bigger than the 64 px model would keep (never worse).
    // The budget is far above one inference, so no frame goes out late (unrestored). On
    // the CPU: the model is slow there, and a GPU would make it fast.
    let desc = format!(
        "appsrc name=src is-live=true format=time ! facedetector model={} ! facerestore name=restore force=true \
         provider=cpu model={} max-latency={MAX_LATENCY_MS} post-messages=true ! appsink name=sink sync=true",
        yunet().display(),
        model.display()
    );
    let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.set_caps(Some(&caps));
    let restore = pipeline.by_name("restore").unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = samples.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                collected.lock().unwrap().push(s.pull_sample().map_err(|_| gst::FlowError::Eos)?);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let push = |i: u64| {
        let mut buf = gst::Buffer::from_mut_slice(frame.clone());
        buf.make_mut().set_pts(gst::ClockTime::from_mseconds(40 * i));
        src.push_buffer(buf).unwrap();
    };
    // Tells when the first frame reaches facerestore (its inference starts at once).
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    restore.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let _ = arrived_tx.send(());
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();

    // Three frames queue up behind the slow generator; while it works on the first,
    // strength goes to 0 (no change), timed each time.
    for i in 0..3 {
        push(i);
    }
    arrived.recv_timeout(Duration::from_secs(30)).expect("no frame reached facerestore");
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(30));
        let t = Instant::now();
        restore.set_property("strength", 0.0f32);
        slowest = slowest.max(t.elapsed());
    }
    for i in 3..8 {
        push(i);
    }
    // Wait until frames come out, then ask the pipeline for its latency.
    let deadline = Instant::now() + Duration::from_secs(60);
    while samples.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no frames came out");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut q = gst::query::Latency::new();
    assert!(pipeline.query(&mut q), "latency query unanswered");
    let (live, min, _max) = q.result();
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let mut stats = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "pipeline hung");
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(left.as_millis() as u64)) else { continue };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "facerestore") {
                    stats.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let data = |s: &gst::Sample| s.buffer().unwrap().map_readable().unwrap().as_slice().to_vec();
    println!(
        "set_property(strength) took at most {:.2} ms; latency live {live} min {min}; restored per frame {:?}",
        slowest.as_secs_f64() * 1e3,
        stats.iter().map(|s| s.get::<i32>("restored").unwrap()).collect::<Vec<_>>()
    );

    assert!(slowest < Duration::from_millis(10), "set_property waited {:.1} ms", slowest.as_secs_f64() * 1e3);
    assert!(live, "an is-live source makes a live pipeline");
    assert!(min >= gst::ClockTime::from_mseconds(MAX_LATENCY_MS), "min latency {min} < max-latency");

    assert_eq!(samples.len(), 8, "every frame came out");
    assert_eq!(stats.len(), 8);
    assert!(stats.iter().all(|s| !s.get::<bool>("late").unwrap()), "no frame may be late in this test");
    // The first frame was sent at strength 1: restored, changed, and its inference ran
    // while strength was set (from 30 ms after it arrived).
    assert_eq!(stats[0].get::<i32>("restored").unwrap(), 1, "{:?}", stats[0]);
    assert!(stats[0].get::<f64>("infer-ms").unwrap() > 100.0, "the test model is not slow enough: {:?}", stats[0]);
    assert_ne!(data(&samples[0]), frame, "the first frame is restored");
    // Frames pushed after the change come out as they went in.
    for (i, s) in samples.iter().enumerate().skip(3) {
        assert_eq!(stats[i].get::<i32>("restored").unwrap(), 0, "frame {i}: {:?}", stats[i]);
        assert!(data(s) == frame, "frame {i} changed at strength 0");
    }
    std::fs::remove_dir_all(dir).ok();
}
