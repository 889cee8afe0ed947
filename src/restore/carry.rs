//! Carried restorations: a face's last restoration (its residual, output minus input in
//! the aligned crop) added to the face's crop on later frames, so a tracked face stays
//! restored without running the model on every frame.

use std::collections::HashMap;

use anyhow::{ensure, Result};
use opencv::core::{Mat, Scalar, Size, CV_16SC3, CV_32FC3, CV_8UC3};
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

/// The model's output minus its input crop brought to the output size, as `depth`
/// (f32, or [`LEVELS`] for a carry: rounded in the same pass): what restoration added,
/// ready to be added to a later crop of the same face.
pub(crate) fn residual(output: &Mat, crop: &Mat, depth: i32) -> Result<Mat> {
    let mut d = Mat::default();
    opencv::core::subtract(output, &as_output(crop, output.rows())?, &mut d, &opencv::core::no_array(), depth)?;
    Ok(d)
}

/// A BGR u8 crop as f32 at `size`.
fn as_output(crop: &Mat, size: i32) -> Result<Mat> {
    let mut f = Mat::default();
    match resized(crop, size)? {
        Some(m) => m.convert_to(&mut f, CV_32FC3, 1.0, 0.0)?,
        None => crop.convert_to(&mut f, CV_32FC3, 1.0, 0.0)?,
    }
    Ok(f)
}

/// A BGR u8 crop enlarged to `size` (bicubic) when a super-resolution model's output is
/// larger than its input; `None` when it is that size already.
fn resized(crop: &Mat, size: i32) -> Result<Option<Mat>> {
    if crop.rows() == size {
        return Ok(None);
    }
    let mut m = Mat::default();
    imgproc::resize(crop, &mut m, Size::new(size, size), 0.0, 0.0, imgproc::INTER_CUBIC)?;
    Ok(Some(m))
}

/// `crop` (BGR u8) with `carry`'s residual added (saturating), at the carry's size, with
/// `weights` as its alpha: the BGRA image [`crate::blend::paste`] takes.
pub(super) fn carried(crop: &Mat, carry: &Carry, weights: &Mat) -> Result<Mat> {
    let sized = resized(crop, carry.residual.rows())?;
    let crop = sized.as_ref().unwrap_or(crop);
    let n = crop.total();
    ensure!(
        crop.is_continuous() && carry.residual.total() == n,
        "carry of {} pixels for a crop of {n}",
        carry.residual.total()
    );
    // flat slices: the compiler vectorises the saturating add (OpenCV's u8 + i16 -> u8 goes
    // through 32-bit and cost twice as much)
    let residual = carry.residual.reshape(1, 0)?;
    let mut sum = Mat::new_rows_cols_with_default(crop.rows(), crop.cols(), CV_8UC3, Scalar::all(0.0))?;
    let (src, res) = (crop.data_bytes()?, residual.data_typed::<i16>()?);
    for ((o, &s), &r) in sum.data_bytes_mut()?.iter_mut().zip(src).zip(res) {
        *o = (s as i16 + r).clamp(0, 255) as u8;
    }
    crate::blend::weighted(sum, weights)
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
