//! The whole `faceenhance` element per frame: a 720p / 1080p BGRx frame with four faces
//! pushed through `appsrc ! faceenhance ! appsink`, one frame in flight at a time, so the
//! time is the element's latency per frame (detection + restoration + blending + meta).
//! Run: `cargo bench -p gst-plugin-faceenhance --bench element`.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gst::prelude::*;
use opencv::core::{Mat, Rect, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// A `w` x `h` BGRx frame: the astronaut stretched as background, four of its faces on it.
fn frame(w: i32, h: i32) -> Vec<u8> {
    let p = faceenhance::paths::cache_dir().join("data/astronaut.png");
    let src = imgcodecs::imread(&p, imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!src.empty(), "{} missing: run scripts/setup.sh", p.display());
    let mut canvas = Mat::default();
    imgproc::resize(&src, &mut canvas, Size::new(w, h), 0.0, 0.0, imgproc::INTER_AREA).unwrap();
    let mut face = Mat::default();
    let crop = Mat::roi(&src, Rect::new(130, 20, 190, 230)).unwrap();
    imgproc::resize(&crop, &mut face, Size::new(h / 5, h * 23 / 95), 0.0, 0.0, imgproc::INTER_AREA).unwrap();
    for i in 0..4 {
        let (x, y) = (w / 10 + i * w / 5, h / 3 + (i % 2) * h / 8);
        let mut dst = Mat::roi_mut(&mut canvas, Rect::new(x, y, face.cols(), face.rows())).unwrap();
        face.copy_to(&mut dst).unwrap();
    }
    let mut bgrx = Mat::default();
    imgproc::cvt_color_def(&canvas, &mut bgrx, imgproc::COLOR_BGR2BGRA).unwrap();
    bgrx.data_bytes().unwrap().to_vec()
}

fn yunet() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/face_detection_yunet_2022mar.onnx");
    p.is_file().then_some(p)
}

struct Harness {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl Harness {
    fn new(w: i32, h: i32, element: &str) -> Self {
        let desc = format!("appsrc name=src format=time ! {element} ! appsink name=sink sync=false");
        let pipeline = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
        let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
        let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, w as u32, h as u32).build().unwrap();
        src.set_caps(Some(&info.to_caps().unwrap()));
        pipeline.set_state(gst::State::Playing).unwrap();
        Self { pipeline, src, sink }
    }

    fn push_pull(&self, data: &[u8]) {
        self.src.push_buffer(gst::Buffer::from_slice(data.to_vec())).unwrap();
        self.sink.pull_sample().unwrap();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

fn bench_element(c: &mut Criterion) {
    gst::init().unwrap();
    gstfaceenhance::plugin_register_static().unwrap();
    let mut g = c.benchmark_group("element");
    let mut variants = vec![("faceenhance-centerface", "faceenhance".to_string())];
    if let Some(m) = yunet() {
        variants.push(("faceenhance-yunet", format!("faceenhance detector-model={}", m.display())));
        variants.push(("facedetector-yunet", format!("facedetector model={}", m.display())));
    }
    for (res, (w, h)) in [("720p", (1280, 720)), ("1080p", (1920, 1080))] {
        let data = frame(w, h);
        for (name, element) in &variants {
            let harness = Harness::new(w, h, element);
            g.bench_function(BenchmarkId::new(*name, res), |b| b.iter(|| harness.push_pull(&data)));
        }
    }
    g.finish();
}

criterion_group! {
    name = element;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench_element
}
criterion_main!(element);
