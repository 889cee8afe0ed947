//! How much detail a face really has: a face of 100 px whose edges are blurred over three
//! pixels carries no more than a sharp 35 px face, and a super-resolution rung that draws a
//! face from 32 px restores it better than a 1x rung that can only take noise and blocks
//! off its blur. The ladder picks models by this effective size, not the pixel size.
//!
//! The blur is measured by re-blurring (Zhuo & Sim's defocus estimate, over the whole face):
//! a step edge blurred by a Gaussian of sigma `s` keeps `sqrt(s^2 + b^2) / s` times its
//! gradient when blurred again by `b`, so the ratio at the face's strongest edges tells `s`.
//! Noise and JPEG blocks add sharp edges of their own and make a face look sharper than it
//! is: the estimate errs on the side of the 1x rungs.

use anyhow::Result;
use opencv::core::{Mat, Size, BORDER_REFLECT_101, CV_32F};
use opencv::imgproc;
use opencv::prelude::*;

/// The re-blur's sigma, in pixels of the crop.
const REBLUR: f64 = 1.0;
/// Share of the face's pixels taken as its edges (the strongest gradients).
const EDGE_SHARE: f64 = 0.1;

/// Blur of the face in `crop` (BGR, 8-bit, an aligned crop: the face in its middle), as
/// the sigma in crop pixels of the Gaussian that would blur a sharp face that much; 0.5-0.7
/// for a sharp, well-sampled face. Measured in the middle 60 % of the crop (eyes, nose,
/// mouth; no background).
pub fn blur_sigma(crop: &Mat) -> Result<f64> {
    let (w, h) = (crop.cols(), crop.rows());
    let inner = opencv::core::Rect::new(w / 5, h / 5, w - 2 * (w / 5), h - 2 * (h / 5));
    let mut grey = Mat::default();
    imgproc::cvt_color(&Mat::roi(crop, inner)?, &mut grey, imgproc::COLOR_BGR2GRAY, 0)?;
    let mut f = Mat::default();
    grey.convert_to(&mut f, CV_32F, 1.0, 0.0)?;
    let mut blurred = Mat::default();
    imgproc::gaussian_blur(&f, &mut blurred, Size::new(0, 0), REBLUR, REBLUR, BORDER_REFLECT_101)?;
    let (g, gb) = (gradient(&f)?, gradient(&blurred)?);
    // the strongest edges: pixels whose gradient is in the top EDGE_SHARE
    let mut values: Vec<f32> = g.data_typed::<f32>()?.to_vec();
    if values.len() < 16 {
        return Ok(0.0);
    }
    let k = ((values.len() as f64) * (1.0 - EDGE_SHARE)) as usize;
    let (_, &mut threshold, _) = values.select_nth_unstable_by(k, f32::total_cmp);
    let (g, gb) = (g.data_typed::<f32>()?, gb.data_typed::<f32>()?);
    let mut ratios: Vec<f64> = g
        .iter()
        .zip(gb)
        .filter(|(&a, &b)| a >= threshold && a > 1.0 && b > 0.0)
        .map(|(&a, &b)| (a / b) as f64)
        .collect();
    if ratios.is_empty() {
        // a flat crop: nothing to measure, take it as sharp
        return Ok(0.0);
    }
    let mid = ratios.len() / 2;
    let (_, &mut r, _) = ratios.select_nth_unstable_by(mid, f64::total_cmp);
    // r = sqrt(s^2 + b^2) / s  =>  s = b / sqrt(r^2 - 1)
    Ok(if r <= 1.0 + 1e-6 { f64::INFINITY } else { REBLUR / (r * r - 1.0).sqrt() })
}

/// Gradient magnitude (3x3 Sobel) of a one-channel float image.
fn gradient(f: &Mat) -> Result<Mat> {
    let (mut gx, mut gy) = (Mat::default(), Mat::default());
    imgproc::sobel(f, &mut gx, CV_32F, 1, 0, 3, 1.0, 0.0, BORDER_REFLECT_101)?;
    imgproc::sobel(f, &mut gy, CV_32F, 0, 1, 3, 1.0, 0.0, BORDER_REFLECT_101)?;
    let mut mag = Mat::default();
    opencv::core::magnitude(&gx, &gy, &mut mag)?;
    Ok(mag)
}

/// The blur of a sharp, well-sampled face as [`blur_sigma`] measures it (the held-out
/// London faces at 64-128 px with noise and JPEG: 0.7-1.1 by person, 1.25 at 256 px).
const SHARP_SIGMA: f64 = 1.0;
/// How fast the detail falls with the measured blur: the size goes with the square of
/// the sharp blur over the measured one. Calibrated on the held-out London faces of
/// 64-128 px blurred by 0.5-3 px, where the route it picks gains the most (see the card).
const DETAIL_POWER: f64 = 2.0;
/// A face never counts as less than a quarter of its size.
const MIN_LOG_RATIO: f64 = -1.386;

/// ln(detail size / pixel size) of a face whose blur measures `sigma` ([`blur_sigma`]):
/// 0 for a sharp face, ln(1/4) at most for a blurred one.
pub fn detail_log_ratio(sigma: f64) -> f64 {
    if !sigma.is_finite() {
        return MIN_LOG_RATIO;
    }
    (DETAIL_POWER * (SHARP_SIGMA / sigma.max(1e-3)).ln()).clamp(MIN_LOG_RATIO, 0.0)
}
