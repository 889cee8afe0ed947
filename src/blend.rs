//! Paste-back: the restored crop is warped back into the frame with the inverse of the
//! alignment and mixed in under a feathered mask, so only pixels under the face change
//! and the seam fades out instead of showing a square.

use anyhow::Result;
use opencv::core::{self, Mat, Scalar, Size, Vector, BORDER_CONSTANT, CV_32FC1, CV_8U, CV_8UC1, CV_8UC4};
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

/// The `size` x `size` crop of `src` under `sim` (None: the crop misses the frame), B, G
/// and R first: BGR, or BGRx/BGRA as a 4-byte frame of that order is warped (the models
/// skip the fourth byte; a conversion would be one more face-sized copy). Packed frames
/// are warped from `mat` (the frame's own view, made once per frame by the caller); I420
/// ones from a BGR copy of the face's surroundings, a pixel more on each side for the
/// interpolation at the crop's edge.
pub fn aligned_crop(
    src: &Frame,
    mat: Option<&opencv::boxed_ref::BoxedRef<'_, Mat>>,
    sim: &Similarity,
    size: i32,
) -> Result<Option<Mat>> {
    let Some([x, y, w, h]) = covered_rect(sim, size, src.width(), src.height()) else { return Ok(None) };
    let crop = match mat.filter(|_| !src.format().is_planar()) {
        Some(mat) => {
            let warped = crate::align::warp(mat, sim, size)?;
            if src.format().is_bgr_first() {
                warped
            } else {
                crate::frame::to_bgr(&warped, src.format())?
            }
        }
        None => {
            let (x0, y0) = ((x - 2).max(0), (y - 2).max(0));
            let (x1, y1) = ((x + w + 2).min(src.width()), (y + h + 2).min(src.height()));
            let region = src.bgr_region([x0, y0, x1 - x0, y1 - y0], 1.0)?;
            crate::align::warp(&region, &sim.with_source_offset(x0 as f64, y0 as f64), size)?
        }
    };
    Ok(Some(crop))
}

/// The feather mask as 8-bit weights (x 255): the alpha byte of what [`paste`] takes.
pub fn feather_weights(size: i32, feather: f32) -> Result<Mat> {
    let mut w = Mat::default();
    feather_mask(size, feather)?.convert_to(&mut w, CV_8U, 255.0, 0.0)?;
    Ok(w)
}

/// `face` (BGR-first, 3 or 4 channels, u8 or f32 in [0, 255]) with `weights` (u8, its
/// size) as a BGRA image: face and weight then travel through one 8-bit warp (a quarter of
/// the bytes of float; at most about a level off). One pass into the new image: no copy of
/// the face or the weights on the way.
pub fn weighted(face: Mat, weights: &Mat) -> Result<Mat> {
    let face = if face.depth() == CV_8U {
        face
    } else {
        let mut face8 = Mat::default();
        face.convert_to(&mut face8, CV_8U, 1.0, 0.0)?;
        face8
    };
    let ch = face.channels() as usize;
    anyhow::ensure!(
        face.size()? == weights.size()? && (ch == 3 || ch == 4) && weights.typ() == CV_8UC1 && weights.is_continuous(),
        "a {}x{}x{ch} face and {}x{} weights",
        face.cols(),
        face.rows(),
        weights.cols(),
        weights.rows()
    );
    let face = if face.is_continuous() { face } else { face.try_clone()? };
    let mut both = Mat::new_rows_cols_with_default(face.rows(), face.cols(), CV_8UC4, Scalar::all(0.0))?;
    for ((o, px), &a) in
        both.data_bytes_mut()?.chunks_exact_mut(4).zip(face.data_bytes()?.chunks_exact(ch)).zip(weights.data_bytes()?)
    {
        o[..3].copy_from_slice(&px[..3]);
        o[3] = a;
    }
    Ok(both)
}

/// Mixes `face` (BGRA u8 from [`weighted`], square: colour and weight) into `frame`, where
/// `sim` maps frame coordinates to `face`'s. Returns the rectangle that may have changed;
/// pixels outside it, and under a zero weight, are left bit-exact.
pub fn paste(frame: &mut Frame, face: &Mat, sim: &Similarity, strength: f32) -> Result<Option<[i32; 4]>> {
    let Some(rect) = covered_rect(sim, face.rows(), frame.width(), frame.height()) else {
        return Ok(None);
    };
    // even corners for I420, whose colour covers 2x2 blocks
    let [x, y, w, h] = frame.writable_around(rect)?;
    let warped = warp_into(face, &sim.with_source_offset(x as f64, y as f64), w, h)?;
    frame.mix_bgra(x, y, &warped, strength)?;
    Ok(Some([x, y, w, h]))
}

/// `image` warped into a `w` x `h` frame region whose top-left pixel `sim` (offset to the
/// region) maps; zero outside the image.
fn warp_into(image: &Mat, sim: &Similarity, w: i32, h: i32) -> Result<Mat> {
    let mut warped = Mat::default();
    let flags = imgproc::INTER_LINEAR | imgproc::WARP_INVERSE_MAP;
    imgproc::warp_affine(
        image,
        &mut warped,
        &sim.to_mat()?,
        Size::new(w, h),
        flags,
        BORDER_CONSTANT,
        Scalar::all(0.0),
    )?;
    Ok(warped)
}

/// Adds `residual` (BGR f32, a change in 8-bit levels, square) to `frame` under `mask`
/// (f32), where `sim` maps frame coordinates to `residual`'s: the frame's own pixels are
/// not resampled, so where the residual is zero the face stays exactly as it was.
pub fn add_residual(frame: &mut Frame, residual: &Mat, mask: &Mat, sim: &Similarity) -> Result<Option<[i32; 4]>> {
    let size = residual.rows();
    let Some([rx, ry, rw, rh]) = covered_rect(sim, size, frame.width(), frame.height()) else {
        return Ok(None);
    };
    if frame.format().is_planar() {
        // I420: added in a BGR copy of the (even-cornered) rectangle, written back (a
        // signed change has no 8-bit I420 form to mix in the planes).
        let [ex, ey, ew, eh] = frame.writable_around([rx, ry, rw, rh])?;
        let mut bgr = frame.bgr_region([ex, ey, ew, eh], 1.0)?;
        let sim = sim.with_source_offset(ex as f64, ey as f64);
        add_residual(&mut frame_from_mat(&mut bgr)?, residual, mask, &sim)?;
        frame.write_bgr_region(ex, ey, &bgr)?;
        return Ok(Some([ex, ey, ew, eh]));
    }
    let mut both = Mat::default();
    core::merge(&Vector::<Mat>::from_iter([residual.clone(), mask.clone()]), &mut both)?;
    let warped = warp_into(&both, &sim.with_source_offset(rx as f64, ry as f64), rw, rh)?;
    let [r_off, g_off, b_off] = frame.format().rgb_offsets();
    let offsets = [b_off, g_off, r_off];
    let ch = frame.format().channels();
    let stride = frame.stride();
    let data = frame.data_mut()?;
    let (w, x0, y0) = (rw as usize, rx as usize, ry as usize);
    let warped = warped.data_typed::<opencv::core::Vec4f>()?;
    for y in 0..rh as usize {
        let start = (y0 + y) * stride + x0 * ch;
        for (px, f) in data[start..start + w * ch].chunks_exact_mut(ch).zip(&warped[y * w..(y + 1) * w]) {
            if f[3] <= 0.0 {
                continue;
            }
            for (c, &off) in offsets.iter().enumerate() {
                // v + a f, rounded half up; `as u8` saturates at both ends.
                px[off] = (px[off] as f32 + f[3] * f[c] + 0.5) as u8;
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
        let restored = weighted(restored, &feather_weights(16, 0.0).unwrap()).unwrap();
        // Crop of side 16 covering frame x 10..18, y 5..13 (scale 2).
        let sim = Similarity { a: 2.0, b: 0.0, tx: -20.0, ty: -10.0 };
        let mut frame = Frame::new(&mut data, w, h, (w * 4) as usize, PixelFormat::Bgrx).unwrap();
        let r = paste(&mut frame, &restored, &sim, 1.0).unwrap().unwrap();
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
