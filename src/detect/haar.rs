//! The Haar frontal-face and profile-face cascades with an eye cascade inside each face:
//! the detector that needs nothing but Debian's opencv-data. Eyes, when both are found,
//! give a 2-point alignment; otherwise the face is aligned by its box. (Rejecting faces
//! without eyes was measured on the real-lq photos and dropped: recall fell from 24 to
//! 16 of 25 faces for 2 fewer false ones.)

use std::path::Path;

use anyhow::{ensure, Context, Result};
use opencv::core::{Mat, Rect, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

use super::{Face, FaceDetector};

pub struct Haar {
    face: CascadeClassifier,
    profile: CascadeClassifier,
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
        Ok(Self {
            face: load(dir, "haarcascade_frontalface_default.xml")?,
            profile: load(dir, "haarcascade_profileface.xml")?,
            eyes: load(dir, "haarcascade_eye.xml")?,
        })
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
        let width = eq.cols();
        let mut found = cascade(&mut self.face, &eq)?;
        // Faces turned aside: the profile cascade finds left-facing ones; mirrored, right-facing.
        found.extend(cascade(&mut self.profile, &eq)?);
        let mut flipped = Mat::default();
        opencv::core::flip(&eq, &mut flipped, 1)?;
        for (r, w) in cascade(&mut self.profile, &flipped)? {
            found.push((Rect::new(width - r.x - r.width, r.y, r.width, r.height), w));
        }
        // One box per face: frontal and profile hits of the same face overlap.
        let boxes: Vector<Rect> = found.iter().map(|(r, _)| *r).collect();
        let scores: Vector<f32> = found.iter().map(|(_, w)| *w).collect();
        let mut keep = Vector::<i32>::new();
        opencv::dnn::nms_boxes(&boxes, &scores, 0.0, 0.3, &mut keep, 1.0, 0)?;
        let mut faces = Vec::with_capacity(keep.len());
        for i in keep {
            let (r, score) = found[i as usize];
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
