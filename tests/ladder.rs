//! The shipped ladder with the defaults: a model for every face size, and a measured gain on
//! faces the models never trained on (held-out London people, real photos).

mod common;
#[path = "common/truth.rs"]
mod truth;

use common::*;
use faceenhance::align;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind, Face};
use faceenhance::enhancer::Enhancer;
use faceenhance::frame::frame_from_mat;
use faceenhance::model::identity::{self, IdentityNet};
use faceenhance::restore::{pick_model, sharpness, FaceRestorer, RestoreConfig};
use opencv::core::{Mat, Rect, Scalar, Size, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;
use truth::ground_truth;

/// (input size, output size) of every model of the default ladder, smallest first (the
/// first opens and warms up at start: by file name it was restore-1024, +150 MB).
fn default_ladder() -> Vec<(i32, i32)> {
    let sizes = FaceRestorer::new(RestoreConfig::default()).unwrap().model_sizes();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "not smallest first: {sizes:?}");
    sizes
}

/// A ladder of two shipped rungs copied into a folder, the second one open to damage.
fn two_rungs(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("faceenhance-lazy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["restore-96", "restore-256"] {
        for ext in ["onnx", "toml"] {
            std::fs::copy(repo().join(format!("models/{name}.{ext}")), dir.join(format!("{name}.{ext}"))).unwrap();
        }
    }
    // models are taken smallest first: restore-96 (opened at start), then restore-256
    let second = dir.join("restore-256.onnx");
    (dir, second)
}

#[test]
fn rungs_open_their_sessions_on_their_first_face_and_damage_is_found_at_start() {
    let (dir, second) = two_rungs("ok");
    let config = RestoreConfig { models: vec![dir.clone()], ..Default::default() };
    let mut restorer = FaceRestorer::new(config.clone()).unwrap();
    assert_eq!(restorer.model_names(), ["restore-96", "restore-256"]);
    assert_eq!(restorer.restorers().count(), 1, "only the first rung is opened at start");
    // a face with a ~260 px crop (64 px between the eyes) needs restore-256: its session opens on that frame
    let mut frame = resize(&imread(&astronaut()), 512, 512);
    let face = Face {
        bbox: [200.0, 200.0, 112.0, 140.0],
        landmarks: Some([[224.0, 240.0], [288.0, 240.0], [256.0, 276.0], [230.0, 312.0], [282.0, 312.0]]),
        eyes: None,
        score: 0.99,
        id: 0,
    };
    let stats = restorer.restore(&mut frame_from_mat(&mut frame).unwrap(), &[face]).unwrap();
    assert_eq!(stats.restored, 1);
    assert_eq!(restorer.restorers().count(), 2);

    // damage found before any face: a truncated file, a profile naming another output
    let whole = std::fs::read(&second).unwrap();
    std::fs::write(&second, &whole[..whole.len() / 2]).unwrap();
    let err = format!("{:#}", FaceRestorer::new(config.clone()).err().expect("truncated model refused"));
    assert!(err.contains("restore-256.onnx") && err.contains("not a readable ONNX model"), "{err}");
    std::fs::write(&second, &whole).unwrap();
    let toml = dir.join("restore-256.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, text.replace("output = \"output\"", "output = \"restored\"")).unwrap();
    let err = format!("{:#}", FaceRestorer::new(config).err().expect("wrong output name refused"));
    assert!(err.contains("restore-256.onnx") && err.contains("'restored'"), "{err}");
}

#[test]
fn no_face_from_16_to_1280_px_is_skipped_for_want_of_a_model() {
    let sizes = default_ladder();
    let max_stretch = RestoreConfig::default().max_stretch as f64;
    for upscale in [1.0, 2.0, 4.0] {
        // every aligned crop whose output is 16-1280 px (1.25 x the largest rung, 1024)
        let mut s_in = 16.0 / upscale;
        while s_in * upscale <= 1280.0 {
            let (rung, stretch) = pick_model(&sizes, s_in, s_in, upscale, max_stretch, None).unwrap();
            assert!(
                stretch <= max_stretch,
                "a {s_in:.1} px crop at upscale {upscale}: best model {:?} stretches it {stretch:.2}x (ladder {sizes:?})",
                sizes[rung]
            );
            s_in *= 1.02;
        }
    }
    // upscale 2 and 4 take 32-64 px crops to a 128 px model, not a stretched 64 px one:
    // the super-resolution rungs, 32 -> 128 px at upscale 4 and 64 -> 128 px at upscale 2
    let max_stretch = RestoreConfig::default().max_stretch as f64;
    for (s_in, upscale, model_in) in [(32.0, 4.0, 32), (64.0, 2.0, 64)] {
        let (rung, stretch) = pick_model(&sizes, s_in, s_in, upscale, max_stretch, None).unwrap();
        assert_eq!(sizes[rung], (model_in, 128), "{s_in} px at x{upscale}: {:?}", sizes[rung]);
        assert!((stretch - 1.0).abs() < 1e-9);
    }
}

/// The validation people of `london-faces` (the last 10 % of the sorted files, as the
/// training crate's `prepare` splits them): no model saw them.
fn london_validation() -> Vec<Mat> {
    let dir = shared().join("data/london-faces");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let n_val = (files.len() as f64 * 0.1).round() as usize;
    files[files.len() - n_val..].iter().map(|p| imread(p)).collect()
}

/// A 1280x720 frame with three faces whose aligned crops are 96, 192 and 384 px, on a smooth
/// background, and the boxes of the faces.
fn three_sizes(people: &[Mat], det: &mut Detector) -> (Mat, Vec<[i32; 4]>) {
    compose(people, det, [96.0, 192.0, 384.0])
}

/// [`three_sizes`] with the three crop sizes given.
fn compose(people: &[Mat], det: &mut Detector, crops: [f64; 3]) -> (Mat, Vec<[i32; 4]>) {
    let mut canvas = Mat::new_rows_cols_with_default(720, 1280, CV_8UC3, Scalar::all(0.0)).unwrap();
    for y in 0..720 {
        for x in 0..1280 {
            *canvas.at_2d_mut::<opencv::core::Vec3b>(y, x).unwrap() =
                opencv::core::Vec3b::from([(70 + 100 * x / 1280) as u8, (100 + 50 * y / 720) as u8, 150]);
        }
    }
    let mut boxes = Vec::new();
    let mut left = 10;
    for (src, crop) in people.iter().zip(crops) {
        let mut s = src.clone();
        let faces = det.detect_frame(&frame_from_mat(&mut s).unwrap()).unwrap();
        let face = faces.iter().max_by(|a, b| a.bbox[2].total_cmp(&b.bbox[2])).expect("a face").clone();
        let unit = align::estimate(&face, align::Template::Ffhq5, 512).unwrap();
        let k = crop / (512.0 / unit.scale());
        let scaled = resize(src, (src.cols() as f64 * k).round() as i32, (src.rows() as f64 * k).round() as i32);
        let [fx, fy, fw, fh] = face.scaled(k as f32).bbox;
        let cell = (crop * 1.3) as i32;
        let (cx, cy) = ((fx + fw / 2.0) as i32, (fy + fh / 2.0) as i32);
        let (x0, y0) = ((cx - cell / 2).clamp(0, scaled.cols() - cell), (cy - cell / 2).clamp(0, scaled.rows() - cell));
        let patch = roi(&scaled, x0, y0, cell, cell);
        let top = 360 - cell / 2;
        let mut dst = Mat::roi_mut(&mut canvas, Rect::new(left, top, cell, cell)).unwrap();
        patch.copy_to(&mut dst).unwrap();
        boxes.push([left + (fx as i32 - x0), top + (fy as i32 - y0), fw as i32, fh as i32]);
        left += cell + 20;
    }
    (canvas, boxes)
}

/// Blur (sigma 1), 2x down and back up, Gaussian noise (sigma 6), JPEG at quality 40: an
/// archive scan or a call frame.
fn degrade(clean: &Mat) -> Mat {
    let mut blurred = Mat::default();
    imgproc::gaussian_blur(clean, &mut blurred, Size::new(0, 0), 1.0, 1.0, opencv::core::BORDER_REFLECT_101).unwrap();
    let half = resize(&blurred, clean.cols() / 2, clean.rows() / 2);
    let mut up = Mat::default();
    imgproc::resize(&half, &mut up, clean.size().unwrap(), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap();
    noise_and_jpeg(&up, 7, 6.0, 40)
}

/// Gaussian noise (seeded, `sigma` grey levels), then a JPEG round trip at `quality`.
fn noise_and_jpeg(m: &Mat, seed: i32, sigma: f64, quality: i32) -> Mat {
    let mut noise =
        Mat::new_rows_cols_with_default(m.rows(), m.cols(), opencv::core::CV_16SC3, Scalar::all(0.0)).unwrap();
    opencv::core::set_rng_seed(seed).unwrap();
    opencv::core::randn(&mut noise, &Scalar::all(0.0), &Scalar::all(sigma)).unwrap();
    let (mut wide, mut sum, mut noisy) = (Mat::default(), Mat::default(), Mat::default());
    m.convert_to(&mut wide, opencv::core::CV_16SC3, 1.0, 0.0).unwrap();
    opencv::core::add(&wide, &noise, &mut sum, &opencv::core::no_array(), -1).unwrap();
    sum.convert_to(&mut noisy, CV_8UC3, 1.0, 0.0).unwrap();
    let mut buf = opencv::core::Vector::<u8>::new();
    let params = opencv::core::Vector::from_slice(&[opencv::imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
    opencv::imgcodecs::imencode(".jpg", &noisy, &mut buf, &params).unwrap();
    opencv::imgcodecs::imdecode(&buf, opencv::imgcodecs::IMREAD_COLOR).unwrap()
}

/// Descriptor distance to the clean face of the degraded input and of the restoration, the
/// face aligned where `face` (found on the clean frame) says.
fn identity_to_truth(id: &mut IdentityNet, face: &Face, clean: &Mat, input: &Mat, out: &Mat) -> (f32, f32) {
    let crops: Vec<Mat> =
        [clean, input, out].iter().map(|m| align::crop_face(m, face, align::Template::Ffhq5, 256).unwrap()).collect();
    let d = id.descriptors(&crops).unwrap();
    (identity::distance(&d[1], &d[0]), identity::distance(&d[2], &d[0]))
}

fn crop(m: &Mat, b: [i32; 4]) -> Mat {
    roi(m, b[0], b[1], b[2], b[3])
}

#[test]
fn default_ladder_restores_unseen_faces_at_three_sizes() {
    let people = london_validation();
    assert!(people.len() >= 6, "{} validation photos", people.len());
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    // The defaults a user gets: detector auto, the shipped ladder, never worse on.
    let mut e = Enhancer::new(DetectorConfig::default(), RestoreConfig::default()).unwrap();
    let mut id = IdentityNet::load(&identity::default_model(), &Default::default()).unwrap();
    let (mut gains, mut n_restored) = (Vec::new(), 0);
    // descriptor distance to the clean face: of the degraded input, of the restoration
    let mut dist: Vec<(f32, f32)> = Vec::new();
    // neutral photos of different people (files alternate neutral / smiling)
    let neutral: Vec<Mat> = people.iter().step_by(2).cloned().collect();
    for group in neutral.chunks(3).filter(|g| g.len() == 3) {
        let (clean, boxes) = three_sizes(group, &mut det);
        let input = degrade(&clean);
        let mut out = input.clone();
        let (faces, stats) = e.process_image(&mut frame_from_mat(&mut out).unwrap()).unwrap();
        n_restored += stats.restored;
        // identity, each face aligned with the landmarks found on the clean frame
        let clean_faces = det.detect_frame(&frame_from_mat(&mut clean.clone()).unwrap()).unwrap();
        for b in &boxes {
            let f =
                clean_faces.iter().find(|f| iou(f.bbox, b.map(|v| v as f32)) > 0.3).expect("face on the clean frame");
            dist.push(identity_to_truth(&mut id, f, &clean, &input, &out));
        }
        // Far from the faces (outside every pasted region), the frame is untouched.
        assert_eq!(max_diff_outside(&out, &input, &stats.regions), 0.0, "pixels far from faces changed");
        for (b, crop_px) in boxes.iter().zip([96, 192, 384]) {
            let found = faces.iter().any(|f: &Face| iou(f.bbox, b.map(|v| v as f32)) > 0.3);
            let (p_in, p_out) =
                (psnr_y(&crop(&input, *b), &crop(&clean, *b)), psnr_y(&crop(&out, *b), &crop(&clean, *b)));
            println!(
                "{crop_px} px crop: detected {found}, PSNR degraded {p_in:.2} dB, restored {p_out:.2} dB ({:+.2}); models {:?}",
                p_out - p_in,
                stats.per_model
            );
            gains.push(p_out - p_in);
        }
    }
    let mean = gains.iter().sum::<f64>() / gains.len() as f64;
    let worst = gains.iter().copied().fold(f64::INFINITY, f64::min);
    println!("{} faces, {n_restored} restored: mean gain {mean:+.2} dB, worst {worst:+.2} dB", gains.len());
    assert!(n_restored == gains.len(), "{n_restored} of {} faces restored", gains.len());
    let (d_in, d_out) = dist.iter().fold((0.0, 0.0), |(a, b), (i, o)| (a + i, b + o));
    let closer = dist.iter().filter(|(i, o)| o < i).count();
    println!(
        "identity (descriptor distance to the clean face): degraded {:.3}, restored {:.3}, closer on {closer} of {}; {dist:?}",
        d_in / dist.len() as f32,
        d_out / dist.len() as f32,
        dist.len()
    );
    // Issue 29's target: restored faces no farther from who they are than the degraded
    // input. Measured with restore-face-256's weights on the 192-512 rungs: 0.251 vs 0.250
    // (restore-96 moved the 96 px faces by -0.003 and +0.016); before them 0.257. With the
    // ladder picking by detail (the blurred 96 px faces to sr-x2-128): 0.232, closer on 4
    // of 6. Held here within 0.005 per face on average.
    let n = dist.len() as f32;
    assert!(
        d_out / n <= d_in / n + 0.005,
        "restored faces moved away from the truth's identity: {:.3} vs {:.3} on average",
        d_out / n,
        d_in / n
    );
    // Issue 13's target; measured +1.42 dB (two frames of three people, per face +0.86 to
    // +1.92; models/restore-fc.md).
    assert!(mean >= 1.0, "mean gain inside faces {mean:+.2} dB (target +1.0, measured +1.42)");
    assert!(worst >= -0.3, "a face lost {worst:+.2} dB");
}

#[test]
fn default_ladder_changes_the_hand_marked_faces_of_real_photos() {
    let mut e = Enhancer::new(DetectorConfig::default(), RestoreConfig::default()).unwrap();
    let (mut changed, mut total) = (0, 0);
    for (path, truth) in ground_truth() {
        let before = imread(&path);
        let mut after = before.clone();
        e.process_image(&mut frame_from_mat(&mut after).unwrap()).unwrap();
        for t in &truth {
            // the centre half of the marked box
            let b = [(t[0] + t[2] / 4.0) as i32, (t[1] + t[3] / 4.0) as i32, (t[2] / 2.0) as i32, (t[3] / 2.0) as i32];
            let mut d = Mat::default();
            opencv::core::absdiff(&crop(&before, b), &crop(&after, b), &mut d).unwrap();
            let mean = opencv::core::mean_def(&d).unwrap();
            let m = (mean[0] + mean[1] + mean[2]) / 3.0;
            println!("{} {t:?}: mean change {m:.2}", path.display());
            total += 1;
            changed += usize::from(m > 0.5);
        }
    }
    println!("{changed} of {total} hand-marked faces changed");
    assert!(changed * 10 >= total * 9, "{changed} of {total} hand-marked faces changed");
}

/// Upscale 4 on faces the models never saw: held-out London people whose aligned crops are
/// 128 px in a clean 1280x720 frame, shrunk 4x (area), with noise (sigma 3) and JPEG 70:
/// 32 px crops in the 320x180 input, which the default ladder gives to sr-x4-128. Inside the
/// faces the 4x output beats bicubic up-scaling of the input, with the faces detected.
#[test]
fn default_ladder_super_resolves_unseen_32_px_faces_at_upscale_4() {
    let people = london_validation();
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    let detect = DetectorConfig { min_face_size: 8.0, ..Default::default() };
    let mut e = Enhancer::new(detect, RestoreConfig { upscale: 4, ..Default::default() }).unwrap();
    let neutral: Vec<Mat> = people.iter().step_by(2).cloned().collect();
    let (mut gains, mut found) = (Vec::new(), 0);
    for group in neutral.chunks(3).filter(|g| g.len() == 3) {
        let (clean, boxes) = compose(group, &mut det, [128.0, 128.0, 128.0]);
        let mut input = noise_and_jpeg(&resize(&clean, 320, 180), 11, 3.0, 70);
        let mut bicubic = Mat::default();
        imgproc::resize(&input, &mut bicubic, Size::new(1280, 720), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap();
        let mut out = Mat::new_rows_cols_with_default(720, 1280, CV_8UC3, Scalar::all(0.0)).unwrap();
        let (faces, stats) =
            e.process_image_into(&frame_from_mat(&mut input).unwrap(), &mut frame_from_mat(&mut out).unwrap()).unwrap();
        for b in &boxes {
            let small_box = b.map(|v| v as f32 / 4.0);
            let hit = faces.iter().any(|f: &Face| iou(f.bbox, small_box) > 0.3);
            found += usize::from(hit);
            let (p_bic, p_out) =
                (psnr_y(&crop(&bicubic, *b), &crop(&clean, *b)), psnr_y(&crop(&out, *b), &crop(&clean, *b)));
            println!(
                "32 px crop x4: detected {hit}, bicubic {p_bic:.2} dB, ladder {p_out:.2} dB ({:+.2}); models {:?}",
                p_out - p_bic,
                stats.per_model
            );
            gains.push(p_out - p_bic);
        }
    }
    let mean = gains.iter().sum::<f64>() / gains.len() as f64;
    println!("{found} of {} faces detected; mean gain over bicubic inside faces {mean:+.2} dB", gains.len());
    assert_eq!(found, gains.len(), "faces missed");
    // Issue 13's rungs target +1.5 dB over bicubic on validation; end to end through the
    // detector this measured +1.88 (per face +0.86 to +2.44): held at +1.0.
    assert!(mean >= 1.0, "mean gain {mean:+.2} dB over bicubic (measured +1.88)");
}

/// Upscale 2 on faces the models never saw: the same held-out London people with 128 px
/// crops, shrunk 2x with noise and JPEG: 64 px crops in the 640x360 input, which the default
/// ladder gives to sr-x2-128 (before that rung, to restore-128 on the bicubic crop). Inside
/// the faces the 2x output beats bicubic up-scaling of the input, with the faces detected.
#[test]
fn default_ladder_super_resolves_unseen_64_px_faces_at_upscale_2() {
    let people = london_validation();
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    let mut e = Enhancer::new(DetectorConfig::default(), RestoreConfig { upscale: 2, ..Default::default() }).unwrap();
    let names = e.restorer.model_names();
    let neutral: Vec<Mat> = people.iter().step_by(2).cloned().collect();
    let (mut gains, mut found, mut by_sr) = (Vec::new(), 0, 0);
    for group in neutral.chunks(3).filter(|g| g.len() == 3) {
        let (clean, boxes) = compose(group, &mut det, [128.0, 128.0, 128.0]);
        let mut input = noise_and_jpeg(&resize(&clean, 640, 360), 11, 3.0, 70);
        let mut bicubic = Mat::default();
        imgproc::resize(&input, &mut bicubic, Size::new(1280, 720), 0.0, 0.0, imgproc::INTER_CUBIC).unwrap();
        let mut out = Mat::new_rows_cols_with_default(720, 1280, CV_8UC3, Scalar::all(0.0)).unwrap();
        let (faces, stats) =
            e.process_image_into(&frame_from_mat(&mut input).unwrap(), &mut frame_from_mat(&mut out).unwrap()).unwrap();
        by_sr += stats
            .per_model
            .iter()
            .zip(&names)
            .filter(|(_, n)| n.as_str() == "sr-x2-128")
            .map(|(k, _)| k)
            .sum::<usize>();
        for b in &boxes {
            let small_box = b.map(|v| v as f32 / 2.0);
            let hit = faces.iter().any(|f: &Face| iou(f.bbox, small_box) > 0.3);
            found += usize::from(hit);
            let (p_bic, p_out) =
                (psnr_y(&crop(&bicubic, *b), &crop(&clean, *b)), psnr_y(&crop(&out, *b), &crop(&clean, *b)));
            println!(
                "64 px crop x2: detected {hit}, bicubic {p_bic:.2} dB, ladder {p_out:.2} dB ({:+.2})",
                p_out - p_bic
            );
            gains.push(p_out - p_bic);
        }
    }
    let mean = gains.iter().sum::<f64>() / gains.len() as f64;
    println!(
        "{found} of {} faces detected, {by_sr} to sr-x2-128; mean gain over bicubic inside faces {mean:+.2} dB",
        gains.len()
    );
    assert_eq!(found, gains.len(), "faces missed");
    assert_eq!(by_sr, gains.len(), "every 64 px face at upscale 2 goes to sr-x2-128");
    // measured +1.23 (per face +0.92 to +1.74; restore-128 on the bicubic crop, the rung
    // before sr-x2-128: +0.31): held at +0.8
    assert!(mean >= 0.8, "mean gain {mean:+.2} dB over bicubic (measured +1.23)");
}

/// Faces close to a camera (a face filling a 1400 px frame: aligned crops of about
/// 780-970 px, above 1.25 x 512) go to the 768 and 1024 px rungs (the same fully
/// convolutional net, restore-fc's weights): held-out London people, degraded as a call
/// frame is. Restoring at 512 and enlarging what the model changed onto the face was
/// measured too and lost (-0.39 dB on these faces; the 512 px crop's aliasing and JPEG
/// corrections do not fit the full-size face), and so did the face prior's weights of
/// restore-512 at these sizes (+0.27 dB, skin darkened).
#[test]
fn faces_close_to_the_camera_go_to_the_768_and_1024_rungs() {
    let people: Vec<Mat> = london_validation().into_iter().step_by(2).map(|m| resize(&m, 1400, 1400)).collect();
    let mut e = Enhancer::new(DetectorConfig::default(), RestoreConfig::default()).unwrap();
    let outputs: Vec<i32> =
        FaceRestorer::new(RestoreConfig::default()).unwrap().model_sizes().iter().map(|s| s.1).collect();
    let mut id = IdentityNet::load(&identity::default_model(), &Default::default()).unwrap();
    let (mut gains, mut dist) = (Vec::new(), Vec::new());
    for clean in &people {
        let input = degrade(clean);
        let mut out = input.clone();
        let (faces, stats) = e.process_image(&mut frame_from_mat(&mut out).unwrap()).unwrap();
        assert_eq!((faces.len(), stats.restored, stats.skipped), (1, 1, 0), "{stats:?}");
        let face = faces[0].clone();
        let side = 512.0 / align::estimate(&face, align::Template::Ffhq5, 512).unwrap().scale();
        assert!(side > 640.0, "a {side:.0} px crop: not a close face");
        let rung = outputs[stats.assigned[0].unwrap()];
        assert!(rung >= 768, "a {side:.0} px crop went to the {rung} px rung");
        assert_eq!(max_diff_outside(&out, &input, &stats.regions), 0.0, "pixels far from the face changed");
        let b = face.bbox.map(|v| v as i32);
        let (p_in, p_out) = (psnr_y(&crop(&input, b), &crop(clean, b)), psnr_y(&crop(&out, b), &crop(clean, b)));
        dist.push(identity_to_truth(&mut id, &face, clean, &input, &out));
        println!(
            "{side:.0} px crop, {rung} px rung: PSNR degraded {p_in:.2} dB, restored {p_out:.2} dB ({:+.2}), {:.0} ms",
            p_out - p_in,
            stats.infer_ms
        );
        gains.push(p_out - p_in);
    }
    let n = gains.len() as f64;
    let mean = gains.iter().sum::<f64>() / n;
    let worst = gains.iter().copied().fold(f64::INFINITY, f64::min);
    let (d_in, d_out) = dist.iter().fold((0.0, 0.0), |(a, b), (i, o)| (a + i, b + o));
    println!(
        "{} faces: mean gain {mean:+.2} dB, worst {worst:+.2}; identity to the truth: degraded {:.3}, restored {:.3}",
        gains.len(),
        d_in / n as f32,
        d_out / n as f32
    );
    // measured: mean +0.83 dB (+0.62 to +1.19), identity 0.052 vs the input's 0.059
    assert!(mean >= 0.5, "mean gain {mean:+.2} dB (measured +0.83)");
    assert!(worst >= 0.2, "a close face gained only {worst:+.2} dB (measured at least +0.62)");
    assert!(d_out <= d_in + 0.005 * n as f32, "moved away from who they are: {d_out:.3} vs {d_in:.3}");
}

/// Energy of the 4-neighbour Laplacian of the luma (the training crate's HF measure).
fn hf_energy(m: &Mat) -> f64 {
    let (mut g, mut l, mut sq) = (Mat::default(), Mat::default(), Mat::default());
    imgproc::cvt_color(m, &mut g, imgproc::COLOR_BGR2GRAY, 0).unwrap();
    imgproc::laplacian(&g, &mut l, opencv::core::CV_64F, 1, 1.0, 0.0, opencv::core::BORDER_REFLECT_101).unwrap();
    opencv::core::multiply(&l, &l, &mut sq, 1.0, -1).unwrap();
    opencv::core::sum_elems(&sq).unwrap()[0]
}

/// A held-out London person, scaled so that the face's aligned crop is `crop` px, and the
/// face found on it.
fn person_at(src: &Mat, det: &mut Detector, crop: f64) -> (Mat, Face) {
    let faces = det.detect_frame(&frame_from_mat(&mut src.clone()).unwrap()).unwrap();
    let face = faces.iter().max_by(|a, b| a.bbox[2].total_cmp(&b.bbox[2])).expect("a face").clone();
    let k = crop / (512.0 / align::estimate(&face, align::Template::Ffhq5, 512).unwrap().scale());
    let scaled = resize(src, (src.cols() as f64 * k).round() as i32, (src.rows() as f64 * k).round() as i32);
    (scaled, face.scaled(k as f32))
}

/// Gaussian blur of `sigma` px, then noise (sigma 4) and JPEG 50.
fn blur_noise_jpeg(clean: &Mat, sigma: f64) -> Mat {
    let mut blurred = clean.clone();
    if sigma > 0.0 {
        imgproc::gaussian_blur(clean, &mut blurred, Size::new(0, 0), sigma, sigma, opencv::core::BORDER_REFLECT_101)
            .unwrap();
    }
    noise_and_jpeg(&blurred, 7, 4.0, 50)
}

#[test]
fn the_blur_measure_follows_the_blur_a_face_was_given() {
    let people = london_validation();
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    for src in people.iter().step_by(4) {
        let (clean, face) = person_at(src, &mut det, 96.0);
        let measured: Vec<f64> = [0.0, 1.0, 2.0, 3.0]
            .iter()
            .map(|&s| {
                let crop = align::crop_face(&blur_noise_jpeg(&clean, s), &face, align::Template::Ffhq5, 96).unwrap();
                sharpness::blur_sigma(&crop).unwrap()
            })
            .collect();
        println!("blur 0, 1, 2, 3 px measured {measured:.2?}");
        // measured on the held-out faces: 0.8-1.3 sharp, 1.6-2.4 at 2 px, 1.8-2.8 at 3 px
        assert!(measured.windows(2).all(|w| w[1] > w[0]), "not rising with the blur: {measured:.2?}");
        assert!((0.5..1.4).contains(&measured[0]), "a sharp face measures {:.2}", measured[0]);
        assert!((1.4..2.8).contains(&measured[2]), "a 2 px blur measures {:.2}", measured[2]);
        assert_eq!(sharpness::detail_log_ratio(measured[0].min(1.0)), 0.0);
        assert!(sharpness::detail_log_ratio(measured[3]) < (0.5f64).ln(), "a 3 px blur keeps half the detail");
    }
}

/// Issue 29: a blurred face goes to the rung made for the size its detail fits (a
/// super-resolution rung that draws it again) and comes out with more fine detail than the
/// 1x rung of its pixel size leaves it, at about the same PSNR and identity; a sharp face
/// goes where it went before.
#[test]
fn blurred_faces_go_to_the_super_resolution_rungs_and_come_out_sharper() {
    let people = london_validation();
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    let yunet_cfg = || DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() };
    let mut by_size = Enhancer::new(yunet_cfg(), RestoreConfig { by_detail: false, ..Default::default() }).unwrap();
    let mut by_detail = Enhancer::new(yunet_cfg(), RestoreConfig::default()).unwrap();
    let names = by_detail.restorer.model_names();
    let mut id = IdentityNet::load(&identity::default_model(), &Default::default()).unwrap();
    // per route: PSNR gain, identity distance to the truth, HF ratio to the truth
    let (mut size_route, mut detail_route) = (Vec::new(), Vec::new());
    let mut to_sr = 0;
    for crop_px in [96.0, 128.0] {
        for src in people.iter().step_by(2) {
            let (clean, face) = person_at(src, &mut det, crop_px);
            let b = face.bbox.map(|v| v as i32);
            let truth_id =
                id.descriptors(&[align::crop_face(&clean, &face, align::Template::Ffhq5, 256).unwrap()]).unwrap();
            // sharp: the same model as by size, the same pixels
            let sharp = blur_noise_jpeg(&clean, 0.0);
            let (mut a, mut d) = (sharp.clone(), sharp.clone());
            by_size.process_image(&mut frame_from_mat(&mut a).unwrap()).unwrap();
            by_detail.process_image(&mut frame_from_mat(&mut d).unwrap()).unwrap();
            let same = psnr_y(&crop(&a, b), &crop(&d, b));
            assert!(same > 45.0, "a sharp {crop_px} px face was restored differently ({same:.1} dB apart)");
            for rel in [1.0, 2.0] {
                let input = blur_noise_jpeg(&clean, rel * crop_px / 128.0);
                let p_in = psnr_y(&crop(&input, b), &crop(&clean, b));
                for (e, out, detail) in
                    [(&mut by_size, &mut size_route, false), (&mut by_detail, &mut detail_route, true)]
                {
                    let mut m = input.clone();
                    let (_, stats) = e.process_image(&mut frame_from_mat(&mut m).unwrap()).unwrap();
                    assert_eq!(stats.restored, 1);
                    let c = align::crop_face(&m, &face, align::Template::Ffhq5, 256).unwrap();
                    let dist = identity::distance(&id.descriptors(&[c]).unwrap()[0], &truth_id[0]);
                    let hf = hf_energy(&crop(&m, b)) / hf_energy(&crop(&clean, b));
                    out.push((psnr_y(&crop(&m, b), &crop(&clean, b)) - p_in, dist, hf));
                    if detail {
                        let rung = stats.assigned[0].expect("restored");
                        to_sr += names[rung].starts_with("sr-") as usize;
                    }
                }
            }
        }
    }
    let mean = |v: &[(f64, f32, f64)]| {
        let n = v.len() as f64;
        v.iter().fold((0.0, 0.0, 0.0), |(a, b, c), (x, y, z)| (a + x / n, b + *y as f64 / n, c + z / n))
    };
    let (s, d) = (mean(&size_route), mean(&detail_route));
    println!(
        "{} blurred faces, {to_sr} to a super-resolution rung; by size: {:+.2} dB, identity {:.3}, HF {:.2}; \
         by detail: {:+.2} dB, identity {:.3}, HF {:.2}",
        detail_route.len(),
        s.0,
        s.1,
        s.2,
        d.0,
        d.1,
        d.2
    );
    // measured: 29 of 32 to sr-x2-128 / sr-x4-128; by size +1.65 dB, identity 0.367, HF
    // 0.19; by detail +1.90 dB, identity 0.366, HF 0.38
    assert!(
        to_sr * 4 >= detail_route.len() * 3,
        "{to_sr} of {} blurred faces to a super-resolution rung",
        detail_route.len()
    );
    assert!(d.2 >= 1.5 * s.2, "HF by detail {:.2} vs by size {:.2}", d.2, s.2);
    assert!(d.0 >= 1.0 && d.0 >= s.0 - 0.3, "PSNR gain by detail {:+.2} dB vs by size {:+.2}", d.0, s.0);
    assert!(d.1 <= s.1 + 0.01, "identity by detail {:.3} vs by size {:.3}", d.1, s.1);
}
