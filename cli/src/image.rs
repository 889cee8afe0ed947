//! Still images through the core (no GStreamer): enhance, and put pictures side by side.

use std::path::Path;

use anyhow::{bail, Result};
use opencv::core::{Mat, Point, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{core, imgcodecs, imgproc};

pub fn read(path: &Path) -> Result<Mat> {
    let m = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR)?;
    if m.empty() {
        bail!("{}: not an image OpenCV can read", path.display());
    }
    Ok(m)
}

pub fn write(path: &Path, m: &Mat) -> Result<()> {
    if !imgcodecs::imwrite(path, m, &Vector::new())? {
        bail!("{}: could not write", path.display());
    }
    Ok(())
}

pub fn side_by_side(left: &Mat, right: &Mat, scale: i32) -> Result<Mat> {
    let mut r = Mat::default();
    let h = left.rows();
    let w = (right.cols() as f64 * h as f64 / right.rows() as f64).round() as i32;
    imgproc::resize(right, &mut r, Size::new(w.max(1), h), 0.0, 0.0, imgproc::INTER_CUBIC)?;
    let mut both = Mat::default();
    let pair: Vector<Mat> = Vector::from_iter([left.clone(), r]);
    core::hconcat(&pair, &mut both)?;
    let mut out = Mat::default();
    let s = scale.max(1);
    imgproc::resize(&both, &mut out, Size::new(both.cols() * s, both.rows() * s), 0.0, 0.0, imgproc::INTER_NEAREST)?;
    for (text, x) in [("input", 4), ("faceenhance", left.cols() * s + 4)] {
        let org = Point::new(x, 14);
        // Dark outline, then white: readable on any background.
        for (shade, thickness) in [(0.0, 3), (255.0, 1)] {
            let (font, colour) = (imgproc::FONT_HERSHEY_SIMPLEX, Scalar::all(shade));
            imgproc::put_text(&mut out, text, org, font, 0.45, colour, thickness, imgproc::LINE_AA, false)?;
        }
    }
    Ok(out)
}
