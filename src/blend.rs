//! Paste-back: the restored crop is warped back into the frame with the inverse of the
//! alignment and mixed in under a feathered mask, so only pixels under the face change
//! and the seam fades out instead of showing a square.

use anyhow::Result;
use opencv::core::{self, Mat, Scalar, Size, Vector, BORDER_CONSTANT, CV_32FC1};
use opencv::imgproc;
use opencv::prelude::*;

use crate::align::Similarity;
use crate::frame::{frame_from_mat, Frame};

/// A `size` x `size` weight map: 1 in the middle, falling smoothly to 0 over the outer
/// `feather` fraction of the side.
pub fn feather_mask(size: i32, feather: f32) -> Result<Mat> {
    let mut m = Mat::new_rows_cols_with_default(size, size, CV_32FC1, Scalar::all(0.0))?;
    let band = (feather.clamp(0.0, 0.5) * size as f32).max(1.0);
    let data = m.data_typed_mut::<f32>()?;
    for y in 0..size {
        for x in 0..size {
            // Distance to the nearest edge, in pixel centres.
            let d = (x.min(size - 1 - x).min(y).min(size - 1 - y)) as f32 + 0.5;
            let t = (d / band).min(1.0);
            data[(y * size + x) as usize] = t * t * (3.0 - 2.0 * t);
        }
    }
    Ok(m)
}

/// The frame rectangle (x, y, w, h) covered by a `size` crop under `sim`, clipped.
pub fn covered_rect(sim: &Similarity, size: i32, width: i32, height: i32) -> Option<[i32; 4]> {
    let inv = sim.inverse();
    let s = size as f32;
    let pts = [[0.0, 0.0], [s, 0.0], [0.0, s], [s, s]].map(|p| inv.apply(p));
    let x0 = pts.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min).floor().max(0.0) as i32;
    let y0 = pts.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min).floor().max(0.0) as i32;
    let x1 = (pts.iter().map(|p| p[0]).fold(f32::NEG_INFINITY, f32::max).ceil() as i32).min(width);
    let y1 = (pts.iter().map(|p| p[1]).fold(f32::NEG_INFINITY, f32::max).ceil() as i32).min(height);
    (x1 > x0 && y1 > y0).then_some([x0, y0, x1 - x0, y1 - y0])
}

/// The BGR `size` x `size` crop of `src` under `sim` (None: the crop misses the frame).
/// Packed frames are warped from `mat` (the frame's own view, made once per frame by the
/// caller); I420 ones from a BGR copy of the face's surroundings, a pixel more on each side
/// for the interpolation at the crop's edge.
pub fn aligned_crop(
    src: &Frame,
    mat: Option<&opencv::boxed_ref::BoxedRef<'_, Mat>>,
    sim: &Similarity,
    size: i32,
) -> Result<Option<Mat>> {
    let Some([x, y, w, h]) = covered_rect(sim, size, src.width(), src.height()) else { return Ok(None) };
    let crop = match mat.filter(|_| !src.format().is_planar()) {
        Some(mat) => crate::frame::to_bgr(&crate::align::warp(mat, sim, size)?, src.format())?,
        None => {
            let (x0, y0) = ((x - 2).max(0), (y - 2).max(0));
            let (x1, y1) = ((x + w + 2).min(src.width()), (y + h + 2).min(src.height()));
            let region = src.bgr_region([x0, y0, x1 - x0, y1 - y0], 1.0)?;
            crate::align::warp(&region, &sim.with_source_offset(x0 as f64, y0 as f64), size)?
        }
    };
    Ok(Some(crop))
}

/// Blends `restored` (BGR, f32 in [0, 255] or u8, square) into `frame`, where `sim` maps frame
/// coordinates to `restored`'s. `mask` has `restored`'s size. Returns the rectangle that
/// may have changed; pixels outside it, and under a zero mask, are left bit-exact.
pub fn paste(
    frame: &mut Frame,
    restored: &Mat,
    mask: &Mat,
    sim: &Similarity,
    strength: f32,
) -> Result<Option<[i32; 4]>> {
    paste_as(frame, restored, mask, sim, strength, Mode::Mix)
}

/// Adds `residual` (BGR f32, a change in 8-bit levels, square) to `frame` under `mask`,
/// where `sim` maps frame coordinates to `residual`'s: the frame's own pixels are not
/// resampled, so where the residual is zero the face stays exactly as it was.
pub fn add_residual(frame: &mut Frame, residual: &Mat, mask: &Mat, sim: &Similarity) -> Result<Option<[i32; 4]>> {
    paste_as(frame, residual, mask, sim, 1.0, Mode::Add)
}

/// How a warped image meets the frame's pixels.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `v + a (f - v)`: the image replaces the frame under the mask.
    Mix,
    /// `v + a f`: the image is a change added to the frame.
    Add,
}

fn paste_as(
    frame: &mut Frame,
    restored: &Mat,
    mask: &Mat,
    sim: &Similarity,
    strength: f32,
    mode: Mode,
) -> Result<Option<[i32; 4]>> {
    let size = restored.rows();
    let Some([rx, ry, rw, rh]) = covered_rect(sim, size, frame.width(), frame.height()) else {
        return Ok(None);
    };
    if frame.format().is_planar() {
        // I420: pasted into a BGR copy of the (even-cornered) rectangle, written back.
        let [ex, ey, ew, eh] = frame.writable_around([rx, ry, rw, rh])?;
        let mut bgr = frame.bgr_region([ex, ey, ew, eh], 1.0)?;
        let sim = sim.with_source_offset(ex as f64, ey as f64);
        paste_as(&mut frame_from_mat(&mut bgr)?, restored, mask, &sim, strength, mode)?;
        frame.write_bgr_region(ex, ey, &bgr)?;
        return Ok(Some([ex, ey, ew, eh]));
    }
    let m = sim.with_source_offset(rx as f64, ry as f64).to_mat()?;
    // Face and weight travel as one 4-channel image: one warp instead of two. A face to
    // mix in travels as 8-bit (colours and weight x 255: the warp moves a quarter of the
    // bytes of float, which made it most of a carried frame's cost; at most about a level
    // off); a change to add keeps float, it has a sign.
    let bytes = mode == Mode::Mix;
    let mut both = Mat::default();
    if bytes {
        let (mut face, mut weight) = (Mat::default(), Mat::default());
        restored.convert_to(&mut face, opencv::core::CV_8U, 1.0, 0.0)?;
        mask.convert_to(&mut weight, opencv::core::CV_8U, 255.0, 0.0)?;
        core::merge(&Vector::<Mat>::from_iter([face, weight]), &mut both)?;
    } else {
        core::merge(&Vector::<Mat>::from_iter([restored.clone(), mask.clone()]), &mut both)?;
    }
    let mut warped = Mat::default();
    let flags = imgproc::INTER_LINEAR | imgproc::WARP_INVERSE_MAP;
    imgproc::warp_affine(&both, &mut warped, &m, Size::new(rw, rh), flags, BORDER_CONSTANT, Scalar::all(0.0))?;

    let [r_off, g_off, b_off] = frame.format().rgb_offsets();
    let offsets = [b_off, g_off, r_off];
    let ch = frame.format().channels();
    let stride = frame.stride();
    let strength = strength.clamp(0.0, 1.0);
    let data = frame.data_mut()?;
    let (w, x0, y0) = (rw as usize, rx as usize, ry as usize);
    let row = |y: usize| (y0 + y) * stride + x0 * ch;
    if bytes {
        // Fixed point: the weight in 0..=256, so v + a (f - v) is one multiply-add and a
        // shift per channel (this loop was most of a carried frame's paste in float).
        let k = (strength * 256.0 / 255.0 * 256.0).round() as u32;
        let warped = warped.data_bytes()?;
        for y in 0..rh as usize {
            let (start, src) = (row(y), &warped[y * w * 4..(y + 1) * w * 4]);
            for (px, f) in data[start..start + w * ch].chunks_exact_mut(ch).zip(src.chunks_exact(4)) {
                let a = (f[3] as u32 * k + 128) >> 8;
                if a == 0 {
                    continue;
                }
                for (c, &off) in offsets.iter().enumerate() {
                    px[off] = ((px[off] as u32 * (256 - a) + f[c] as u32 * a + 128) >> 8) as u8;
                }
            }
        }
    } else {
        let warped = warped.data_typed::<opencv::core::Vec4f>()?;
        for y in 0..rh as usize {
            let start = row(y);
            for (px, f) in data[start..start + w * ch].chunks_exact_mut(ch).zip(&warped[y * w..(y + 1) * w]) {
                let a = f[3] * strength;
                if a <= 0.0 {
                    continue;
                }
                for (c, &off) in offsets.iter().enumerate() {
                    // v + a f, rounded half up; `as u8` saturates at both ends.
                    px[off] = (px[off] as f32 + a * f[c] + 0.5) as u8;
                }
            }
        }
    }
    Ok(Some([rx, ry, rw, rh]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::PixelFormat;

    #[test]
    fn mask_is_one_inside_and_fades_to_zero_at_the_edge() {
        let m = feather_mask(64, 0.1).unwrap();
        let v = |x: i32, y: i32| *m.at_2d::<f32>(y, x).unwrap();
        assert_eq!(v(32, 32), 1.0);
        assert!(v(0, 32) < 0.05 && v(32, 63) < 0.05);
        assert!(v(3, 32) > v(1, 32) && v(6, 32) > v(3, 32), "monotone towards the middle");
    }

    #[test]
    fn paste_changes_only_the_covered_rectangle() {
        let (w, h) = (40u32, 30u32);
        let mut data = vec![50u8; (w * h * 4) as usize];
        let restored = Mat::new_rows_cols_with_default(16, 16, opencv::core::CV_32FC3, Scalar::all(250.0)).unwrap();
        let mask = feather_mask(16, 0.0).unwrap();
        // Crop of side 16 covering frame x 10..18, y 5..13 (scale 2).
        let sim = Similarity { a: 2.0, b: 0.0, tx: -20.0, ty: -10.0 };
        let mut frame = Frame::new(&mut data, w, h, (w * 4) as usize, PixelFormat::Bgrx).unwrap();
        let r = paste(&mut frame, &restored, &mask, &sim, 1.0).unwrap().unwrap();
        assert_eq!(r, [10, 5, 8, 8]);
        for y in 0..h as i32 {
            for x in 0..w as i32 {
                let px = &data[((y as u32 * w + x as u32) * 4) as usize..][..4];
                let inside = (10..18).contains(&x) && (5..13).contains(&y);
                if !inside {
                    assert_eq!(px, [50, 50, 50, 50], "({x},{y}) outside changed");
                }
                if (11..17).contains(&x) && (6..12).contains(&y) {
                    assert!(px[0] > 200 && px[3] == 50, "({x},{y}) inside: {px:?}");
                }
            }
        }
    }
}
