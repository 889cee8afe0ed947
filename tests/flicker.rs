//! Temporal stability: a still face with only sensor noise and compression must not
//! flicker more after enhancement than before (target: change ratio <= 1.1 with smoothing,
//! and less than without smoothing).

mod common;

use common::*;
use faceenhance::detect::{DetectorConfig, DetectorKind};
use faceenhance::enhancer::Enhancer;
use faceenhance::frame::frame_from_mat;
use faceenhance::metrics::temporal_change;
use faceenhance::restore::RestoreConfig;
use faceenhance::track::TrackConfig;
use opencv::core::{self, Mat, Scalar, Vector, CV_16SC3};
use opencv::imgcodecs;
use opencv::prelude::*;

/// 30 frames of the astronaut (downscaled so the face is ~46 px, video-call size) with
/// fresh Gaussian noise (sigma 4) and JPEG at quality 50 on each frame.
fn noisy_still() -> Vec<Mat> {
    let clean = resize(&imread(&astronaut()), 256, 256);
    core::set_rng_seed(7).unwrap();
    (0..30)
        .map(|_| {
            let mut noise = Mat::new_rows_cols_with_default(256, 256, CV_16SC3, Scalar::all(0.0)).unwrap();
            core::randn(&mut noise, &Scalar::all(0.0), &Scalar::all(4.0)).unwrap();
            let mut wide = Mat::default();
            clean.convert_to(&mut wide, CV_16SC3, 1.0, 0.0).unwrap();
            let mut sum = Mat::default();
            core::add(&wide, &noise, &mut sum, &core::no_array(), -1).unwrap();
            let mut noisy = Mat::default();
            sum.convert_to(&mut noisy, core::CV_8UC3, 1.0, 0.0).unwrap();
            let mut jpeg = Vector::<u8>::new();
            let params = Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, 50]);
            imgcodecs::imencode(".jpg", &noisy, &mut jpeg, &params).unwrap();
            imgcodecs::imdecode(&jpeg, imgcodecs::IMREAD_COLOR).unwrap()
        })
        .collect()
}

fn enhance(frames: &[Mat], smoothing: bool) -> (Vec<Mat>, [i32; 4]) {
    let detect = DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() };
    let mut e = Enhancer::new(detect, RestoreConfig { force: true, ..Default::default() }).unwrap();
    e.faces = faceenhance::track::FaceStream::new(
        faceenhance::detect::Detector::new(DetectorConfig {
            kind: DetectorKind::YuNet,
            model: Some(yunet()),
            ..Default::default()
        })
        .unwrap(),
        TrackConfig { smoothing, ..Default::default() },
    );
    // A full detection on every frame: the search would otherwise see an unchanged scene
    // and keep the last boxes, so neither run would have any jitter to smooth.
    e.faces.set_sweep_frames(0);
    let mut region = [0; 4];
    let out = frames
        .iter()
        .map(|f| {
            let mut m = f.clone();
            let (faces, _) = e.process(&mut frame_from_mat(&mut m).unwrap()).unwrap();
            assert_eq!(faces.len(), 1);
            region = faces[0].bbox.map(|v| v.round() as i32);
            m
        })
        .collect();
    (out, region)
}

#[test]
fn a_still_noisy_face_does_not_flicker() {
    let input = noisy_still();
    let (smooth, region) = enhance(&input, true);
    let (raw, _) = enhance(&input, false);
    let before = temporal_change(&input, region).unwrap();
    let ratio_smooth = temporal_change(&smooth, region).unwrap() / before;
    let ratio_raw = temporal_change(&raw, region).unwrap() / before;
    println!("flicker ratio: {ratio_smooth:.3} with smoothing, {ratio_raw:.3} without (input change {before:.2})");
    assert!(ratio_smooth <= 1.1, "flicker ratio {ratio_smooth:.3} with smoothing");
    // Measured 0.62 against 0.70: smoothing takes out most of the detector's jitter.
    assert!(ratio_smooth + 0.03 < ratio_raw, "smoothing {ratio_smooth:.3} must beat none {ratio_raw:.3}");
}

#[test]
fn temporal_change_of_identical_frames_is_zero() {
    let f = imread(&astronaut());
    assert_eq!(temporal_change(&[f.clone(), f], [10, 10, 50, 50]).unwrap(), 0.0);
}
