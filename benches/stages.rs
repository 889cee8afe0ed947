//! Per-stage costs at 720p and 1080p: detection (each back-end), alignment and the ladder's
//! blur measure, a carried frame
//! (restore-512's residual on a 720p I420 face), inference per
//! batch of 1/4/8 faces, blending, and detection + restoration of a whole frame.
//! Frames are composed from the astronaut photo (4 faces on a 720p/1080p canvas); and the
//! 4x up-scaling of a 360p frame; faces per second through the generator alone for the
//! default model and a 512 px GFPGAN-class one, fp32 and fp16, at batch 1 and 8.
//! Run: `cargo bench --bench stages` (results: BENCHMARKS.md); `FACEENHANCE_PROVIDER=cuda`
//! (or tensorrt, with `FACEENHANCE_FP16=1` for fp16 engines) runs the faces-per-second
//! group on a GPU: `cargo bench --bench stages -- faces-per-second`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faceenhance::align::{self, Template};
use faceenhance::blend;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind, Face};
use faceenhance::enhancer::Enhancer;
use faceenhance::frame::frame_from_mat;
use faceenhance::model::{ProviderOptions, Restorer};
use faceenhance::restore::{sharpness, FaceRestorer, RestoreConfig};
use faceenhance::search::{follow_region, FOLLOW_REACH_NEAR};
use faceenhance::upscale::{BackgroundConfig, Upscaler};
use opencv::core::{Mat, Rect, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

fn astronaut() -> Mat {
    let p = faceenhance::paths::cache_dir().join("data/astronaut.png");
    let m = imgcodecs::imread(&p, imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!m.empty(), "{} missing: run scripts/setup.sh", p.display());
    m
}

fn resized(m: &Mat, w: i32, h: i32) -> Mat {
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(w, h), 0.0, 0.0, imgproc::INTER_AREA).unwrap();
    out
}

/// A `w` x `h` frame: the astronaut stretched as background, four faces of `face` px.
fn frame(w: i32, h: i32) -> Mat {
    let src = astronaut();
    let mut canvas = resized(&src, w, h);
    let face = resized(&Mat::roi(&src, Rect::new(130, 20, 190, 230)).unwrap().try_clone().unwrap(), h / 5, h * 23 / 95);
    for i in 0..4 {
        let (x, y) = (w / 10 + i * w / 5, h / 3 + (i % 2) * h / 8);
        let mut dst = Mat::roi_mut(&mut canvas, Rect::new(x, y, face.cols(), face.rows())).unwrap();
        face.copy_to(&mut dst).unwrap();
    }
    canvas
}

fn yunet() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models/face_detection_yunet_2022mar.onnx");
    p.is_file().then_some(p)
}

fn detectors() -> Vec<(&'static str, DetectorConfig)> {
    let mut v = vec![
        ("haar", DetectorConfig { kind: DetectorKind::Haar, ..Default::default() }),
        ("centerface", DetectorConfig { kind: DetectorKind::CenterFace, ..Default::default() }),
    ];
    if let Some(m) = yunet() {
        v.push(("yunet", DetectorConfig { kind: DetectorKind::YuNet, model: Some(m), ..Default::default() }));
    }
    v
}

fn bench_detect(c: &mut Criterion) {
    let mut g = c.benchmark_group("detect");
    for (res, (w, h)) in [("720p", (1280, 720)), ("1080p", (1920, 1080))] {
        let mut img = frame(w, h);
        for (name, cfg) in detectors() {
            let mut det = Detector::new(cfg).unwrap();
            let f = frame_from_mat(&mut img).unwrap();
            let faces = det.detect_frame(&f).unwrap();
            eprintln!("{name} {res}: {} faces", faces.len());
            g.bench_function(BenchmarkId::new(name, res), |b| b.iter(|| black_box(det.detect_frame(&f).unwrap())));
            // A known face re-detected in the search's own region for it, as on every frame
            // where it moved.
            if let Some((rect, scale)) = faces.first().and_then(|face| follow_region(face, (w, h), FOLLOW_REACH_NEAR)) {
                g.bench_function(BenchmarkId::new(format!("{name}-follow-one-face"), res), |b| {
                    b.iter(|| black_box(det.detect_region(&f, rect, scale).unwrap()))
                });
            }
        }
    }
    g.finish();
}

fn faces_of(img: &mut Mat) -> Vec<Face> {
    let cfg = detectors().pop().unwrap().1;
    Detector::new(cfg).unwrap().detect_frame(&frame_from_mat(img).unwrap()).unwrap()
}

fn bench_align_blend(c: &mut Criterion) {
    let mut img = frame(1280, 720);
    let faces = faces_of(&mut img);
    let face = faces[0].clone();
    let mut g = c.benchmark_group("align");
    for size in [64, 512] {
        g.bench_function(BenchmarkId::new("crop", size), |b| {
            b.iter(|| black_box(align::crop_face(&img, &face, Template::Ffhq5, size).unwrap()))
        });
    }
    // the ladder's blur measure (by-detail), on the crop it takes: at most 128 px
    for size in [64, 128] {
        let crop = align::crop_face(&img, &face, Template::Ffhq5, size).unwrap();
        g.bench_function(BenchmarkId::new("blur-measure", size), |b| {
            b.iter(|| black_box(sharpness::blur_sigma(&crop).unwrap()))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("blend");
    let crop = align::crop_face(&img, &face, Template::Ffhq5, 64).unwrap();
    let weights = blend::feather_weights(64, 0.1).unwrap();
    let sim = align::estimate(&face, Template::Ffhq5, 64).unwrap();
    g.bench_function("paste-64-720p-face", |b| {
        b.iter(|| {
            let mut f = frame_from_mat(&mut img).unwrap();
            black_box(blend::paste(&mut f, &blend::weighted(crop.clone(), &weights).unwrap(), &sim, 1.0).unwrap())
        })
    });
    g.finish();
}

/// A carried frame of a live call (`restore-interval`): one ~290 px face in a 720p I420
/// frame, its restore-512 restoration carried (aligned crop, residual added, pasted back):
/// what each frame between two model runs pays on the streaming thread.
fn bench_carry(c: &mut Criterion) {
    let (w, h) = (1280, 720);
    let src = astronaut();
    let mut canvas = resized(&src, w, h);
    let face = resized(&Mat::roi(&src, Rect::new(130, 20, 190, 230)).unwrap().try_clone().unwrap(), 580, 702);
    face.copy_to(&mut Mat::roi_mut(&mut canvas, Rect::new(350, 9, 580, 702)).unwrap()).unwrap();
    let mut faces = faces_of(&mut canvas.clone());
    faces.truncate(1);
    faces[0].id = 1;
    let planes = common::i420_bytes(&canvas);
    let mut restorer = FaceRestorer::new(RestoreConfig { refresh: u32::MAX, ..Default::default() }).unwrap();
    let run = |restorer: &mut FaceRestorer| {
        let mut buf = planes.clone();
        restorer.restore(&mut common::i420_frame(&mut buf, w as usize, h as usize), &faces).unwrap()
    };
    let first = run(&mut restorer);
    eprintln!("carry: face {:?}, rung {:?} of {:?}", faces[0].bbox, first.assigned, restorer.model_names());
    assert_eq!((first.restored, first.carried), (1, 0), "{first:?}");
    let mut g = c.benchmark_group("carry");
    g.bench_function("carried-frame-720p-i420", |b| {
        b.iter(|| {
            let s = run(&mut restorer);
            assert_eq!(s.carried, 1);
            black_box(s)
        })
    });
    g.finish();
}

/// What one restored face costs around the model (issue 28, item 4): its aligned crop from
/// a 1080p BGRx frame, the input tensor, the output turned into the weighted image the
/// paste takes, and the paste; the model is the identity (its output is the input
/// tensor), so the figure is the copies' and conversions' alone.
fn bench_face_roundtrip(c: &mut Criterion) {
    let (w, h) = (1920, 1080);
    let mut bgr = frame(w, h);
    let faces = faces_of(&mut bgr);
    let mut bgrx = Mat::default();
    imgproc::cvt_color_def(&bgr, &mut bgrx, imgproc::COLOR_BGR2BGRA).unwrap();
    let profile = Restorer::load(&faceenhance::paths::models_dir().join("restore-512.onnx"), None, &bench_provider())
        .unwrap()
        .profile()
        .clone();
    let mut g = c.benchmark_group("face-roundtrip-1080p-bgrx");
    for size in [256, 512] {
        let profile = faceenhance::model::Profile { input_size: size, output_size: size, ..profile.clone() };
        let sim = align::estimate(&faces[0], Template::Ffhq5, size).unwrap();
        let weights = blend::feather_weights(size, 0.1).unwrap();
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                let mut f = frame_from_mat(&mut bgrx).unwrap();
                let mat = f.mat().unwrap();
                let crop = blend::aligned_crop(&f, Some(&mat), &sim, size).unwrap().unwrap();
                drop(mat);
                let t = faceenhance::model::restorer::to_tensor(&[&crop], &profile).unwrap();
                let out = t.index_axis(ndarray::Axis(0), 0);
                let face = faceenhance::model::restorer::weighted_from_tensor(out, &profile, &weights).unwrap();
                black_box(blend::paste(&mut f, &face, &sim, 1.0).unwrap())
            })
        });
    }
    g.finish();
}

fn bench_infer(c: &mut Criterion) {
    let mut img = frame(1280, 720);
    let face = faces_of(&mut img)[0].clone();
    let mut r = Restorer::load(&faceenhance::paths::default_model(), None, &ProviderOptions::default()).unwrap();
    let size = r.profile().input_size;
    let crop = align::crop_face(&img, &face, r.profile().template, size).unwrap();
    let mut g = c.benchmark_group("infer");
    for batch in [1usize, 4, 8] {
        let crops = vec![crop.clone(); batch];
        g.bench_function(BenchmarkId::new("restore-64", batch), |b| b.iter(|| black_box(r.infer(&crops).unwrap())));
    }
    g.finish();
}

fn bench_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for (res, (w, h)) in [("720p", (1280, 720)), ("1080p", (1920, 1080))] {
        let img = frame(w, h);
        for (name, cfg) in detectors().into_iter().filter(|(n, _)| *n != "haar") {
            // force: the 144 px faces are above what never worse lets a 64 px model touch.
            let mut e = Enhancer::new(cfg, RestoreConfig { force: true, ..Default::default() }).unwrap();
            g.bench_function(BenchmarkId::new(format!("detect+restore-{name}"), res), |b| {
                b.iter(|| {
                    let mut m = img.clone();
                    black_box(e.process(&mut frame_from_mat(&mut m).unwrap()).unwrap().1.restored)
                })
            });
        }
    }
    g.finish();
}

/// Up-scaling a 360p frame 4x: OpenCV bicubic alone, the tiled background model (a
/// Real-ESRGAN-compact-shaped network, random weights), and the whole pipeline
/// (detect + ladder + bicubic background) with never worse on and forced.
fn bench_upscale(c: &mut Criterion) {
    let mut g = c.benchmark_group("upscale-x4-360p");
    let img = frame(640, 360);
    let out = || Mat::new_rows_cols_with_default(1440, 2560, img.typ(), opencv::core::Scalar::all(0.0)).unwrap();
    g.bench_function("opencv-bicubic", |b| {
        let mut o = out();
        b.iter(|| imgproc::resize(&img, &mut o, Size::new(2560, 1440), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap())
    });
    let dir = std::env::temp_dir().join("faceenhance-bench-models");
    let model = common::compact_sr_model(&dir, "compact-x4", 4, 128, 64, 32);
    let cfg = BackgroundConfig { model: Some(model), ..Default::default() };
    let mut up = Upscaler::new(4, &cfg, &ProviderOptions::default()).unwrap();
    g.bench_function("background-model-compact-tile128", |b| {
        let (mut src, mut o) = (img.clone(), out());
        b.iter(|| up.upscale(&frame_from_mat(&mut src).unwrap(), &mut frame_from_mat(&mut o).unwrap()).unwrap())
    });
    if let Some(m) = yunet() {
        for (name, force) in [("faceenhance-yunet", false), ("faceenhance-yunet-force", true)] {
            let detect = DetectorConfig { kind: DetectorKind::YuNet, model: Some(m.clone()), ..Default::default() };
            let mut e = Enhancer::new(detect, RestoreConfig { upscale: 4, force, ..Default::default() }).unwrap();
            g.bench_function(name, |b| {
                let (mut src, mut o) = (img.clone(), out());
                b.iter(|| {
                    let f = frame_from_mat(&mut src).unwrap();
                    black_box(e.process_image_into(&f, &mut frame_from_mat(&mut o).unwrap()).unwrap().1.restored)
                })
            });
        }
    }
    g.finish();
}

/// The provider the faces-per-second group asks for (`FACEENHANCE_PROVIDER`, default auto).
fn bench_provider() -> ProviderOptions {
    let provider = std::env::var("FACEENHANCE_PROVIDER").unwrap_or_else(|_| "auto".into()).parse().unwrap();
    let fp16 = std::env::var("FACEENHANCE_FP16").is_ok_and(|v| v == "1");
    ProviderOptions { provider, fp16, ..Default::default() }
}

/// Faces per second through `Restorer::infer` (tensor conversion included) at batch 1 and
/// 8: the shipped default model and the 512 px GFPGAN-class stand-in, fp32 and fp16.
fn bench_faces_per_second(c: &mut Criterion) {
    let mut img = frame(1280, 720);
    let face = faces_of(&mut img)[0].clone();
    let dir = std::env::temp_dir().join("faceenhance-bench-models");
    let models = [
        ("restore-64-fp32", faceenhance::paths::default_model()),
        ("unet512-fp32", common::unet512_model(&dir, "unet512-fp32", false)),
        ("unet512-fp16", common::unet512_model(&dir, "unet512-fp16", true)),
    ];
    let mut g = c.benchmark_group("faces-per-second");
    for (name, path) in models {
        let mut r = match Restorer::load(&path, None, &bench_provider()) {
            Ok(r) => r,
            // fp16 convolutions have no CPU kernel in ONNX Runtime on x86: say so, go on.
            Err(e) => {
                eprintln!("{name}: not run: {e:#}");
                continue;
            }
        };
        eprintln!("{name}: {}", r.report());
        let size = r.profile().input_size;
        let crop = align::crop_face(&img, &face, r.profile().template, size).unwrap();
        for batch in [1usize, 8] {
            let crops = vec![crop.clone(); batch];
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new(name, batch), |b| b.iter(|| black_box(r.infer(&crops).unwrap())));
        }
    }
    g.finish();
}

criterion_group! {
    name = stages;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_detect, bench_align_blend, bench_face_roundtrip, bench_carry, bench_infer, bench_frame, bench_upscale, bench_faces_per_second
}
criterion_main!(stages);
