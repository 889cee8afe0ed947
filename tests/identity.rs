//! The identity measure (issue 29): dlib's face net through ONNX Runtime on the pipeline's
//! own aligned crops, and a lying or damaged model refused with the file's name.

mod common;

use common::*;
use faceenhance::align;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::identity::{self, IdentityNet};
use opencv::core::Mat;

fn aligned(det: &mut Detector, file: &str) -> Mat {
    let mut m = imread(&shared().join("data/london-faces").join(file));
    let faces = det.detect_frame(&frame_from_mat(&mut m).unwrap()).unwrap();
    let f = faces.iter().max_by(|a, b| a.bbox[2].total_cmp(&b.bbox[2])).expect("a face");
    align::crop_face(&m, f, align::Template::Ffhq5, 256).unwrap()
}

#[test]
fn same_person_is_near_and_other_people_far_through_the_core() {
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();
    let mut id = IdentityNet::load(&identity::default_model(), &Default::default()).unwrap();
    let crops: Vec<Mat> =
        ["001_03.jpg", "001_08.jpg", "002_03.jpg", "002_08.jpg"].iter().map(|f| aligned(&mut det, f)).collect();
    let d = id.descriptors(&crops).unwrap();
    let (same1, same2) = (identity::distance(&d[0], &d[1]), identity::distance(&d[2], &d[3]));
    let other = [(0, 2), (0, 3), (1, 2), (1, 3)].map(|(a, b)| identity::distance(&d[a], &d[b]));
    println!("same person {same1:.3} {same2:.3}; different people {other:?}");
    assert!(same1 < 0.6 && same2 < 0.6);
    assert!(other.iter().all(|&o| o > 0.6));
    // a smaller copy of the crop is still the same person, nearer the smaller the loss
    let (half, small) = (resize(&crops[0], 128, 128), resize(&crops[0], 96, 96));
    let moved = id.moved(&[crops[0].clone(), crops[0].clone()], &[half, small]).unwrap();
    println!("a 128 px copy moved {:.3}, a 96 px copy {:.3}", moved[0], moved[1]);
    assert!(moved[0] < moved[1] && moved[1] < 0.3, "{moved:?}");
}

#[test]
fn a_lying_or_damaged_identity_model_is_refused_with_its_name() {
    let cpu = Default::default();
    // a restorer is not a face net: its output is an image, not 128 values
    let restorer = repo().join("models/restore-64.onnx");
    let e = format!("{:#}", IdentityNet::load(&restorer, &cpu).err().expect("a restorer is refused"));
    assert!(e.contains("restore-64.onnx"), "{e}");
    let tmp = std::env::temp_dir().join(format!("face-id-cut-{}.onnx", std::process::id()));
    let bytes = std::fs::read(identity::default_model()).unwrap();
    std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", IdentityNet::load(&tmp, &cpu).err().expect("a truncated model is refused"));
    assert!(e.contains("face-id-cut"), "{e}");
    std::fs::remove_file(&tmp).unwrap();
    let e = format!("{:#}", IdentityNet::load(std::path::Path::new("/nonexistent/id.onnx"), &cpu).err().unwrap());
    assert!(e.contains("/nonexistent/id.onnx") && e.contains("no such file"), "{e}");
}
