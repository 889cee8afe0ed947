//! The shipped attribute editor through the core, on CelebA photos it never trained on (the
//! validation files, numbered above 9000): whole photos, faces found by YuNet and aligned by
//! the core, the edit judged by the attribute predictor on the edited photo.

mod common;

use common::*;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind, Face};
use faceenhance::edit::FaceEditor;
use faceenhance::frame::frame_from_mat;
use faceenhance::model::attributes::AttributePredictor;
use faceenhance::model::{Provider, ProviderOptions};
use opencv::core::Mat;
use opencv::prelude::*;

fn cpu() -> ProviderOptions {
    ProviderOptions { provider: Provider::Cpu, threads: 2, ..Default::default() }
}

fn editor() -> FaceEditor {
    FaceEditor::load(&repo().join("models/edit/edit-64.onnx"), &cpu()).unwrap()
}

/// Held-out CelebA photos `from..=to` with their largest face.
fn photos(from: u32, to: u32) -> Vec<(Mat, Face)> {
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    (from..=to)
        .filter_map(|n| {
            let mut bgr = imread(&shared().join(format!("data/celeba-10k/{n:06}.jpg")));
            let found = det.detect_frame(&frame_from_mat(&mut bgr).unwrap()).unwrap();
            let face = found.into_iter().max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))?;
            Some((bgr, face))
        })
        .collect()
}

fn edited(ed: &mut FaceEditor, bgr: &Mat, faces: &[Face]) -> (Mat, faceenhance::edit::EditStats) {
    let mut out = bgr.clone();
    let stats = ed.edit(&mut frame_from_mat(&mut out).unwrap(), faces).unwrap();
    (out, stats)
}

/// Per pixel: did it change, and is it inside one of `rects`.
fn changed_outside(a: &Mat, b: &Mat, rects: &[[i32; 4]]) -> (usize, usize) {
    let (da, db) = (a.data_bytes().unwrap(), b.data_bytes().unwrap());
    let w = a.cols() as usize;
    let (mut inside, mut outside) = (0, 0);
    for (i, (x, y)) in da.chunks(3).zip(db.chunks(3)).enumerate() {
        if x == y {
            continue;
        }
        let (px, py) = ((i % w) as i32, (i / w) as i32);
        if rects.iter().any(|r| px >= r[0] && py >= r[1] && px < r[0] + r[2] && py < r[1] + r[3]) {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    (inside, outside)
}

#[test]
fn nothing_asked_leaves_the_photo_as_it_was() {
    let mut ed = editor();
    for (bgr, face) in photos(9001, 9004) {
        let (out, stats) = edited(&mut ed, &bgr, &[face]);
        assert_eq!(stats.edited, 0);
        assert_eq!(out.data_bytes().unwrap(), bgr.data_bytes().unwrap());
    }
}

#[test]
fn an_edit_changes_the_face_and_nothing_outside_it() {
    let mut ed = editor();
    ed.set_asks("Eyeglasses=1").unwrap();
    for (bgr, face) in photos(9001, 9004) {
        let (out, stats) = edited(&mut ed, &bgr, &[face]);
        assert_eq!(stats.edited, 1);
        let (inside, outside) = changed_outside(&bgr, &out, &stats.regions);
        assert_eq!(outside, 0, "pixels outside the face changed");
        assert!(inside > 200, "only {inside} pixels of the face changed");
    }
}

/// What the edit does, judged by the attribute predictor on the whole edited photo (it
/// gave the editor no training signal): asked to add an attribute the face lacks, or to
/// remove one it has, the predictor's probability for it moves the asked way on average,
/// and the other attributes mostly keep its decision.
#[test]
#[ignore = "the shipped edit-64 is an early checkpoint (1,500 of its 3,000 steps) whose edits the \
            predictor does not see yet (models/edit/edit-64.md); run with --ignored to measure it"]
fn edits_move_the_asked_attribute_and_keep_the_others() {
    let mut ed = editor();
    // The judge, trained apart from the predictor the editor trained against.
    let mut judge =
        AttributePredictor::load(&repo().join("models/attributes/attributes-64-judge.onnx"), &cpu()).unwrap();
    let names: Vec<String> = judge.names().to_vec();
    let set = photos(9001, 9060);
    assert!(set.len() >= 55, "{} photos with a face", set.len());
    let mut lines = Vec::new();
    let (mut moved_total, mut asked_total) = (0.0, 0usize);
    for attr in ["Eyeglasses", "Smiling", "Blond_Hair", "Male"] {
        let k = names.iter().position(|n| n == attr).unwrap();
        let (mut shift, mut success, mut kept, mut n) = (0.0f64, 0usize, 0.0f64, 0usize);
        for (bgr, face) in &set {
            let before = judge.predict(bgr, std::slice::from_ref(face)).unwrap().remove(0);
            let add = before[k] < 0.5;
            ed.set_asks(&format!("{attr}={}", if add { 1 } else { -1 })).unwrap();
            let (out, _) = edited(&mut ed, bgr, std::slice::from_ref(face));
            let after = judge.predict(&out, std::slice::from_ref(face)).unwrap().remove(0);
            let dir = if add { 1.0 } else { -1.0 };
            shift += dir * (after[k] - before[k]) as f64;
            success += ((after[k] >= 0.5) == add) as usize;
            let same = (0..names.len()).filter(|&j| j != k && (after[j] >= 0.5) == (before[j] >= 0.5)).count();
            kept += same as f64 / (names.len() - 1) as f64;
            n += 1;
        }
        let (shift, success, kept) = (shift / n as f64, success as f64 / n as f64, kept / n as f64);
        lines.push(format!(
            "{attr}: probability moved {shift:+.3} the asked way, success {success:.2}, others kept {kept:.3}"
        ));
        moved_total += shift;
        asked_total += 1;
        assert!(kept >= 0.9, "{attr}: the other attributes kept only {kept:.3} of the time");
    }
    println!("{}", lines.join("\n"));
    let mean = moved_total / asked_total as f64;
    assert!(mean > 0.05, "the asked attributes moved {mean:+.3} on average:\n{}", lines.join("\n"));
}

/// A face that sits still in a noisy stream (sensor noise, new in every frame; the tracker
/// already steadies the detections): the edit itself (output minus input) changes less
/// from frame to frame when smoothed per track. The flicker figure is the mean absolute
/// frame-to-frame change of the edit, in 8-bit levels per pixel of the frame.
#[test]
fn smoothing_steadies_an_edit_in_a_noisy_stream() {
    let (bgr, mut face) = photos(9005, 9005).remove(0);
    face.id = 7;
    let mut flicker = Vec::new();
    for smoothing in [0.0, 0.8] {
        let mut ed = editor();
        ed.set_asks("Eyeglasses=1").unwrap();
        ed.set_smoothing(smoothing);
        let mut seed = 12345u64;
        let mut prev: Option<Vec<f64>> = None;
        let (mut total, mut frames) = (0.0f64, 0);
        for _ in 0..12 {
            let mut noisy = bgr.clone();
            for v in noisy.data_bytes_mut().unwrap() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let n = ((seed >> 33) % 9) as i32 - 4;
                *v = (*v as i32 + n).clamp(0, 255) as u8;
            }
            let (out, _) = edited(&mut ed, &noisy, std::slice::from_ref(&face));
            let edit: Vec<f64> = out
                .data_bytes()
                .unwrap()
                .iter()
                .zip(noisy.data_bytes().unwrap())
                .map(|(o, i)| *o as f64 - *i as f64)
                .collect();
            if let Some(p) = &prev {
                total += p.iter().zip(&edit).map(|(a, b)| (a - b).abs()).sum::<f64>() / edit.len() as f64;
                frames += 1;
            }
            prev = Some(edit);
        }
        flicker.push(total / frames as f64);
    }
    println!(
        "flicker (frame-to-frame change of the edit): unsmoothed {:.4}, smoothing 0.8 {:.4}",
        flicker[0], flicker[1]
    );
    assert!(flicker[1] < flicker[0] * 0.8, "smoothing did not steady the edit: {flicker:?}");
}
