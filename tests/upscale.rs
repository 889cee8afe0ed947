//! Output up-scaling: the tiled background model, the model ladder, never worse, and the
//! end-to-end gain over bicubic inside faces at upscale 2, 4 and 8.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use common::*;
use faceenhance::align;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind, Face};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::ProviderOptions;
use faceenhance::restore::{pick_model, FaceRestorer, RestoreConfig};
use faceenhance::upscale::{BackgroundConfig, Upscaler};
use opencv::core::{Mat, Rect, Scalar, Size, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceenhance-upscale-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn blank(w: i32, h: i32) -> Mat {
    Mat::new_rows_cols_with_default(h, w, CV_8UC3, Scalar::all(0.0)).unwrap()
}

fn upscale_with(model: &std::path::Path, src: &Mat, factor: u32) -> Mat {
    let cfg = BackgroundConfig { model: Some(model.to_path_buf()), tile_pad: 4, ..Default::default() };
    let mut up = Upscaler::new(factor, &cfg, &ProviderOptions::default()).unwrap();
    let mut src = src.clone();
    let mut out = blank(src.cols() * factor as i32, src.rows() * factor as i32);
    up.upscale(&frame_from_mat(&mut src).unwrap(), &mut frame_from_mat(&mut out).unwrap()).unwrap();
    out
}

fn max_abs_diff(a: &Mat, b: &Mat) -> f64 {
    let mut d = Mat::default();
    opencv::core::absdiff(a, b, &mut d).unwrap();
    let mut max = 0.0;
    opencv::core::min_max_loc(&d.reshape(1, 0).unwrap(), None, Some(&mut max), None, None, &opencv::core::no_array())
        .unwrap();
    max
}

#[test]
fn tiled_background_model_has_no_seams() {
    let dir = tmp("tiles");
    // 100x75 frame: tiles of 32 px with a 4 px pad (24 px cores) leave partial edge tiles.
    let src = resize(&imread(&astronaut()), 100, 75);
    let tiled = upscale_with(&sr_model(&dir, "bg-tile32", 2, 32), &src, 2);
    // One tile bigger than the frame: a whole-frame run of the same model.
    let whole = upscale_with(&sr_model(&dir, "bg-tile128", 2, 128), &src, 2);
    assert_eq!((tiled.cols(), tiled.rows()), (200, 150));
    let diff = max_abs_diff(&tiled, &whole);
    assert!(diff <= 1.0, "tiled and whole-frame outputs differ by {diff} (seams)");
    // Tile borders (every 24 input px -> 48 output px): a column on each side of the seam
    // matches the whole-frame run as well as the rest does.
    for x in [47, 48, 95, 96, 143, 144] {
        let col = |m: &Mat| roi(m, x, 0, 1, 150);
        assert!(max_abs_diff(&col(&tiled), &col(&whole)) <= 1.0, "seam at x={x}");
    }
    // And the model really ran: its output is not OpenCV's bicubic enlargement.
    let mut bicubic = Mat::default();
    imgproc::resize(&src, &mut bicubic, Size::new(200, 150), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap();
    assert!(psnr_y(&tiled, &bicubic) < 45.0, "the background model's output equals bicubic");
}

#[test]
fn background_model_whose_scale_differs_is_refused() {
    let model = sr_model(&tmp("scale"), "bg-x2", 2, 32);
    let cfg = BackgroundConfig { model: Some(model), ..Default::default() };
    let err = Upscaler::new(4, &cfg, &ProviderOptions::default()).err().expect("x2 model at upscale 4").to_string();
    assert!(err.contains("its scale is 2") && err.contains("factor is 4"), "{err}");
}

#[test]
fn the_ladder_picks_by_face_size() {
    // (input, output) of restore-64, sr-x4-64, sr-x8-64.
    let ladder = [(64, 64), (16, 64), (8, 64)];
    let m = RestoreConfig::default().max_stretch as f64;
    assert_eq!(pick_model(&ladder, 64.0, 64.0, 1.0, m, None), Some((0, 1.0)));
    assert_eq!(pick_model(&ladder, 16.0, 16.0, 4.0, m, None), Some((1, 1.0)));
    assert_eq!(pick_model(&ladder, 8.0, 8.0, 8.0, m, None), Some((2, 1.0)));
    // 32 px at upscale 2: restore-64 (enlarging its input loses nothing), not sr-x4-64
    // (shrinking 32 px to 16 would throw detail away).
    assert_eq!(pick_model(&ladder, 32.0, 32.0, 2.0, m, None).map(|p| p.0), Some(0));
    // A 200 px face: restore-64 is the best there is, stretched 3.1x.
    let (i, stretch) = pick_model(&ladder, 200.0, 200.0, 1.0, m, None).unwrap();
    assert_eq!(i, 0);
    assert!((stretch - 200.0 / 64.0).abs() < 1e-9);
    // A 512 px model joins the ladder: big faces go to it.
    assert_eq!(pick_model(&[(64, 64), (512, 512)], 400.0, 400.0, 1.0, m, None).map(|p| p.0), Some(1));
    // A 36 px crop at upscale 2 (72 px out) is nearer restore-64 by cost, but that would
    // stretch it 1.125x (a never-worse limit of 1.1 would skip it): restore-96 fits, so it
    // goes there.
    let with_96 = [(64, 64), (96, 96)];
    assert_eq!(pick_model(&with_96, 36.0, 36.0, 2.0, f64::INFINITY, None).map(|p| p.0), Some(0));
    assert_eq!(pick_model(&with_96, 36.0, 36.0, 2.0, 1.1, None).map(|p| p.0), Some(1));
}

/// The clean high-resolution scene: faces from real pictures scaled so that their aligned
/// crop is `crop` px, pasted at known places on a smooth background. Returns the scene and
/// the faces as YuNet finds them on it.
fn scene(crop: f64, cells: (i32, i32)) -> (Mat, Vec<Face>) {
    let mut det = yunet_detector(10.0);
    let mut sources = vec![imread(&astronaut())];
    sources.extend(frames_of("carphone_pristine", &[5, 45, 85]));
    let cell = (crop * 1.4).ceil() as i32;
    let (w, h) = (cell * cells.0, cell * cells.1);
    // Background: a smooth colour gradient (what the faces are pasted onto).
    let mut canvas = blank(w, h);
    for y in 0..h {
        for x in 0..w {
            let px = canvas.at_2d_mut::<opencv::core::Vec3b>(y, x).unwrap();
            *px = opencv::core::Vec3b::from([(60 + 120 * x / w) as u8, (90 + 60 * y / h) as u8, 140]);
        }
    }
    for (i, src) in sources.iter().enumerate() {
        let mut s = src.clone();
        let faces = det.detect_frame(&frame_from_mat(&mut s).unwrap()).unwrap();
        let face = faces.iter().max_by(|a, b| a.bbox[2].total_cmp(&b.bbox[2])).expect("a face in each source").clone();
        let unit = align::estimate(&face, align::Template::Ffhq5, 512).unwrap();
        let k = crop / (512.0 / unit.scale());
        let scaled = resize(src, (src.cols() as f64 * k).round() as i32, (src.rows() as f64 * k).round() as i32);
        let [fx, fy, fw, fh] = face.clone().scaled(k as f32).bbox;
        let (cx, cy) = ((fx + fw / 2.0) as i32, (fy + fh / 2.0) as i32);
        // Mirror the picture's borders where the cell reaches past them.
        let mut padded = Mat::default();
        let b = opencv::core::BORDER_REFLECT_101;
        opencv::core::copy_make_border(&scaled, &mut padded, cell, cell, cell, cell, b, Scalar::all(0.0)).unwrap();
        let patch = roi(&padded, cx - cell / 2 + cell, cy - cell / 2 + cell, cell, cell);
        let (col, row) = (i as i32 % cells.0, i as i32 / cells.0);
        let mut dst = Mat::roi_mut(&mut canvas, Rect::new(col * cell, row * cell, cell, cell)).unwrap();
        patch.copy_to(&mut dst).unwrap();
    }
    let mut c = canvas.clone();
    let faces = det.detect_frame(&frame_from_mat(&mut c).unwrap()).unwrap();
    (canvas, faces)
}

fn jpeg(m: &Mat, quality: i32) -> Mat {
    let mut buf = opencv::core::Vector::<u8>::new();
    let params = opencv::core::Vector::from_slice(&[opencv::imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
    opencv::imgcodecs::imencode(".jpg", m, &mut buf, &params).unwrap();
    opencv::imgcodecs::imdecode(&buf, opencv::imgcodecs::IMREAD_COLOR).unwrap()
}

fn shipped(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| faceenhance::paths::models_dir().join(format!("{n}.onnx"))).collect()
}

/// PSNR and SSIM of the pipeline and of bicubic inside the face boxes, summed over faces.
fn gain(factor: u32, crop: f64, models: &[&str], detect_on_input: bool) -> (f64, f64, f64, f64) {
    let (clean, hr_faces) = scene(crop * factor as f64, (2, 2));
    assert!(hr_faces.len() >= 3, "the clean scene has {} faces", hr_faces.len());
    let k = factor as i32;
    let (lw, lh) = (clean.cols() / k, clean.rows() / k);
    let clean = roi(&clean, 0, 0, lw * k, lh * k);
    // The documented degradation: lens blur (Gaussian, sigma = factor / 4 output px), area
    // down-scaling by the factor, JPEG at quality 70 (a CCTV recorder or a web stream).
    let mut blurred = Mat::default();
    let sigma = factor as f64 / 4.0;
    imgproc::gaussian_blur(&clean, &mut blurred, Size::new(0, 0), sigma, sigma, opencv::core::BORDER_REFLECT_101)
        .unwrap();
    let mut input = jpeg(&resize(&blurred, lw, lh), 70);
    let faces: Vec<Face> = if detect_on_input {
        let mut det = yunet_detector(8.0);
        let found = det.detect_frame(&frame_from_mat(&mut input.clone()).unwrap()).unwrap();
        assert!(found.len() + 1 >= hr_faces.len(), "faces found in the {lw}x{lh} input: {found:?}");
        found
    } else {
        // Below what detectors find: faces located on the clean frame, scaled down.
        hr_faces.iter().map(|f| f.clone().scaled(1.0 / factor as f32)).collect()
    };
    let cfg = RestoreConfig { models: shipped(models), upscale: factor, ..Default::default() };
    let mut restorer = FaceRestorer::new(cfg).unwrap();
    let mut out = blank(lw * k, lh * k);
    let stats = restorer
        .restore_into(&frame_from_mat(&mut input).unwrap(), &mut frame_from_mat(&mut out).unwrap(), &faces)
        .unwrap();
    assert_eq!(stats.restored, faces.len(), "x{factor}: {stats:?}");
    let mut bicubic = Mat::default();
    imgproc::resize(&input, &mut bicubic, out.size().unwrap(), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap();

    // Outside the pasted regions the output is the background up-scaler's, bit for bit.
    assert_eq!(
        max_diff_outside(&out, &bicubic, &stats.regions),
        0.0,
        "x{factor}: pixels outside the faces differ from bicubic"
    );

    // Scored: the faces the pipeline was given (a face the detector missed is bicubic).
    let scored: Vec<&Face> = hr_faces
        .iter()
        .filter(|h| faces.iter().any(|f| iou(f.clone().scaled(factor as f32).bbox, h.bbox) > 0.3))
        .collect();
    let (mut p_model, mut p_bic, mut s_model, mut s_bic) = (0.0, 0.0, 0.0, 0.0);
    for f in &scored {
        let [x, y, w, h] = f.bbox.map(|v| v.round() as i32);
        let (x, y) = (x.max(0), y.max(0));
        let (w, h) = (w.min(out.cols() - x), h.min(out.rows() - y));
        let crop = |m: &Mat| roi(m, x, y, w, h);
        p_model += psnr_y(&crop(&out), &crop(&clean));
        p_bic += psnr_y(&crop(&bicubic), &crop(&clean));
        s_model += ssim_y(&crop(&out), &crop(&clean));
        s_bic += ssim_y(&crop(&bicubic), &crop(&clean));
    }
    let n = scored.len() as f64;
    let r = (p_model / n, p_bic / n, s_model / n, s_bic / n);
    println!(
        "x{factor}: {} of {} faces found, crop {crop} px in the input; inside faces PSNR {:.2} dB vs bicubic {:.2} (+{:.2}), \
         SSIM {:.4} vs {:.4} (+{:.4}); models {:?}",
        scored.len(),
        hr_faces.len(),
        r.0,
        r.1,
        r.0 - r.1,
        r.2,
        r.3,
        r.2 - r.3,
        stats.per_model
    );
    r
}

#[test]
fn upscale_2_beats_bicubic_inside_faces() {
    // 32 px crops (faces ~16 px wide) in the input: restore-64 at 64 px in the output.
    let (p, pb, s, sb) = gain(2, 32.0, &["restore-64", "sr-x4-64"], true);
    // Measured +0.50 dB / +0.022 (README); the margins catch a regression.
    assert!(p - pb > 0.25 && s - sb > 0.01, "x2 gain {:.2} dB / {:.4}", p - pb, s - sb);
}

#[test]
fn upscale_4_beats_bicubic_inside_faces() {
    // 16 px crops (faces ~8 px wide): sr-x4-64. YuNet finds 3 of the 4 faces on the 45 px
    // input, but its landmarks on 8 px faces are a pixel or so off, which eats most of the
    // gain (measured +0.03 dB / +0.011): still not worse than bicubic.
    let (p, pb, s, sb) = gain(4, 16.0, &["restore-64", "sr-x4-64"], true);
    assert!(p - pb > -0.15 && s - sb > 0.0, "x4 with detected faces: {:.2} dB / {:.4}", p - pb, s - sb);
    // With the faces located on the clean frame (exact landmarks): measured +0.38 / +0.041.
    let (p, pb, s, sb) = gain(4, 16.0, &["restore-64", "sr-x4-64"], false);
    assert!(p - pb > 0.2 && s - sb > 0.02, "x4 gain {:.2} dB / {:.4}", p - pb, s - sb);
}

#[test]
fn upscale_8_beats_bicubic_inside_faces() {
    // 8 px crops (faces ~4 px wide, below any detector: located on the clean frame):
    // sr-x8-64, from the whole shipped ladder.
    let (p, pb, s, sb) = gain(8, 8.0, &["restore-64", "sr-x4-64", "sr-x8-64"], false);
    // Measured +0.43 dB / +0.119.
    assert!(p - pb > 0.2 && s - sb > 0.05, "x8 gain {:.2} dB / {:.4}", p - pb, s - sb);
}

/// Frames `numbers` (from 0) of a cached clip. Each clip is decoded once per test process,
/// under a lock, so tests running in parallel never read a PNG another one is writing.
fn frames_of(clip: &str, numbers: &[u32]) -> Vec<Mat> {
    static DECODED: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut decoded = DECODED.lock().unwrap();
    let dir = decoded.entry(clip.to_string()).or_insert_with(|| {
        let dir = tmp(clip);
        let status = std::process::Command::new("gst-launch-1.0")
            .args(["-q", "filesrc"])
            .arg(format!("location={}", cached(&format!("data/{clip}.mp4")).display()))
            .args(["!", "decodebin", "!", "videoconvert", "!", "pngenc", "!", "multifilesink"])
            .arg(format!("location={}/%03d.png", dir.display()))
            .status()
            .unwrap();
        assert!(status.success());
        dir
    });
    numbers.iter().map(|n| imread(&dir.join(format!("{n:03}.png")))).collect()
}

fn yunet_detector(min_face_size: f32) -> Detector {
    Detector::new(DetectorConfig {
        kind: DetectorKind::YuNet,
        model: Some(yunet()),
        min_face_size,
        ..Default::default()
    })
    .unwrap()
}

/// The demo's clip: carphone's faces are 84-92 px crops, 1.3-1.45x restore-64's output.
/// Against the pristine clip, restoring them anyway (max-stretch 1.5) is better than the
/// compressed input inside the face: what `scripts/demo.sh` relies on.
#[test]
fn restoring_carphone_at_up_to_1_5x_stretch_beats_the_compressed_input() {
    let numbers = [10, 30, 50, 70, 90, 110];
    let (distorted, pristine) = (frames_of("carphone_distorted", &numbers), frames_of("carphone_pristine", &numbers));
    let mut det = yunet_detector(DetectorConfig::default().min_face_size);
    let cfg = RestoreConfig { models: shipped(&["restore-64"]), max_stretch: 1.5, ..Default::default() };
    let mut restorer = FaceRestorer::new(cfg).unwrap();
    let (mut p_in, mut p_out, mut s_in, mut s_out, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (d, p) in distorted.iter().zip(&pristine) {
        let mut frame = d.clone();
        let faces = det.detect_frame(&frame_from_mat(&mut frame.clone()).unwrap()).unwrap();
        assert_eq!(faces.len(), 1);
        let stats = restorer.restore(&mut frame_from_mat(&mut frame).unwrap(), &faces).unwrap();
        assert_eq!(stats.restored, 1, "{stats:?}");
        let [x, y, w, h] = faces[0].bbox.map(|v| v.round() as i32);
        let (x, y) = (x.max(0), y.max(0));
        let (w, h) = (w.min(d.cols() - x), h.min(d.rows() - y));
        let c = |m: &Mat| roi(m, x, y, w, h);
        p_in += psnr_y(&c(d), &c(p));
        p_out += psnr_y(&c(&frame), &c(p));
        s_in += ssim_y(&c(d), &c(p));
        s_out += ssim_y(&c(&frame), &c(p));
        n += 1.0;
    }
    println!(
        "carphone, inside the face vs pristine: restored {:.2} dB / {:.4}, compressed input {:.2} dB / {:.4}",
        p_out / n,
        s_out / n,
        p_in / n,
        s_in / n
    );
    assert!(p_out > p_in && s_out > s_in, "restoring at 1.3-1.45x stretch made carphone's face worse");
}
