//! Carried restorations: a face's last restoration (its residual, output minus input in
//! the aligned crop) added to the face's crop on later frames, so a tracked face stays
//! restored without running the model on every frame.

use std::collections::HashMap;

use anyhow::Result;
use opencv::core::{Mat, Size, CV_32FC3};
use opencv::imgproc;
use opencv::prelude::*;

use super::ladder::Job;

/// A face's last restoration: the model's output minus its input (both at the output
/// size, f32), in the aligned crop's coordinates, and how many frames it has been carried.
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

/// The model's output minus its input crop brought to the output size: what restoration
/// added, ready to be added to a later crop of the same face.
pub(crate) fn residual(output: &Mat, crop: &Mat) -> Result<Mat> {
    let mut d = Mat::default();
    opencv::core::subtract(output, &as_output(crop, output.rows())?, &mut d, &opencv::core::no_array(), CV_32FC3)?;
    Ok(d)
}

/// A BGR u8 crop as f32 at `size` (bicubic when a super-resolution model's output is larger).
pub(super) fn as_output(crop: &Mat, size: i32) -> Result<Mat> {
    let sized = if crop.rows() == size {
        crop.clone()
    } else {
        let mut m = Mat::default();
        imgproc::resize(crop, &mut m, Size::new(size, size), 0.0, 0.0, imgproc::INTER_CUBIC)?;
        m
    };
    let mut f = Mat::default();
    sized.convert_to(&mut f, CV_32FC3, 1.0, 0.0)?;
    Ok(f)
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

    pub(crate) fn store(&mut self, key: u64, rung: usize, residual: Mat) {
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
