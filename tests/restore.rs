//! Restoration end to end on real photos: only face regions change, results are
//! repeatable and layout-independent, and bad models fail with reasons.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use faceenhance::detect::{DetectorConfig, DetectorKind, Face};
use faceenhance::enhancer::Enhancer;
use faceenhance::frame::{frame_from_mat, Frame, PixelFormat};
use faceenhance::restore::{FaceRestorer, RestoreConfig};
use opencv::core::Mat;
use opencv::prelude::*;

fn yunet_config() -> DetectorConfig {
    DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() }
}

/// The shipped models with never worse off: these tests are about cropping, inference and
/// blending on faces of every size, not about which faces the ladder leaves alone.
fn forced() -> RestoreConfig {
    RestoreConfig { force: true, ..Default::default() }
}

fn enhancer() -> Enhancer {
    Enhancer::new(yunet_config(), forced()).unwrap()
}

fn bytes(m: &Mat) -> Vec<u8> {
    m.data_bytes().unwrap().to_vec()
}

fn inside(regions: &[[i32; 4]], x: i32, y: i32) -> bool {
    regions.iter().any(|r| x >= r[0] && x < r[0] + r[2] && y >= r[1] && y < r[1] + r[3])
}

/// Mean absolute difference over the pixels inside `regions`, and the number of bytes
/// outside them that differ.
fn compare(before: &Mat, after: &Mat, regions: &[[i32; 4]]) -> (f64, usize) {
    let (a, b) = (bytes(before), bytes(after));
    let w = before.cols();
    let (mut sum, mut n, mut outside_changed) = (0f64, 0usize, 0usize);
    for (i, (p, q)) in a.iter().zip(&b).enumerate() {
        let px = (i / 3) as i32;
        if inside(regions, px % w, px / w) {
            sum += (*p as f64 - *q as f64).abs();
            n += 1;
        } else if p != q {
            outside_changed += 1;
        }
    }
    (sum / n.max(1) as f64, outside_changed)
}

#[test]
fn only_face_regions_change_on_real_photos() {
    let mut e = enhancer();
    for path in
        [astronaut(), real_lq("codeformer-inputs/whole_imgs/00.jpg"), real_lq("gfpgan-inputs/whole_imgs/10045.png")]
    {
        let before = imread(&path);
        let mut after = before.clone();
        let (faces, stats) = e.process_image(&mut frame_from_mat(&mut after).unwrap()).unwrap();
        assert!(!faces.is_empty(), "{}", path.display());
        assert_eq!(stats.restored, faces.len(), "{}", path.display());
        let (mean_inside, outside) = compare(&before, &after, &stats.regions);
        println!("{}: {} faces, mean change inside {mean_inside:.2}", path.display(), faces.len());
        assert_eq!(outside, 0, "{}: {outside} bytes changed outside the face regions", path.display());
        assert!(mean_inside > 1.0, "{}: faces barely changed ({mean_inside:.3})", path.display());
        // Each face's own box changed, not just its neighbourhood.
        for f in &faces {
            let b = f.bbox.map(|v| v.max(0.0) as i32);
            let region = [[b[0] + b[2] / 4, b[1] + b[3] / 4, b[2] / 2, b[3] / 2]];
            let (centre, _) = compare(&before, &after, &region);
            assert!(centre > 1.0, "{}: face {:?} centre unchanged", path.display(), f.bbox);
        }
    }
}

#[test]
fn same_frame_twice_gives_the_same_output() {
    let mut e = enhancer();
    let img = imread(&astronaut());
    let mut a = img.clone();
    let mut b = img.clone();
    e.process(&mut frame_from_mat(&mut a).unwrap()).unwrap();
    e.process(&mut frame_from_mat(&mut b).unwrap()).unwrap();
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn strength_scales_the_change() {
    let img = imread(&astronaut());
    let run = |strength: f32| {
        let cfg = RestoreConfig { strength, ..forced() };
        let mut e = Enhancer::new(yunet_config(), cfg).unwrap();
        let mut out = img.clone();
        let (_, stats) = e.process(&mut frame_from_mat(&mut out).unwrap()).unwrap();
        compare(&img, &out, &stats.regions).0
    };
    let (zero, half, full) = (run(0.0), run(0.5), run(1.0));
    assert_eq!(zero, 0.0);
    assert!(half > 0.3 * full && half < 0.7 * full, "half {half} vs full {full}");
}

#[test]
fn every_pixel_layout_gives_the_same_result() {
    let img = imread(&astronaut());
    let faces = {
        let mut e = enhancer();
        e.faces.next(&frame_from_mat(&mut img.clone()).unwrap()).unwrap().0
    };
    let mut r = FaceRestorer::new(forced()).unwrap();
    let mut reference = img.clone();
    r.restore(&mut frame_from_mat(&mut reference).unwrap(), &faces).unwrap();
    let (reference, _) = pack(&reference, PixelFormat::Bgr, 0);
    for format in PixelFormat::ALL {
        let (mut data, stride) = pack(&img, format, 12);
        let untouched = data.clone();
        r.restore(&mut Frame::new(&mut data, 512, 512, stride, format).unwrap(), &faces).unwrap();
        let ch = format.channels();
        let [ro, go, bo] = format.rgb_offsets();
        let mut worst = 0i32;
        for y in 0..512 {
            for x in 0..512 {
                let d = y * stride + x * ch;
                let want = &reference[(y * 512 + x) * 3..][..3];
                for (got, want) in [(data[d + bo], want[0]), (data[d + go], want[1]), (data[d + ro], want[2])] {
                    worst = worst.max((got as i32 - want as i32).abs());
                }
                if ch == 4 {
                    assert_eq!(data[d + 3], 200, "{format:?}: alpha/x byte changed at {x},{y}");
                }
            }
            assert_eq!(
                data[y * stride + 512 * ch..(y + 1) * stride],
                untouched[y * stride + 512 * ch..(y + 1) * stride]
            );
        }
        assert!(worst <= 1, "{format:?} differs from BGR by {worst}");
    }
}

#[test]
fn faces_cut_by_the_frame_edge_are_restored_inside_the_frame() {
    let full = imread(&astronaut());
    // Keep the right part of the face only: x from 225 (the face spans about 178-271).
    let before = roi(&full, 225, 0, 287, 512);
    let mut r = FaceRestorer::new(forced()).unwrap();
    let mut lm_face = Face::from_box([-47.0, 58.0, 93.0, 117.0], 0.9);
    lm_face.id = 1;
    let corner = Face::from_box([-30.0, -30.0, 60.0, 60.0], 0.9);
    let far_away = Face::from_box([5000.0, 5000.0, 60.0, 60.0], 0.9);
    let mut after = before.clone();
    let stats = r.restore(&mut frame_from_mat(&mut after).unwrap(), &[lm_face, corner, far_away]).unwrap();
    assert_eq!(stats.restored, 2, "the face outside the frame is skipped, the cut ones restored");
    let (mean, outside) = compare(&before, &after, &stats.regions);
    assert_eq!(outside, 0);
    assert!(mean > 0.5, "cut faces unchanged ({mean})");
}

#[test]
fn two_hundred_faces_in_one_frame() {
    let face = resize(&imread(&astronaut()), 36, 36);
    let mut canvas = Mat::new_rows_cols_with_default(400, 720, opencv::core::CV_8UC3, 90.into()).unwrap();
    let mut faces = Vec::new();
    for i in 0..200 {
        let (x, y) = (i % 20 * 36, i / 20 * 40);
        let mut cell = Mat::roi_mut(&mut canvas, opencv::core::Rect::new(x, y, 36, 36)).unwrap();
        face.copy_to(&mut cell).unwrap();
        faces.push(Face::from_box([x as f32 + 12.0, y as f32 + 4.0, 12.0, 16.0], 0.9));
    }
    let mut r = FaceRestorer::new(forced()).unwrap();
    let stats = r.restore(&mut frame_from_mat(&mut canvas).unwrap(), &faces).unwrap();
    assert_eq!(stats.restored, 200);
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceenhance-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shipped_profile() -> PathBuf {
    faceenhance::paths::default_model().with_extension("toml")
}

fn load_err(model: &Path, profile: Option<&Path>) -> String {
    let cfg = RestoreConfig { models: vec![model.to_path_buf()], profile: profile.map(Path::to_path_buf), ..forced() };
    match FaceRestorer::new(cfg) {
        Ok(_) => panic!("{} loaded", model.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn missing_model_names_the_file() {
    let err = load_err(Path::new("/nonexistent/restore.onnx"), None);
    assert!(err.contains("/nonexistent/restore.onnx") && err.contains("no such file"), "{err}");
}

#[test]
fn corrupt_model_names_the_file() {
    let dir = temp_dir("corrupt");
    let model = dir.join("corrupt.onnx");
    std::fs::write(&model, b"this is not a protobuf, just bytes pretending to be a model").unwrap();
    std::fs::copy(shipped_profile(), dir.join("corrupt.toml")).unwrap();
    let err = load_err(&model, None);
    assert!(err.contains(&model.display().to_string()) && err.contains("cannot load"), "{err}");
}

#[test]
fn model_without_profile_says_where_it_looked() {
    let dir = temp_dir("noprofile");
    let model = dir.join("lonely.onnx");
    std::fs::copy(faceenhance::paths::default_model(), &model).unwrap();
    let err = load_err(&model, None);
    assert!(err.contains("lonely.toml"), "{err}");
}

#[test]
fn profile_that_does_not_match_the_model_names_the_mismatch() {
    let dir = temp_dir("mismatch");
    let text = std::fs::read_to_string(shipped_profile()).unwrap();
    let size = dir.join("size.toml");
    std::fs::write(&size, text.replace("input_size = 64", "input_size = 128")).unwrap();
    let err = load_err(&faceenhance::paths::default_model(), Some(&size));
    assert!(err.contains("input 'input' shape") && err.contains("128"), "{err}");
    let name = dir.join("name.toml");
    std::fs::write(&name, text.replace("input = \"input\"", "input = \"image\"")).unwrap();
    let err = load_err(&faceenhance::paths::default_model(), Some(&name));
    assert!(err.contains("'image'") && err.contains("[\"input\"]"), "{err}");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text.replace("input_size = 64", "input_size = \"big\"")).unwrap();
    let err = load_err(&faceenhance::paths::default_model(), Some(&bad));
    assert!(err.contains("bad.toml") && err.contains("invalid"), "{err}");
}

#[test]
fn model_whose_output_size_is_not_the_profiles_is_refused() {
    // Declared [batch, 3, d2, d3]; the last convolution has stride 2: 32x32 comes out.
    let dir = temp_dir("halfout");
    let model = conv_model(&dir, "half", 1, 2);
    let err = load_err(&model, None);
    assert!(err.contains("half.onnx") && err.contains("32") && err.contains("64"), "{err}");
}

#[test]
fn model_giving_back_the_wrong_batch_or_channels_is_an_error_not_a_panic() {
    use faceenhance::model::{Provider, ProviderOptions, Restorer};
    let dir = temp_dir("badshape");
    let cpu = ProviderOptions { provider: Provider::Cpu, ..Default::default() };
    let grey =
        || Mat::new_rows_cols_with_default(64, 64, opencv::core::CV_8UC3, opencv::core::Scalar::all(128.0)).unwrap();
    // One image back whatever the batch: one face runs (the start-up run passes), two do not.
    let model = misshapen_model(&dir, "onebatch", Misshapen::OneImage);
    let mut r = Restorer::load(&model, None, &cpu).unwrap();
    assert_eq!(r.infer(&[grey()]).unwrap().len(), 1);
    let err = format!("{:#}", r.infer(&[grey(), grey()]).expect_err("a batch of 2 gave 1 image back"));
    assert!(err.contains("onebatch") && err.contains("batch 1 instead of 2"), "{err}");
    // [3, batch, ...]: one channel for one face. Refused at load, by the start-up run.
    let model = misshapen_model(&dir, "transposed", Misshapen::Transposed);
    let err = match Restorer::load(&model, None, &cpu) {
        Ok(_) => panic!("a model giving back 1 channel loaded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("transposed") && err.contains("channel count 1 instead of 3"), "{err}");
}

/// A model fed a type no profile feeds is refused at load; one that computes NaN is an
/// error naming it (the start-up run finds it), never black faces.
#[test]
fn a_model_of_the_wrong_type_or_giving_nan_is_refused_with_its_name() {
    use faceenhance::model::{Provider, ProviderOptions, Restorer};
    let dir = temp_dir("broken");
    let cpu = ProviderOptions { provider: Provider::Cpu, ..Default::default() };
    let load_err = |how: Broken, stem: &str| match Restorer::load(&broken_model(&dir, stem, how), None, &cpu) {
        Ok(_) => panic!("{how:?} loaded"),
        Err(e) => format!("{e:#}"),
    };
    let err = load_err(Broken::DoubleInput, "double");
    assert!(err.contains("double.onnx") && err.contains("not a float32 or float16 tensor"), "{err}");
    let err = load_err(Broken::NanOutput, "nan");
    assert!(err.contains("nan.onnx") && err.contains("NaN values (not finite)"), "{err}");
}

/// `n` frames of the astronaut moving right by `step` px per frame.
fn moving_face(n: i32, step: i32) -> Vec<Mat> {
    let img = imread(&astronaut());
    (0..n)
        .map(|i| {
            let mut m = img.clone();
            let shifted = roi(&img, 0, 0, 512 - step * i, 512);
            let mut dst = Mat::roi_mut(&mut m, opencv::core::Rect::new(step * i, 0, 512 - step * i, 512)).unwrap();
            shifted.copy_to(&mut dst).unwrap();
            m
        })
        .collect()
}

/// restore-interval 3: the model runs on frames 0, 3 and 6 only; on the frames between,
/// the face's last restoration is carried to where the face has moved, and comes out far
/// closer to a fresh restoration of that frame than the unrestored frame is.
#[test]
fn restorations_are_carried_between_model_runs() {
    let frames = moving_face(7, 3);
    // Only the astronaut: since the search runs faster while faces are about, it examines
    // the lower left of frame 1 (changed by the shift), where YuNet sees a face at 0.655 in
    // that crop; this test is about carrying restorations, not about that false face.
    let sure = || DetectorConfig { score_threshold: Some(0.8), ..yunet_config() };
    let mut fresh = Enhancer::new(sure(), forced()).unwrap();
    let mut carrying = Enhancer::new(sure(), RestoreConfig { refresh: 3, ..forced() }).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let (mut a, mut b) = (f.clone(), f.clone());
        fresh.process(&mut frame_from_mat(&mut a).unwrap()).unwrap();
        let (_, stats) = carrying.process(&mut frame_from_mat(&mut b).unwrap()).unwrap();
        assert_eq!(stats.restored, 1, "frame {i}: {stats:?}");
        let model_ran = i % 3 == 0;
        assert_eq!(stats.carried, usize::from(!model_ran), "frame {i}: {stats:?}");
        assert_eq!(stats.infer_ms > 0.0, model_ran, "frame {i}: {stats:?}");
        // Inside the face (it moves 3 px a frame to the right).
        let face = |m: &Mat| roi(m, 170 + 3 * i as i32, 50, 110, 150);
        let (to_fresh, untouched) = (psnr_y(&face(&b), &face(&a)), psnr_y(&face(f), &face(&a)));
        println!("frame {i}: carried vs fresh {to_fresh:.1} dB, input vs fresh {untouched:.1} dB");
        if model_ran {
            assert!(bytes(&a) == bytes(&b), "frame {i}: a model run differs from refresh 1");
        } else {
            assert!(to_fresh > untouched + 4.0, "frame {i}: {to_fresh:.1} dB vs {untouched:.1} dB");
        }
    }
}

/// I420 frames (what decoders give) are detected and restored in place: the same face as
/// from the BGR picture, the result close to the BGR path's inside the face, and every
/// byte of every plane outside the changed rectangles as it was.
#[test]
fn i420_frames_are_restored_in_place() {
    let img = imread(&astronaut());
    let (w, h) = (img.cols() as usize, img.rows() as usize);
    let before = i420_bytes(&img);
    let mut planes = before.clone();
    let mut e = enhancer();
    let mut frame = i420_frame(&mut planes, w, h);
    let (faces, stats) = e.process(&mut frame).unwrap();
    let mut bgr = img.clone();
    let (bgr_faces, _) = enhancer().process(&mut frame_from_mat(&mut bgr).unwrap()).unwrap();
    assert_eq!((faces.len(), stats.restored), (1, 1), "{stats:?}");
    assert!(iou(faces[0].bbox, bgr_faces[0].bbox) > 0.9, "{:?} vs {:?}", faces[0].bbox, bgr_faces[0].bbox);
    // Outside the changed rectangles (even-cornered for I420), no byte of any plane moved.
    let r = stats.regions.clone();
    assert!(r.iter().all(|q| q.iter().all(|v| v % 2 == 0)), "{r:?}");
    let inside = |x: usize, y: usize| r.iter().any(|q| inside(&[*q], x as i32, y as i32));
    for y in 0..h {
        for x in 0..w {
            if !inside(x, y) {
                assert_eq!(planes[y * w + x], before[y * w + x], "Y at {x},{y}");
            }
        }
    }
    for plane in 0..2 {
        let base = w * h + plane * w * h / 4;
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                if !inside(2 * x, 2 * y) {
                    let i = base + y * w / 2 + x;
                    assert_eq!(planes[i], before[i], "chroma plane {plane} at {x},{y}");
                }
            }
        }
    }
    // Inside the face, the I420 result is close to the BGR path's.
    let mut back = Mat::default();
    let packed = Mat::new_rows_cols_with_data(h as i32 * 3 / 2, w as i32, &planes).unwrap();
    opencv::imgproc::cvt_color_def(&packed, &mut back, opencv::imgproc::COLOR_YUV2BGR_I420).unwrap();
    let [x, y, fw, fh] = bgr_faces[0].bbox.map(|v| v as i32);
    let (a, b, o) = (roi(&back, x, y, fw, fh), roi(&bgr, x, y, fw, fh), roi(&img, x, y, fw, fh));
    let (same, changed) = (psnr_y(&a, &b), psnr_y(&a, &o));
    println!("inside the face: I420 vs BGR path {same:.1} dB; I420 result vs input {changed:.1} dB");
    assert!(same > 35.0 && same > changed + 3.0, "{same:.1} dB vs {changed:.1} dB");
}

/// Damaged model files (cut short anywhere, or with bytes flipped in the graph) are
/// refused with the file's name or load and run: never a panic.
#[test]
fn damaged_models_are_refused_with_the_file_name_never_a_panic() {
    use faceenhance::model::{Provider, ProviderOptions, Restorer};
    let dir = temp_dir("fuzz");
    let good = std::fs::read(faceenhance::paths::models_dir().join("restore-64.onnx")).unwrap();
    let cpu = ProviderOptions { provider: Provider::Cpu, ..Default::default() };
    let grey =
        || Mat::new_rows_cols_with_default(64, 64, opencv::core::CV_8UC3, opencv::core::Scalar::all(128.0)).unwrap();
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let (mut refused, mut ran) = (0, 0);
    for i in 0..24 {
        let mut bytes = good.clone();
        if i % 2 == 0 {
            bytes.truncate(next() % good.len());
        } else {
            for _ in 0..8 {
                let at = next() % 4096.min(bytes.len());
                bytes[at] ^= 1 << (next() % 8);
            }
        }
        let model = dir.join(format!("damaged-{i}.onnx"));
        std::fs::write(&model, &bytes).unwrap();
        std::fs::copy(faceenhance::paths::models_dir().join("restore-64.toml"), dir.join(format!("damaged-{i}.toml")))
            .unwrap();
        let loaded = std::panic::catch_unwind(|| Restorer::load(&model, None, &cpu).map(|mut r| r.infer(&[grey()])));
        match loaded {
            Err(_) => panic!("damaged-{i}: a panic"),
            Ok(Err(e)) => {
                let msg = format!("{e:#}");
                assert!(msg.contains(&format!("damaged-{i}")), "damaged-{i}: {msg}");
                refused += 1;
            }
            Ok(Ok(_)) => ran += 1,
        }
    }
    println!("{refused} damaged models refused with their name, {ran} loaded and ran");
    assert!(refused >= 12, "only {refused} of 24 refused");
}

/// Many cameras, one process (issue 28): restorers of the same model share one session,
/// the faces that four streams have ready at the same time go through it in fewer runs
/// than there are requests, and every stream gets back what a session of its own gives.
#[test]
fn streams_share_one_session_and_batch_their_faces() {
    // a model file of this test's own: other tests' streams would share the session too
    let dir = std::env::temp_dir().join(format!("faceenhance-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["onnx", "toml"] {
        let from = faceenhance::paths::models_dir().join(format!("restore-128.{ext}"));
        std::fs::copy(from, dir.join(format!("restore-128.{ext}"))).unwrap();
    }
    let config =
        |share| RestoreConfig { models: vec![dir.join("restore-128.onnx")], share_sessions: share, ..forced() };
    let img = imread(&astronaut());
    let faces = {
        let mut m = img.clone();
        faceenhance::detect::Detector::new(yunet_config())
            .unwrap()
            .detect_frame(&frame_from_mat(&mut m).unwrap())
            .unwrap()
    };
    assert!(!faces.is_empty());
    let mut alone = FaceRestorer::new(config(false)).unwrap();
    let mut expected = img.clone();
    alone.restore(&mut frame_from_mat(&mut expected).unwrap(), &faces).unwrap();
    let mut streams: Vec<FaceRestorer> = (0..4).map(|_| FaceRestorer::new(config(true)).unwrap()).collect();
    let first = streams[0].restorer() as *const _;
    assert!(streams.iter().all(|s| std::ptr::eq(s.restorer(), first)), "each stream opened its own session");
    assert!(!std::ptr::eq(alone.restorer(), first), "share-sessions=false shared");
    let before = streams[0].restorer().counts();
    let frames = 20;
    let barrier = std::sync::Barrier::new(streams.len());
    std::thread::scope(|scope| {
        for s in streams.iter_mut() {
            let (img, faces, expected, barrier) = (&img, &faces, &expected, &barrier);
            scope.spawn(move || {
                for _ in 0..frames {
                    barrier.wait();
                    let mut m = img.clone();
                    let stats = s.restore(&mut frame_from_mat(&mut m).unwrap(), faces).unwrap();
                    assert_eq!(stats.restored, faces.len());
                    let worst = bytes(&m).iter().zip(bytes(expected)).map(|(a, b)| a.abs_diff(b)).max().unwrap();
                    // a batch of other sizes may round a value the other way
                    assert!(worst <= 1, "a shared batch gave this stream other faces (off by {worst})");
                }
            });
        }
    });
    let after = streams[0].restorer().counts();
    let (runs, requests) = (after.runs - before.runs, after.requests - before.requests);
    println!("{requests} requests ({} faces) in {runs} model runs", after.faces - before.faces);
    assert_eq!(requests, 4 * frames as u64);
    assert!(runs < requests, "no two streams' faces went through the model together");
    drop(streams);
    let _ = std::fs::remove_dir_all(&dir);
}
