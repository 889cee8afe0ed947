//! The shipped attribute predictor on CelebA photos it never trained on (the validation
//! files, numbered above 9000): whole photos, faces found by YuNet and aligned by the core,
//! as `faceenhance attributes` and the attribute-guided models see them.

mod common;

use common::*;
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::attributes::AttributePredictor;
use faceenhance::model::{Provider, ProviderOptions};

#[test]
fn attributes_of_held_out_celeba_faces() {
    let labels = std::fs::read_to_string(shared().join("data/celeba-10k-attributes.txt")).unwrap();
    let mut lines = labels.lines();
    let names: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let rows: Vec<(u32, Vec<bool>)> = lines
        .map(|l| {
            let mut f = l.split_whitespace();
            let n: u32 = f.next().unwrap().trim_end_matches(".jpg").parse().unwrap();
            (n, f.map(|v| v == "1").collect())
        })
        .collect();

    let cpu = ProviderOptions { provider: Provider::Cpu, ..Default::default() };
    let mut p = AttributePredictor::load(&repo().join("models/attributes/attributes-64.onnx"), &cpu).unwrap();
    assert_eq!(p.names(), names.as_slice(), "the profile lists the label file's attributes in order");
    let mut det =
        Detector::new(DetectorConfig { kind: DetectorKind::YuNet, model: Some(yunet()), ..Default::default() })
            .unwrap();

    // Always answering the training photos' majority label: the bar to clear.
    let train: Vec<&Vec<bool>> = rows.iter().filter(|(n, _)| *n <= 9000).map(|(_, v)| v).collect();
    let majority: Vec<bool> =
        (0..names.len()).map(|a| train.iter().filter(|v| v[a]).count() * 2 > train.len()).collect();

    let (mut right, mut base, mut faces) = (vec![0usize; names.len()], vec![0usize; names.len()], 0usize);
    for (n, truth) in rows.iter().filter(|(n, _)| (9001..=9200).contains(n)) {
        let mut bgr = imread(&shared().join(format!("data/celeba-10k/{n:06}.jpg")));
        let found = det.detect_frame(&frame_from_mat(&mut bgr).unwrap()).unwrap();
        let Some(face) = found.into_iter().max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
        else {
            continue;
        };
        let probs = &p.predict(&bgr, &[face]).unwrap()[0];
        for a in 0..names.len() {
            right[a] += ((probs[a] > 0.5) == truth[a]) as usize;
            base[a] += (majority[a] == truth[a]) as usize;
        }
        faces += 1;
    }
    assert!(faces >= 190, "only {faces} of 200 photos had a face");
    let acc = |a: usize| right[a] as f64 / faces as f64;
    let mean = (0..names.len()).map(acc).sum::<f64>() / names.len() as f64;
    let mean_base = base.iter().sum::<usize>() as f64 / (faces * names.len()) as f64;
    let at = |name: &str| acc(names.iter().position(|n| *n == name).unwrap());
    println!(
        "{faces} faces: mean accuracy {mean:.3} (majority label {mean_base:.3}); Male {:.3}, Smiling {:.3}, \
         Eyeglasses {:.3}, Blond_Hair {:.3}",
        at("Male"),
        at("Smiling"),
        at("Eyeglasses"),
        at("Blond_Hair")
    );
    assert!(mean > mean_base + 0.03, "mean {mean:.3} against the majority label's {mean_base:.3}");
    assert!(at("Male") >= 0.85 && at("Smiling") >= 0.8, "Male {:.3}, Smiling {:.3}", at("Male"), at("Smiling"));
}
