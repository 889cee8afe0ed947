//! Bring-your-own published models: each family's profile (models/profiles/) and
//! `profile=auto` feed a model with exactly that family's signature the way the family
//! expects, proven by known answers: colour order, value range, fidelity weight, half
//! precision and alignment template. The expectations are written out here from the
//! published conventions (FaceFusion's face and frame enhancers), not read from the code.

mod common;

use std::path::{Path, PathBuf};

use common::{family_answer, family_model, Signature};
use faceenhance::align;
use faceenhance::detect::Face;
use faceenhance::frame::frame_from_mat;
use faceenhance::model::profile::{ModelKind, Profile};
use faceenhance::model::{ProviderOptions, Restorer};
use faceenhance::restore::{FaceRestorer, RestoreConfig};
use faceenhance::upscale::{BackgroundConfig, Upscaler};
use opencv::core::{Mat, Scalar, Vec3b, Vec3f, CV_8UC3};
use opencv::prelude::*;

/// FFHQ 5 points at 512 px and ArcFace-128 (v2) points as fractions of the side.
const FFHQ_512: [[f64; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];
const ARCFACE_128: [[f64; 2]; 5] = [
    [0.36167656, 0.40387734],
    [0.63696719, 0.40235469],
    [0.50019687, 0.56044219],
    [0.38710391, 0.72160547],
    [0.61507734, 0.72034453],
];

struct Family {
    profile: &'static str,
    sig: Signature,
    /// Value range the family's tensors use.
    range: (f64, f64),
    kind: ModelKind,
    /// Where the 5 landmarks land in the crop (px).
    template: fn(f64) -> [[f64; 2]; 5],
}

fn ffhq(size: f64) -> [[f64; 2]; 5] {
    FFHQ_512.map(|[x, y]| [x * size / 512.0, y * size / 512.0])
}

fn arcface(size: f64) -> [[f64; 2]; 5] {
    ARCFACE_128.map(|[x, y]| [x * size, y * size])
}

const fn face(size: i64, fidelity: bool) -> Signature {
    Signature { size, scale: 1, fidelity, f16: false }
}

/// The face restorers: RGB in [-1, 1], square input, 1x.
const fn restorer(profile: &'static str, size: i64, fidelity: bool, template: fn(f64) -> [[f64; 2]; 5]) -> Family {
    Family { profile, sig: face(size, fidelity), range: (-1.0, 1.0), kind: ModelKind::Face, template }
}

/// Real-ESRGAN: dynamic height and width, RGB in [0, 1], whole frames.
const fn background(profile: &'static str, scale: i64) -> Family {
    Family {
        profile,
        sig: Signature { size: -1, scale, fidelity: false, f16: false },
        range: (0.0, 1.0),
        kind: ModelKind::Background,
        template: ffhq,
    }
}

const FAMILIES: [Family; 9] = [
    restorer("gfpgan-1.2", 512, false, ffhq),
    restorer("gfpgan-1.3", 512, false, ffhq),
    restorer("gfpgan-1.4", 512, false, ffhq),
    restorer("codeformer", 512, true, ffhq),
    restorer("gpen-bfr-256", 256, false, arcface),
    restorer("gpen-bfr-512", 512, false, ffhq),
    restorer("restoreformer-plus-plus", 512, false, ffhq),
    background("real-esrgan-x2", 2),
    background("real-esrgan-x4", 4),
];

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceenhance-profiles-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cpu() -> ProviderOptions {
    ProviderOptions { provider: "cpu".parse().unwrap(), ..Default::default() }
}

/// The test colour, B, G, R.
const BGR: [f64; 3] = [10.0, 50.0, 200.0];

/// What `family_model` returns for a pixel of colour `BGR` fed in `range` with weight `w`.
fn known_answer(range: (f64, f64), w: f64) -> [f64; 3] {
    family_answer(BGR[2], range, w)
}

fn solid(side: i32) -> Mat {
    Mat::new_rows_cols_with_default(side, side, CV_8UC3, Scalar::new(BGR[0], BGR[1], BGR[2], 0.0)).unwrap()
}

fn assert_pixel(got: Vec3f, want: [f64; 3], tol: f64, what: &str) {
    for c in 0..3 {
        assert!((got[c] as f64 - want[c]).abs() <= tol, "{what}: got {got:?}, want {want:?} (B, G, R)");
    }
}

fn profile_file(name: &str) -> PathBuf {
    common::repo().join("models/profiles").join(format!("{name}.toml"))
}

#[test]
fn each_family_profile_feeds_its_model_the_published_convention() {
    let dir = temp_dir("known");
    for f in &FAMILIES {
        let model = family_model(&dir, f.profile, f.sig);
        let mut r = Restorer::load(&model, Some(Path::new(f.profile)), &cpu()).unwrap();
        let p = r.profile().clone();
        assert_eq!(p.kind, f.kind, "{}", f.profile);
        let out = r.infer(&[solid(p.input_size)]).unwrap();
        let side = p.input_size * f.sig.scale as i32;
        assert_eq!((out[0].rows(), out[0].cols()), (side, side), "{}", f.profile);
        let centre = *out[0].at_2d::<Vec3f>(side / 2, side / 2).unwrap();
        let w = if f.sig.fidelity { 0.5 } else { 0.0 };
        assert_pixel(centre, known_answer(f.range, w), 0.01, f.profile);
        if f.sig.fidelity {
            // The weight is fed: w = 0 gives another known answer.
            r.set_fidelity(0.0);
            let centre = *r.infer(&[solid(p.input_size)]).unwrap()[0].at_2d::<Vec3f>(side / 2, side / 2).unwrap();
            assert_pixel(centre, known_answer(f.range, 0.0), 0.01, "codeformer at w = 0");
        }
    }
    // The answers tell the conventions apart: a BGR or [0, 1] mistake would show.
    assert!((known_answer((-1.0, 1.0), 0.0)[2] - known_answer((0.0, 1.0), 0.0)[2]).abs() > 50.0);
}

#[test]
fn auto_recognises_each_family_as_its_profile_says() {
    let dir = temp_dir("auto");
    for f in &FAMILIES {
        let model = family_model(&dir, f.profile, f.sig);
        let want = Profile::from_file(&profile_file(f.profile)).unwrap();
        // No profile beside the model and none given: auto; and auto asked for by name.
        for given in [None, Some(Path::new("auto"))] {
            let got = Restorer::load(&model, given, &cpu()).unwrap().profile().clone();
            let key = |p: &Profile| {
                (p.kind, p.range, p.channels, p.template, p.input_size, p.output_size, p.fidelity_input.clone())
            };
            assert_eq!(key(&got), key(&want), "{} ({given:?}): {}", f.profile, got.description);
            assert!(got.name.starts_with("auto:"), "{}", got.name);
        }
    }
}

#[test]
fn half_precision_exports_give_the_same_answer() {
    let dir = temp_dir("f16");
    let model = family_model(&dir, "gfpgan-fp16", Signature { size: 512, scale: 1, fidelity: false, f16: true });
    let mut r = Restorer::load(&model, None, &cpu()).unwrap();
    let out = r.infer(&[solid(512)]).unwrap();
    // fp16 keeps ~3 significant digits: within 0.5 of a grey level here.
    assert_pixel(*out[0].at_2d::<Vec3f>(256, 256).unwrap(), known_answer((-1.0, 1.0), 0.0), 0.5, "fp16");
}

/// Renders 5 dots where `points` say, crops with the family's profile, and finds the dots.
fn dots_after_crop(points: &[[f64; 2]; 5], profile: &Profile) -> Vec<[f64; 2]> {
    let mut frame = Mat::new_rows_cols_with_default(480, 640, CV_8UC3, Scalar::all(0.0)).unwrap();
    for p in points {
        opencv::imgproc::circle(
            &mut frame,
            opencv::core::Point::new(p[0].round() as i32, p[1].round() as i32),
            2,
            Scalar::all(255.0),
            -1,
            opencv::imgproc::LINE_8,
            0,
        )
        .unwrap();
    }
    let lm = points.map(|[x, y]| [x.round() as f32, y.round() as f32]);
    let face = Face { landmarks: Some(lm), ..Face::from_box([250.0, 150.0, 140.0, 170.0], 0.9) };
    let crop = align::crop_face(&frame, &face, profile.template, profile.input_size).unwrap();
    let mut grey = Mat::default();
    opencv::imgproc::cvt_color_def(&crop, &mut grey, opencv::imgproc::COLOR_BGR2GRAY).unwrap();
    let mut bin = Mat::default();
    opencv::imgproc::threshold(&grey, &mut bin, 60.0, 255.0, opencv::imgproc::THRESH_BINARY).unwrap();
    let (mut labels, mut stats, mut centroids) = (Mat::default(), Mat::default(), Mat::default());
    let n =
        opencv::imgproc::connected_components_with_stats_def(&bin, &mut labels, &mut stats, &mut centroids).unwrap();
    (1..n).map(|i| [*centroids.at_2d::<f64>(i, 0).unwrap(), *centroids.at_2d::<f64>(i, 1).unwrap()]).collect()
}

#[test]
fn each_family_crop_puts_the_landmarks_on_its_template() {
    for f in FAMILIES.iter().filter(|f| f.kind == ModelKind::Face) {
        let profile = Profile::from_file(&profile_file(f.profile)).unwrap();
        let size = profile.input_size as f64;
        let want = (f.template)(size);
        // Landmarks that are an exact similarity of the template (scale, rotation, shift),
        // so the crop must bring them back onto it.
        let (s, th) = (140.0 / size, 0.15f64);
        let frame_pts =
            want.map(|[x, y]| [s * (th.cos() * x - th.sin() * y) + 250.0, s * (th.sin() * x + th.cos() * y) + 100.0]);
        let found = dots_after_crop(&frame_pts, &profile);
        assert_eq!(found.len(), 5, "{}: {found:?}", f.profile);
        // Landmarks were rounded to whole frame pixels: allow that error, enlarged.
        let tol = 1.0 + 0.71 / s;
        for w in want {
            let d =
                found.iter().map(|g| ((g[0] - w[0]).powi(2) + (g[1] - w[1]).powi(2)).sqrt()).fold(f64::MAX, f64::min);
            assert!(d < tol, "{}: no dot within {tol:.1} px of {w:?}: {found:?}", f.profile);
        }
    }
    // The two templates differ enough that the wrong one would fail the check above.
    let (a, b) = (ffhq(256.0), arcface(256.0));
    assert!(a.iter().zip(&b).any(|(p, q)| (p[1] - q[1]).abs() > 10.0));
}

#[test]
fn codeformer_fidelity_reaches_the_model_through_the_pipeline() {
    let dir = temp_dir("pipeline");
    let model = family_model(&dir, "codeformer", face(512, true));
    // A uniform frame and a face in it: the face's centre comes back as the model's answer.
    let frame_pixels = |fidelity: f32| {
        let mut m =
            Mat::new_rows_cols_with_default(360, 480, CV_8UC3, Scalar::new(BGR[0], BGR[1], BGR[2], 0.0)).unwrap();
        let cfg = RestoreConfig { fidelity, force: true, provider: cpu(), ..RestoreConfig::with_model(&model) };
        let mut restorer = FaceRestorer::new(cfg).unwrap();
        let face = Face {
            landmarks: Some([[210.0, 170.0], [270.0, 170.0], [240.0, 205.0], [215.0, 235.0], [265.0, 235.0]]),
            ..Face::from_box([180.0, 120.0, 120.0, 150.0], 0.9)
        };
        let stats = restorer.restore(&mut frame_from_mat(&mut m).unwrap(), &[face]).unwrap();
        assert_eq!(stats.restored, 1);
        let px = *m.at_2d::<Vec3b>(200, 240).unwrap();
        Vec3f::from([px[0] as f32, px[1] as f32, px[2] as f32])
    };
    for w in [0.0f32, 0.5] {
        assert_pixel(frame_pixels(w), known_answer((-1.0, 1.0), w as f64), 1.0, &format!("fidelity {w}"));
    }
}

#[test]
fn real_esrgan_family_upscales_frames_through_tiles() {
    let dir = temp_dir("esrgan");
    for (name, k) in [("real-esrgan-x2", 2), ("real-esrgan-x4", 4)] {
        let model = family_model(&dir, name, Signature { size: -1, scale: k, fidelity: false, f16: false });
        let cfg = BackgroundConfig { model: Some(model), profile: Some(name.into()), ..Default::default() };
        let mut up = Upscaler::new(k as u32, &cfg, &cpu()).unwrap();
        let mut src =
            Mat::new_rows_cols_with_default(150, 300, CV_8UC3, Scalar::new(BGR[0], BGR[1], BGR[2], 0.0)).unwrap();
        let mut dst =
            Mat::new_rows_cols_with_default(150 * k as i32, 300 * k as i32, CV_8UC3, Scalar::all(0.0)).unwrap();
        up.upscale(&frame_from_mat(&mut src).unwrap(), &mut frame_from_mat(&mut dst).unwrap()).unwrap();
        let want = known_answer((0.0, 1.0), 0.0);
        for (y, x) in [(0, 0), (150 * k as i32 - 1, 300 * k as i32 - 1), (75 * k as i32, 150 * k as i32)] {
            let px = *dst.at_2d::<Vec3b>(y, x).unwrap();
            assert_pixel(Vec3f::from([px[0] as f32, px[1] as f32, px[2] as f32]), want, 1.0, name);
        }
    }
}

#[test]
fn mismatches_and_unknown_models_are_refused_with_reasons() {
    let dir = temp_dir("refused");
    let err = |model: &Path, profile: Option<&str>| {
        format!("{:#}", Restorer::load(model, profile.map(Path::new), &cpu()).err().expect("must fail"))
    };
    let gpen256 = family_model(&dir, "gpen256", face(256, false));
    let e = err(&gpen256, Some("gfpgan-1.4"));
    assert!(e.contains("does not match the profile") && e.contains("512"), "{e}");
    let e = err(&gpen256, Some("codeformer"));
    assert!(e.contains("'weight'"), "{e}");
    let cf = family_model(&dir, "cf", face(512, true));
    let e = err(&cf, Some("gfpgan-1.4"));
    assert!(e.contains("'weight'") && e.contains("not named by the profile"), "{e}");
    let odd = family_model(&dir, "odd", face(96, false));
    let e = err(&odd, None);
    assert!(e.contains("profile=auto cannot") || e.contains("96 px is not one of the published families"), "{e}");
    let e = err(&odd, Some("gfpgan-9"));
    assert!(e.contains("gfpgan-1.4") && e.contains("auto"), "{e}");
    // A background model is not a face model, and the other way round.
    let esr = family_model(&dir, "esr", Signature { size: -1, scale: 4, fidelity: false, f16: false });
    let e = format!(
        "{:#}",
        FaceRestorer::new(RestoreConfig { provider: cpu(), ..RestoreConfig::with_model(&esr) }).err().unwrap()
    );
    assert!(e.contains("background model"), "{e}");
    let cfg = BackgroundConfig { model: Some(cf), ..Default::default() };
    let e = format!("{:#}", Upscaler::new(4, &cfg, &cpu()).err().unwrap());
    assert!(e.contains("not a background"), "{e}");
}
