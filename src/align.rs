//! Similarity alignment of a face to a model's template, and its inverse.
//!
//! The same code crops faces for training (`faceenhance-train prepare`) and for inference,
//! so a model sees at run time exactly the framing it learned on.

use anyhow::{bail, Result};
use opencv::core::{Mat, Scalar, Size, ToInputArray, BORDER_REPLICATE, CV_64F};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Deserialize;

use crate::detect::Face;

/// The FFHQ 5-point template (eyes, nose, mouth corners) for a 512x512 crop.
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// The 5-point framing FaceFusion feeds GPEN-BFR-256 with (its `arcface_128_v2`), as
/// fractions of the crop side: the face sits higher and larger than in FFHQ.
pub const ARCFACE_128_UNIT: [[f32; 2]; 5] = [
    [0.3616766, 0.4038773],
    [0.6369672, 0.4023547],
    [0.5001969, 0.5604422],
    [0.3871039, 0.7216055],
    [0.6150773, 0.7203445],
];

/// How a face is framed in a model's square input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// FFHQ 5 points scaled to the crop size (GFPGAN, CodeFormer, GPEN-BFR 512+,
    /// RestoreFormer++, our models).
    #[default]
    Ffhq5,
    /// The ArcFace-128 5 points scaled to the crop size (GPEN-BFR-256 as published).
    Arcface128,
    /// Only the two FFHQ eye points.
    Eyes,
    /// The detector's box, centred, no rotation.
    Box,
}

/// A 2-D similarity `p' = [a -b; b a] p + t` from frame to crop coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// Least-squares similarity taking `src` points onto `dst` (closed form, no reflection).
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Result<Self> {
        if src.len() != dst.len() || src.len() < 2 {
            bail!("need at least two point pairs, got {} and {}", src.len(), dst.len());
        }
        let n = src.len() as f64;
        let mean = |p: &[[f32; 2]]| {
            let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + q[0] as f64, y + q[1] as f64));
            (sx / n, sy / n)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (px, py) = (s[0] as f64 - msx, s[1] as f64 - msy);
            let (qx, qy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        if den < 1e-9 {
            bail!("landmarks collapse to one point");
        }
        let (a, b) = (num_a / den, num_b / den);
        Ok(Self { a, b, tx: mdx - (a * msx - b * msy), ty: mdy - (b * msx + a * msy) })
    }

    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let (x, y) = (p[0] as f64, p[1] as f64);
        [(self.a * x - self.b * y + self.tx) as f32, (self.b * x + self.a * y + self.ty) as f32]
    }

    pub fn inverse(&self) -> Self {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Self { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }

    /// Scale factor (crop px per frame px).
    pub fn scale(&self) -> f64 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// This transform followed by a shift of the origin to (`x`, `y`) in the source,
    /// i.e. for a source region whose top-left corner is at (`x`, `y`).
    pub fn with_source_offset(&self, x: f64, y: f64) -> Self {
        Self { tx: self.tx + self.a * x - self.b * y, ty: self.ty + self.b * x + self.a * y, ..*self }
    }

    /// The same map between resampled images: from the source up-scaled `k_src` times
    /// to the crop up-scaled `k_crop` times, with `cv::resize`'s pixel-centre convention
    /// (index i of an image up-scaled k times sits at k i + (k - 1) / 2). Used to paste a
    /// super-resolved crop into an up-scaled frame without a half-pixel shift.
    pub fn between_scales(&self, k_src: f64, k_crop: f64) -> Self {
        let r = k_crop / k_src;
        let (a, b) = (self.a * r, self.b * r);
        let (hs, hc) = ((k_src - 1.0) / 2.0, (k_crop - 1.0) / 2.0);
        Self { a, b, tx: k_crop * self.tx - (a * hs - b * hs) + hc, ty: k_crop * self.ty - (b * hs + a * hs) + hc }
    }

    /// The 2x3 affine matrix OpenCV's `warp_affine` takes.
    pub fn to_mat(&self) -> Result<Mat> {
        let rows = [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]];
        let mut m = Mat::new_rows_cols_with_default(2, 3, CV_64F, Scalar::all(0.0))?;
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                *m.at_2d_mut::<f64>(r as i32, c as i32)? = *v;
            }
        }
        Ok(m)
    }
}

impl Template {
    /// The template's 5 points for a square crop of `size` px (`Eyes` and `Box` use the
    /// FFHQ points' eyes and nothing, respectively).
    pub fn points(self, size: i32) -> [[f32; 2]; 5] {
        match self {
            Self::Arcface128 => ARCFACE_128_UNIT.map(|[x, y]| [x * size as f32, y * size as f32]),
            Self::Ffhq5 | Self::Eyes | Self::Box => {
                let s = size as f32 / 512.0;
                FFHQ_512.map(|[x, y]| [x * s, y * s])
            }
        }
    }
}

/// Eye points a box implies (the FFHQ framing of YuNet-like boxes): used when a face has
/// neither landmarks nor eyes, so box-only faces land where the template expects them.
fn eyes_from_box(bbox: [f32; 4]) -> [[f32; 2]; 2] {
    let [x, y, w, h] = bbox;
    [[x + 0.3 * w, y + 0.4 * h], [x + 0.7 * w, y + 0.4 * h]]
}

/// The transform from frame to a `size` x `size` crop for `face` under `template`.
pub fn estimate(face: &Face, template: Template, size: i32) -> Result<Similarity> {
    let t = template.points(size);
    match template {
        Template::Ffhq5 | Template::Arcface128 => match (&face.landmarks, &face.eyes) {
            (Some(lm), _) => Similarity::fit(lm, &t),
            (None, Some(eyes)) => Similarity::fit(eyes, &t[..2]),
            (None, None) => Similarity::fit(&eyes_from_box(face.bbox), &t[..2]),
        },
        Template::Eyes => {
            let eyes = face.landmarks.map(|l| [l[0], l[1]]).or(face.eyes).unwrap_or_else(|| eyes_from_box(face.bbox));
            Similarity::fit(&eyes, &t[..2])
        }
        Template::Box => {
            let [x, y, w, h] = face.bbox;
            let side = w.max(h).max(1.0);
            let s = size as f32 / side;
            let (cx, cy) = (x + w / 2.0, y + h / 2.0);
            Ok(Similarity {
                a: s as f64,
                b: 0.0,
                tx: (size as f32 / 2.0 - s * cx) as f64,
                ty: (size as f32 / 2.0 - s * cy) as f64,
            })
        }
    }
}

/// Warps `src` (any channel count) into a `size` x `size` crop. Pixels outside the source
/// repeat its edge, so faces cut by the frame border still fill the crop.
pub fn warp(src: &impl ToInputArray, sim: &Similarity, size: i32) -> Result<Mat> {
    let mut out = Mat::default();
    imgproc::warp_affine(
        src,
        &mut out,
        &sim.to_mat()?,
        Size::new(size, size),
        imgproc::INTER_LINEAR,
        BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Ok(out)
}

/// The aligned BGR crop a model with this template and size is fed.
pub fn crop_face(bgr: &Mat, face: &Face, template: Template, size: i32) -> Result<Mat> {
    warp(bgr, &estimate(face, template, size)?, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS: [[f32; 2]; 5] = [[10.0, 20.0], [40.0, 22.0], [25.0, 35.0], [14.0, 50.0], [37.0, 51.0]];

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity { a: 1.3 * 0.3f64.cos(), b: 1.3 * 0.3f64.sin(), tx: 5.0, ty: -7.0 };
        let dst: Vec<[f32; 2]> = PTS.iter().map(|p| truth.apply(*p)).collect();
        let fit = Similarity::fit(&PTS, &dst).unwrap();
        for (got, want) in [(fit.a, truth.a), (fit.b, truth.b), (fit.tx, truth.tx), (fit.ty, truth.ty)] {
            assert!((got - want).abs() < 1e-4, "{fit:?} vs {truth:?}");
        }
    }

    #[test]
    fn inverse_undoes_the_transform() {
        let s = Similarity { a: 0.8, b: -0.4, tx: 12.0, ty: 3.0 };
        for p in PTS {
            let back = s.inverse().apply(s.apply(p));
            assert!((back[0] - p[0]).abs() < 1e-4 && (back[1] - p[1]).abs() < 1e-4);
        }
        let shifted = s.with_source_offset(10.0, 20.0);
        let p = [3.0, 4.0];
        let q = s.apply([13.0, 24.0]);
        let r = shifted.apply(p);
        assert!((q[0] - r[0]).abs() < 1e-4 && (q[1] - r[1]).abs() < 1e-4);
    }

    #[test]
    fn landmarks_land_on_the_template() {
        let mut face = Face::from_box([0.0, 0.0, 50.0, 60.0], 1.0);
        face.landmarks = Some(PTS);
        let t = Template::Ffhq5.points(64);
        // PTS is not an exact similarity image of the template: the residual is small.
        let sim = estimate(&face, Template::Ffhq5, 64).unwrap();
        let err: f32 = PTS.iter().zip(&t).map(|(p, q)| (sim.apply(*p)[0] - q[0]).hypot(sim.apply(*p)[1] - q[1])).sum();
        assert!(err / 5.0 < 3.0, "mean landmark error {} px", err / 5.0);
        // Two eyes map exactly onto the template's eyes.
        face.landmarks = None;
        face.eyes = Some([PTS[0], PTS[1]]);
        let sim = estimate(&face, Template::Ffhq5, 64).unwrap();
        for (p, q) in [PTS[0], PTS[1]].iter().zip(&t[..2]) {
            let m = sim.apply(*p);
            assert!((m[0] - q[0]).abs() < 1e-3 && (m[1] - q[1]).abs() < 1e-3);
        }
    }

    #[test]
    fn box_template_centres_the_box() {
        let face = Face::from_box([100.0, 50.0, 40.0, 80.0], 1.0);
        let sim = estimate(&face, Template::Box, 64).unwrap();
        let c = sim.apply([120.0, 90.0]);
        assert!((c[0] - 32.0).abs() < 1e-3 && (c[1] - 32.0).abs() < 1e-3);
        assert!((sim.scale() - 0.8).abs() < 1e-6, "longer side fills the crop");
    }

    #[test]
    fn degenerate_landmarks_are_an_error() {
        assert!(Similarity::fit(&[[1.0, 1.0], [1.0, 1.0]], &[[0.0, 0.0], [5.0, 0.0]]).is_err());
        assert!(Similarity::fit(&[[1.0, 1.0]], &[[0.0, 0.0]]).is_err());
    }
}
