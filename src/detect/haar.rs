//! The Haar frontal-face cascade with an eye cascade inside each face: the detector that
//! needs nothing but Debian's opencv-data. Eyes, when both are found, give a 2-point
//! alignment; otherwise the face is aligned by its box.
//!
//! Measured on the real-lq photos and dropped: rejecting faces without eyes (recall fell
//! from 24 to 16 of 25 for 2 fewer false faces), and adding the profile-face cascade and
//! its mirror (same 24 of 25 found, 3x the time: 1.6 s against 0.5 s per 720p frame).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use opencv::core::{Mat, Rect, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

use super::{Face, FaceDetector};

pub struct Haar {
    face: CascadeClassifier,
    eyes: CascadeClassifier,
}

fn load(dir: &Path, file: &str) -> Result<CascadeClassifier> {
    let path = dir.join(file);
    let c =
        CascadeClassifier::new(&*path.to_string_lossy()).with_context(|| format!("Haar cascade {}", path.display()))?;
    ensure!(!c.empty()?, "Haar cascade {}: missing or unreadable (install opencv-data)", path.display());
    Ok(c)
}

impl Haar {
    pub fn new(dir: &Path) -> Result<Self> {
        Ok(Self { face: load(dir, "haarcascade_frontalface_default.xml")?, eyes: load(dir, "haarcascade_eye.xml")? })
    }
}

impl FaceDetector for Haar {
    fn name(&self) -> &'static str {
        "haar"
    }

    fn native_min_face(&self) -> f32 {
        24.0
    }

    /// Real faces in the real-lq photos score 0.99 here; most false ones 0.76-0.96 (measured).
    fn default_threshold(&self) -> f32 {
        0.9
    }

    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Face>> {
        let mut gray = Mat::default();
        imgproc::cvt_color_def(bgr, &mut gray, imgproc::COLOR_BGR2GRAY)?;
        let mut eq = Mat::default();
        imgproc::equalize_hist(&gray, &mut eq)?;
        let found = cascade(&mut self.face, &eq)?;
        let mut faces = Vec::with_capacity(found.len());
        for (r, score) in found {
            let mut f = Face::from_box([r.x as f32, r.y as f32, r.width as f32, r.height as f32], score);
            f.eyes = self.find_eyes(&eq, r)?;
            faces.push(f);
        }
        Ok(faces)
    }
}

/// Boxes and scores of one cascade. Cascade weights are unbounded; they are squashed to
/// (0, 1) so score thresholds mean something.
fn cascade(c: &mut CascadeClassifier, gray: &Mat) -> Result<Vec<(Rect, f32)>> {
    let mut rects = Vector::<Rect>::new();
    let mut levels = Vector::<i32>::new();
    let mut weights = Vector::<f64>::new();
    c.detect_multi_scale3(
        gray,
        &mut rects,
        &mut levels,
        &mut weights,
        1.1,
        5,
        0,
        Size::new(24, 24),
        Size::default(),
        true,
    )?;
    Ok(rects.iter().zip(weights.iter()).map(|(r, w)| (r, 1.0 / (1.0 + (-(w as f32)).exp()))).collect())
}

impl Haar {
    /// Two eyes in the upper half of the face, image-left first.
    fn find_eyes(&mut self, gray: &Mat, face: Rect) -> Result<Option<[[f32; 2]; 2]>> {
        let upper = Rect::new(face.x, face.y, face.width, face.height / 2);
        if upper.width < 12 || upper.height < 6 {
            return Ok(None);
        }
        let roi = Mat::roi(gray, upper)?;
        let mut eyes = Vector::<Rect>::new();
        let min = (face.width / 8).max(4);
        self.eyes.detect_multi_scale(&roi, &mut eyes, 1.1, 3, 0, Size::new(min, min), Size::default())?;
        let mut centres: Vec<[f32; 2]> = eyes
            .iter()
            .map(|e| [(upper.x + e.x) as f32 + e.width as f32 / 2.0, (upper.y + e.y) as f32 + e.height as f32 / 2.0])
            .collect();
        if centres.len() < 2 {
            return Ok(None);
        }
        centres.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let (l, r) = (centres[0], centres[centres.len() - 1]);
        // Both eyes, one on each side of the face's centre line.
        let mid = face.x as f32 + face.width as f32 / 2.0;
        Ok((l[0] < mid && r[0] > mid).then_some([l, r]))
    }
}
