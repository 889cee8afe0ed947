//! Augmentation of clean crops before they are degraded: mirroring, and the random
//! similarity ([`Jitter`]) that frames faces as loosely as a detector frames them.

use anyhow::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::image::Img;

pub fn flip(img: &Img) -> Img {
    let mut out = img.clone();
    for y in 0..img.h {
        for x in 0..img.w {
            for c in 0..3 {
                out.data[(y * img.w + x) * 3 + c] = img.at(img.w - 1 - x, y, c);
            }
        }
    }
    out
}

/// Random similarity applied to each clean crop before degradation, so the model learns on
/// faces framed as loosely as a detector frames them (standard deviations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Jitter {
    /// Shift, as a fraction of the crop side.
    pub shift: f64,
    /// Scale, as the standard deviation of its natural log.
    pub scale: f64,
    /// Rotation in degrees.
    pub rotate: f64,
}

/// `img` moved by a random similarity (see `Jitter`), edges replicated as `crop_face` does.
pub fn jitter<R: Rng>(img: &Img, j: &Jitter, rng: &mut R) -> Result<Img> {
    use opencv::core::{Mat, Point2f, Scalar, Size, BORDER_REPLICATE};
    use opencv::prelude::MatTrait;
    let n = |rng: &mut R, sd: f64| rng.sample::<f64, _>(rand_distr::StandardNormal) * sd;
    let (dx, dy) = (n(rng, j.shift) * img.w as f64, n(rng, j.shift) * img.h as f64);
    let (scale, angle) = (n(rng, j.scale).exp(), n(rng, j.rotate));
    let centre = Point2f::new(img.w as f32 / 2.0, img.h as f32 / 2.0);
    let mut m = opencv::imgproc::get_rotation_matrix_2d(centre, angle, scale)?;
    *m.at_2d_mut::<f64>(0, 2)? += dx;
    *m.at_2d_mut::<f64>(1, 2)? += dy;
    let mut out = Mat::default();
    opencv::imgproc::warp_affine(
        &img.to_mat_f32()?,
        &mut out,
        &m,
        Size::new(img.w as i32, img.h as i32),
        opencv::imgproc::INTER_LINEAR,
        BORDER_REPLICATE,
        Scalar::default(),
    )?;
    Img::from_mat_f32(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn jitter_moves_the_crop_and_none_is_the_identity() {
        let img = crate::image::test_pattern(64, 3, 0.4);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let same = jitter(&img, &Jitter::default(), &mut rng).unwrap();
        let diff = |a: &Img, b: &Img| {
            a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.data.len() as f32
        };
        assert!(diff(&same, &img) < 1e-4);
        let moved = jitter(&img, &Jitter { shift: 0.05, scale: 0.05, rotate: 3.0 }, &mut rng).unwrap();
        assert!(diff(&moved, &img) > 1e-3, "{}", diff(&moved, &img));
    }
}
