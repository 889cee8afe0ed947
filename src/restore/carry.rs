//! Carried restorations: a face's last restoration (its residual, output minus input in
//! the aligned crop) added to the face's crop on later frames, so a tracked face stays
//! restored without running the model on every frame.

use std::collections::HashMap;

use anyhow::{ensure, Result};
use opencv::core::{Mat, Scalar, Size, CV_16SC3, CV_32F, CV_8U, CV_8UC4};
use opencv::imgproc;
use opencv::prelude::*;

use super::ladder::Job;

/// A face's last restoration: the model's output minus its input (both at the output
/// size), in whole 8-bit levels (16-bit signed: a carried frame adds it to its 8-bit crop
/// in one saturating pass, where float cost three), in the aligned crop's coordinates, and
/// how many frames it has been carried.
pub(crate) struct Carry {
    pub(super) rung: usize,
    pub(super) residual: Mat,
    age: u32,
}

impl Carry {
    /// Frames since the restoration was made.
    pub(crate) fn age(&self) -> u32 {
        self.age
    }
}

/// The depth a carry keeps its residual in (see [`Carry`]).
pub(crate) const LEVELS: i32 = CV_16SC3;

/// The model's output (BGR f32, or the BGRA u8 image the paste takes) minus its input crop
/// (BGR-first u8, 3 or 4 channels) brought to the output size, as `depth` (f32, or
/// [`LEVELS`] for a carry: rounded in the same pass): what restoration added, ready to be
/// added to a later crop of the same face.
pub(crate) fn residual(output: &Mat, crop: &Mat, depth: i32) -> Result<Mat> {
    let sized = resized(crop, output.rows())?;
    let crop = sized.as_ref().unwrap_or(crop);
    if output.depth() == CV_8U && depth == LEVELS && output.is_continuous() && crop.is_continuous() {
        // 8-bit both: one pass, whatever their channel counts (no BGR copy of either)
        let (co, ci) = (output.channels() as usize, crop.channels() as usize);
        ensure!(output.total() == crop.total(), "output of {} pixels for a crop of {}", output.total(), crop.total());
        let mut d = Mat::new_rows_cols_with_default(output.rows(), output.cols(), LEVELS, Scalar::all(0.0))?;
        let (o, i) = (output.data_bytes()?, crop.data_bytes()?);
        for ((r, po), pi) in
            d.data_typed_mut::<opencv::core::Vec3s>()?.iter_mut().zip(o.chunks_exact(co)).zip(i.chunks_exact(ci))
        {
            for c in 0..3 {
                r[c] = po[c] as i16 - pi[c] as i16;
            }
        }
        return Ok(d);
    }
    let mut d = Mat::default();
    let (o, i) = (bgr_f32(output)?, bgr_f32(crop)?);
    opencv::core::subtract(&o, &i, &mut d, &opencv::core::no_array(), depth)?;
    Ok(d)
}

/// The first three channels of a BGR-first image, as f32.
fn bgr_f32(m: &Mat) -> Result<Mat> {
    let mut three = Mat::default();
    let m = if m.channels() == 4 {
        imgproc::cvt_color_def(m, &mut three, imgproc::COLOR_BGRA2BGR)?;
        &three
    } else {
        m
    };
    let mut f = Mat::default();
    m.convert_to(&mut f, CV_32F, 1.0, 0.0)?;
    Ok(f)
}

/// A crop enlarged to `size` (bicubic) when a super-resolution model's output is larger
/// than its input; `None` when it is that size already.
fn resized(crop: &Mat, size: i32) -> Result<Option<Mat>> {
    if crop.rows() == size {
        return Ok(None);
    }
    let mut m = Mat::default();
    imgproc::resize(crop, &mut m, Size::new(size, size), 0.0, 0.0, imgproc::INTER_CUBIC)?;
    Ok(Some(m))
}

/// `crop` (BGR-first u8, 3 or 4 channels) with `carry`'s residual added (saturating), at
/// the carry's size, with `weights` as its alpha: the BGRA image
/// [`crate::blend::paste`] takes, made in one pass.
pub(super) fn carried(crop: &Mat, carry: &Carry, weights: &Mat) -> Result<Mat> {
    let sized = resized(crop, carry.residual.rows())?;
    let crop = sized.as_ref().unwrap_or(crop);
    let n = crop.total();
    ensure!(
        crop.is_continuous() && carry.residual.total() == n && weights.total() == n && weights.is_continuous(),
        "carry of {} pixels for a crop of {n}",
        carry.residual.total()
    );
    let ch = crop.channels() as usize;
    // flat slices: the compiler vectorises the saturating add (OpenCV's u8 + i16 -> u8 goes
    // through 32-bit and cost twice as much)
    let mut out = Mat::new_rows_cols_with_default(crop.rows(), crop.cols(), CV_8UC4, Scalar::all(0.0))?;
    let (src, res, w) =
        (crop.data_bytes()?, carry.residual.data_typed::<opencv::core::Vec3s>()?, weights.data_bytes()?);
    for (((o, s), r), &a) in out.data_bytes_mut()?.chunks_exact_mut(4).zip(src.chunks_exact(ch)).zip(res).zip(w) {
        for c in 0..3 {
            o[c] = (s[c] as i16 + r[c]).clamp(0, 255) as u8;
        }
        o[3] = a;
    }
    Ok(out)
}

/// Carried restorations by face key; those of faces gone from the frame are dropped.
#[derive(Default)]
pub(crate) struct Carries {
    map: HashMap<u64, Carry>,
}

impl Carries {
    /// The carry of `job`'s face, if it was made by the same model and is younger than
    /// `refresh` frames.
    pub(crate) fn usable(&self, job: &Job, refresh: u32) -> Option<&Carry> {
        self.map.get(&job.key).filter(|c| c.rung == job.rung && c.age < refresh)
    }

    /// The latest restoration of `job`'s face by its model, however old (live mode).
    pub(crate) fn latest(&self, job: &Job) -> Option<&Carry> {
        self.map.get(&job.key).filter(|c| c.rung == job.rung)
    }

    /// Keeps `residual` (from [`residual`] at [`LEVELS`]) as `key`'s carry.
    pub(crate) fn store(&mut self, key: u64, rung: usize, residual: Mat) {
        debug_assert_eq!(residual.typ(), LEVELS);
        self.map.insert(key, Carry { rung, residual, age: 0 });
    }

    /// Ages the carries of this frame's faces and forgets everybody else's.
    pub(crate) fn retain(&mut self, jobs: &[Job]) {
        self.map.retain(|k, _| jobs.iter().any(|j| j.key == *k));
        for c in self.map.values_mut() {
            c.age += 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded 8-bit BGR image.
    fn noise(side: i32, seed: u32) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(side, side, opencv::core::CV_8UC3, Scalar::all(0.0)).unwrap();
        let mut x = seed;
        for b in m.data_bytes_mut().unwrap() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = (x >> 16) as u8;
        }
        m
    }

    fn bgra(m: &Mat) -> Mat {
        let mut out = Mat::default();
        imgproc::cvt_color_def(m, &mut out, imgproc::COLOR_BGR2BGRA).unwrap();
        out
    }

    /// The one-pass 8-bit residual (the weighted output, a BGRx crop) is the float one,
    /// and a carry added to a BGRx crop gives what it gives on the BGR crop.
    #[test]
    fn four_channel_crops_and_outputs_carry_as_three_channel_ones() {
        let (crop, out) = (noise(16, 1), noise(16, 2));
        let mut out_f = Mat::default();
        out.convert_to(&mut out_f, CV_32F, 1.0, 0.0).unwrap();
        let slow = residual(&out_f, &crop, LEVELS).unwrap();
        let fast = residual(&bgra(&out), &bgra(&crop), LEVELS).unwrap();
        assert_eq!(slow.data_bytes().unwrap(), fast.data_bytes().unwrap());
        let weights = Mat::new_rows_cols_with_default(16, 16, opencv::core::CV_8UC1, Scalar::all(99.0)).unwrap();
        let carry = Carry { rung: 0, residual: fast, age: 0 };
        let (a, b) = (carried(&crop, &carry, &weights).unwrap(), carried(&bgra(&crop), &carry, &weights).unwrap());
        assert_eq!(a.data_bytes().unwrap(), b.data_bytes().unwrap());
        // the carry of an output onto its own crop gives the output back
        let px = &a.data_bytes().unwrap()[..4];
        assert_eq!(&px[..3], &out.data_bytes().unwrap()[..3]);
        assert_eq!(px[3], 99);
    }
}
