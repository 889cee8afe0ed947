//! `align-error`: how far the pipeline's detector frames a face from where it frames the same
//! face at full resolution, at each crop size. The answer is the `jitter` a model of that
//! size should train with (issue 13: the gain must survive detection).
//!
//! For each image, the reference is the face as detected with its FFHQ crop at
//! `REFERENCE_SIZE` px, where YuNet is most at home (its faces are then ~100 px; on the
//! 500 px faces of the full-resolution photos its landmarks drift by 10 % of the face,
//! measured). The image is then area-down-scaled so that the face's crop spans `size` px,
//! detected again, and the detected landmarks are mapped back. The similarity between the reference crop and the
//! detected crop is split into a shift of the crop centre (fraction of the crop side), a
//! log-scale and a rotation; their standard deviations over the images are reported.

use std::path::PathBuf;

use anyhow::{Context, Result};
use faceenhance::align::{estimate, Similarity, Template};
use faceenhance::detect::{Detector, DetectorConfig, DetectorKind, Face};
use faceenhance::frame::frame_from_mat;
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use serde::Serialize;

use crate::data::prepare::best_face;

pub struct AlignErrorArgs {
    pub input: PathBuf,
    pub sizes: Vec<i32>,
    pub detector: DetectorKind,
    pub detector_model: Option<PathBuf>,
    pub limit: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct SizeError {
    pub size: i32,
    pub faces: usize,
    pub found: usize,
    /// Standard deviations (about zero) of the crop-centre shift per axis, as a fraction
    /// of the crop side; of the log-scale; of the rotation in degrees.
    pub shift: f64,
    pub log_scale: f64,
    pub rotate_deg: f64,
    /// Mean displacement of the five template points, in crop pixels.
    pub mean_point_px: f64,
}

pub fn run(a: &AlignErrorArgs) -> Result<Vec<SizeError>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    files.truncate(a.limit);
    let cfg = DetectorConfig {
        kind: a.detector,
        model: a.detector_model.clone(),
        // what the element runs with, but small enough to find the smallest sizes measured
        min_face_size: 8.0,
        ..Default::default()
    };
    let mut det = Detector::new(cfg)?;
    let mut out: Vec<SizeError> = a.sizes.iter().map(|&size| SizeError { size, ..Default::default() }).collect();
    let mut acc = vec![[0.0f64; 4]; a.sizes.len()];
    for path in &files {
        let bgr = opencv::imgcodecs::imread(path.to_str().context("path")?, opencv::imgcodecs::IMREAD_COLOR)?;
        if bgr.empty() {
            continue;
        }
        let Some(first) = best_face(detect(&mut det, &bgr)?) else { continue };
        let Some(reference) = detect_at(&mut det, &bgr, &first, REFERENCE_SIZE)? else { continue };
        for (k, &size) in a.sizes.iter().enumerate() {
            let r = estimate(&reference, Template::Ffhq5, size)?;
            if r.scale() >= 1.0 {
                continue;
            }
            out[k].faces += 1;
            let Some(back) = detect_at(&mut det, &bgr, &reference, size)? else { continue };
            let d = estimate(&back, Template::Ffhq5, size)?;
            // reference crop -> detected crop
            let t = compose(&d, &r.inverse());
            let c = size as f64 / 2.0;
            let moved = t.apply([c as f32, c as f32]);
            let (sx, sy) = ((moved[0] as f64 - c) / size as f64, (moved[1] as f64 - c) / size as f64);
            let pts = Template::Ffhq5.points(size);
            let disp: f64 = pts
                .iter()
                .map(|p| {
                    let q = t.apply(*p);
                    (((q[0] - p[0]) as f64).powi(2) + ((q[1] - p[1]) as f64).powi(2)).sqrt()
                })
                .sum::<f64>()
                / 5.0;
            out[k].found += 1;
            acc[k][0] += sx * sx + sy * sy;
            acc[k][1] += t.scale().ln().powi(2);
            acc[k][2] += t.b.atan2(t.a).to_degrees().powi(2);
            acc[k][3] += disp;
        }
    }
    for (o, s) in out.iter_mut().zip(&acc) {
        let n = o.found.max(1) as f64;
        o.shift = (s[0] / (2.0 * n)).sqrt();
        o.log_scale = (s[1] / n).sqrt();
        o.rotate_deg = (s[2] / n).sqrt();
        o.mean_point_px = s[3] / n;
    }
    Ok(out)
}

/// Crop side of the reference detection.
const REFERENCE_SIZE: i32 = 256;

/// `face` detected again on `bgr` area-down-scaled so that its crop spans `size` px, in
/// `bgr`'s coordinates.
fn detect_at(det: &mut Detector, bgr: &Mat, face: &Face, size: i32) -> Result<Option<Face>> {
    // frame px -> crop px is the similarity's scale: down-scale so a crop px is a frame px
    let f = estimate(face, Template::Ffhq5, size)?.scale().min(1.0);
    let mut small = Mat::default();
    let sz = Size::new((bgr.cols() as f64 * f).round() as i32, (bgr.rows() as f64 * f).round() as i32);
    opencv::imgproc::resize(bgr, &mut small, sz, 0.0, 0.0, opencv::imgproc::INTER_AREA)?;
    let fx = bgr.cols() as f64 / sz.width as f64;
    let Some(found) = best_face(detect(det, &small)?) else { return Ok(None) };
    // area resize maps pixel centres: frame = (small + 0.5) * fx - 0.5
    let mut back = found.scaled(fx as f32);
    let off = (0.5 * fx - 0.5) as f32;
    if let Some(l) = back.landmarks.as_mut() {
        l.iter_mut().flatten().for_each(|v| *v += off);
    }
    Ok(Some(back))
}

/// The pipeline's path: a frame, its scaled detection copy, faces in frame coordinates.
fn detect(det: &mut Detector, bgr: &Mat) -> Result<Vec<Face>> {
    let mut bgr = bgr.try_clone()?;
    det.detect_frame(&frame_from_mat(&mut bgr)?)
}

/// `first` after `second`.
fn compose(first: &Similarity, second: &Similarity) -> Similarity {
    let (a, b) = (first.a * second.a - first.b * second.b, first.a * second.b + first.b * second.a);
    let t = first.apply([second.tx as f32, second.ty as f32]);
    Similarity { a, b, tx: t[0] as f64, ty: t[1] as f64 }
}
