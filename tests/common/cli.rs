//! Shared by the tests that run the `faceenhance` binary (the CLI package's tests:
//! `CARGO_BIN_EXE_faceenhance` exists only there).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faceenhance"))
}

/// `name` in a folder of this test process (`faceenhance-<tag>-<pid>` in the temp dir).
pub fn temp_in(tag: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceenhance-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Stdout and stderr of a run that must have succeeded (else the test fails with both).
pub fn ok(out: Output) -> String {
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

/// What a file decodes to: video frames in time order (timestamp, and the luma plane when
/// asked for), the frame size, the audio buffers and their summed duration.
pub struct Decoded {
    pub frames: Vec<(u64, Vec<u8>)>,
    pub width: usize,
    pub height: usize,
    pub audio_buffers: u64,
    pub audio_ns: u64,
}

pub fn decode(path: &Path, keep_pixels: bool) -> Decoded {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc").property("location", path.to_str().unwrap()).build().unwrap();
    let dec = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &dec]).unwrap();
    src.link(&dec).unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    let size = Arc::new(Mutex::new((0, 0)));
    let audio = Arc::new(Mutex::new((0u64, 0u64)));
    let (f, s, a) = (frames.clone(), size.clone(), audio.clone());
    let weak = pipeline.downgrade();
    dec.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let caps = pad.current_caps().unwrap();
        let video = caps.structure(0).unwrap().name().starts_with("video/");
        let chain: Vec<gst::Element> = if video {
            vec![
                gst::ElementFactory::make("videoconvert").build().unwrap(),
                gst::ElementFactory::make("capsfilter")
                    .property("caps", gst::Caps::builder("video/x-raw").field("format", "GRAY8").build())
                    .build()
                    .unwrap(),
                gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap(),
            ]
        } else {
            vec![gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap()]
        };
        pipeline.add_many(&chain).unwrap();
        gst::Element::link_many(&chain).unwrap();
        for e in &chain {
            e.sync_state_with_parent().unwrap();
        }
        pad.link(&chain[0].static_pad("sink").unwrap()).unwrap();
        let last = chain.last().unwrap().static_pad("sink").unwrap();
        let (f, s, a) = (f.clone(), s.clone(), a.clone());
        last.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(b)) = &info.data else { return gst::PadProbeReturn::Ok };
            if video {
                let vi = gst_video::VideoInfo::from_caps(&pad.current_caps().unwrap()).unwrap();
                let map = b.map_readable().unwrap();
                let stride = vi.stride()[0] as usize;
                let (w, h) = (vi.width() as usize, vi.height() as usize);
                *s.lock().unwrap() = (w, h);
                let luma: Vec<u8> = if keep_pixels {
                    (0..h).flat_map(|y| map[y * stride..y * stride + w].to_vec()).collect()
                } else {
                    Vec::new()
                };
                // the time a player shows: the buffer's timestamp in its segment (MP4's
                // edit list moves the first frame of a B-frame stream back to zero there)
                let shown = b.pts().map_or(0, |t| {
                    pad.sticky_event::<gst::event::Segment>(0)
                        .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().and_then(|s| s.to_stream_time(t)))
                        .unwrap_or(t)
                        .nseconds()
                });
                f.lock().unwrap().push((shown, luma));
            } else {
                let mut a = a.lock().unwrap();
                a.0 += 1;
                a.1 += b.duration().map_or(0, |d| d.nseconds());
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    for msg in pipeline.bus().unwrap().iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} does not decode: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let mut frames = std::mem::take(&mut *frames.lock().unwrap());
    frames.sort_by_key(|(t, _)| *t);
    let (width, height) = *size.lock().unwrap();
    let (audio_buffers, audio_ns) = *audio.lock().unwrap();
    Decoded { frames, width, height, audio_buffers, audio_ns }
}
