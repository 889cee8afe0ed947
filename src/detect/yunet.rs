//! YuNet through OpenCV's `FaceDetectorYN` (the 2022mar model runs on OpenCV 4.6).

use std::path::Path;

use anyhow::{Context, Result};
use opencv::core::{Mat, Ptr, Size};
use opencv::objdetect::FaceDetectorYN;
use opencv::prelude::*;

use super::{Face, FaceDetector};

const DEFAULT_THRESHOLD: f32 = 0.6;

pub struct YuNet {
    inner: Ptr<FaceDetectorYN>,
    input: Size,
    model: std::path::PathBuf,
}

impl YuNet {
    pub fn new(model: &Path, score: Option<f32>, nms: f32) -> Result<Self> {
        let score = score.unwrap_or(DEFAULT_THRESHOLD).min(0.99);
        let inner = FaceDetectorYN::create(&model.to_string_lossy(), "", Size::new(320, 320), score, nms, 5000, 0, 0)
            .with_context(|| format!("YuNet model {}: OpenCV could not load it", model.display()))?;
        let mut y = Self { inner, input: Size::new(320, 320), model: model.to_path_buf() };
        // one run on a blank image: a file OpenCV loads but cannot run is refused at load
        let blank = Mat::new_rows_cols_with_default(64, 64, opencv::core::CV_8UC3, 0.into())?;
        y.detect(&blank)?;
        Ok(y)
    }
}

impl FaceDetector for YuNet {
    fn name(&self) -> &'static str {
        "yunet"
    }

    fn native_min_face(&self) -> f32 {
        10.0
    }

    fn default_threshold(&self) -> f32 {
        DEFAULT_THRESHOLD
    }

    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Face>> {
        // YuNet's five stride-2 stages fail in OpenCV 4.6 on some sizes (78x78: an empty
        // layer output, measured), and on 32 px sides: pad right and bottom to multiples
        // of 32, at least 64. Boxes keep their coordinates since the origin does not move.
        let (w, h) = (bgr.cols(), bgr.rows());
        let (pw, ph) = (((w + 31) / 32 * 32).max(64), ((h + 31) / 32 * 32).max(64));
        let padded;
        let bgr = if (pw, ph) != (w, h) {
            let mut p = Mat::default();
            opencv::core::copy_make_border(
                bgr,
                &mut p,
                0,
                ph - h,
                0,
                pw - w,
                opencv::core::BORDER_CONSTANT,
                Default::default(),
            )?;
            padded = p;
            &padded
        } else {
            bgr
        };
        let size = bgr.size()?;
        if size != self.input {
            self.inner.set_input_size(size)?;
            self.input = size;
        }
        let mut out = Mat::default();
        self.inner.detect(bgr, &mut out).with_context(|| format!("YuNet model {}", self.model.display()))?;
        // a row per face: box (4), five landmarks (10), score
        anyhow::ensure!(
            out.rows() == 0 || (out.cols() >= 15 && out.typ() == opencv::core::CV_32F),
            "YuNet model {}: {} columns of type {} per face, expected 15 floats",
            self.model.display(),
            out.cols(),
            out.typ()
        );
        let mut faces = Vec::with_capacity(out.rows().max(0) as usize);
        for r in 0..out.rows() {
            let v = |c: i32| -> Result<f32> { Ok(*out.at_2d::<f32>(r, c)?) };
            let mut lm = [[0f32; 2]; 5];
            for (i, p) in lm.iter_mut().enumerate() {
                *p = [v(4 + 2 * i as i32)?, v(5 + 2 * i as i32)?];
            }
            let mut f = Face::from_box([v(0)?, v(1)?, v(2)?, v(3)?], v(14)?);
            f.landmarks = Some(lm);
            faces.push(f);
        }
        Ok(faces)
    }
}
