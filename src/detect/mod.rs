//! Face detection on a down-scaled BGR copy of the frame.
//!
//! Three back-ends behind one trait: YuNet (`FaceDetectorYN`, box + 5 landmarks) when its
//! model is given, CenterFace through ONNX Runtime (box + 5 landmarks, any input size) when the
//! set-up installed it, and the Haar face + eye cascades as the last resort.
//! [`Detector`] wraps a back-end with what every user needs: down-scaling that still keeps
//! `min_face_size` faces visible, score filtering, `max_faces`, and mapping back to frame
//! coordinates.

mod centerface;
mod haar;
mod yunet;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use opencv::core::Mat;
use opencv::prelude::*;

use crate::frame::Frame;
use crate::paths;

pub use centerface::CenterFace;
pub use haar::Haar;
pub use yunet::YuNet;

/// One detected face in frame coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// x, y, width, height.
    pub bbox: [f32; 4],
    /// Eyes (image-left first), nose tip, mouth corners (image-left first).
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// Eye centres (image-left first) when only the eyes are known (Haar + eye cascade).
    pub eyes: Option<[[f32; 2]; 2]>,
    pub score: f32,
    /// Track id (0 until a tracker assigned one).
    pub id: u64,
}

impl Face {
    pub fn from_box(bbox: [f32; 4], score: f32) -> Self {
        Self { bbox, landmarks: None, eyes: None, score, id: 0 }
    }

    /// Multiplies every coordinate by `f` (down-scaled copy -> frame).
    pub fn scaled(mut self, f: f32) -> Self {
        self.bbox.iter_mut().for_each(|v| *v *= f);
        if let Some(l) = self.landmarks.as_mut() {
            l.iter_mut().flatten().for_each(|v| *v *= f);
        }
        if let Some(e) = self.eyes.as_mut() {
            e.iter_mut().flatten().for_each(|v| *v *= f);
        }
        self
    }

    /// Moves every coordinate by `d` (region -> frame).
    pub fn shifted(mut self, d: [f32; 2]) -> Self {
        if d == [0.0, 0.0] {
            return self;
        }
        self.bbox[0] += d[0];
        self.bbox[1] += d[1];
        for p in self.landmarks.iter_mut().flatten().chain(self.eyes.iter_mut().flatten()) {
            p[0] += d[0];
            p[1] += d[1];
        }
        self
    }

    pub fn iou(&self, other: &Face) -> f32 {
        let [ax, ay, aw, ah] = self.bbox;
        let [bx, by, bw, bh] = other.bbox;
        let iw = ((ax + aw).min(bx + bw) - ax.max(bx)).max(0.0);
        let ih = ((ay + ah).min(by + bh) - ay.max(by)).max(0.0);
        let inter = iw * ih;
        let union = aw * ah + bw * bh - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// A detection back-end. `detect` gets an already down-scaled BGR image and returns faces
/// in its coordinates, above its own score threshold.
pub trait FaceDetector: Send {
    fn name(&self) -> &'static str;
    /// The smallest face (px) the back-end finds reliably; down-scaling keeps
    /// `min_face_size` above it.
    fn native_min_face(&self) -> f32;
    /// The score threshold that suits this back-end's score scale (scores are not
    /// calibrated alike: CenterFace gives 0.6-0.8 to real faces in heavily compressed
    /// video where YuNet gives 0.95+).
    fn default_threshold(&self) -> f32;
    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Face>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DetectorKind {
    /// YuNet if a model is given, else CenterFace if installed, else Haar.
    #[default]
    Auto,
    YuNet,
    CenterFace,
    Haar,
}

impl std::str::FromStr for DetectorKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "yunet" => Self::YuNet,
            "centerface" => Self::CenterFace,
            "haar" => Self::Haar,
            _ => bail!("unknown detector '{s}' (auto, yunet, centerface, haar)"),
        })
    }
}

impl DetectorKind {
    /// The name `from_str` reads, the elements' property nick and the CLI's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::YuNet => "yunet",
            Self::CenterFace => "centerface",
            Self::Haar => "haar",
        }
    }
}

#[derive(Clone, Debug)]
pub struct DetectorConfig {
    pub kind: DetectorKind,
    /// YuNet or CenterFace ONNX file (for `Auto`, a YuNet model unless its name says centerface).
    pub model: Option<PathBuf>,
    /// None: the back-end's own default ([`FaceDetector::default_threshold`]).
    pub score_threshold: Option<f32>,
    pub nms_threshold: f32,
    /// Faces smaller than this (px, in the frame) are dropped; down-scaling keeps them findable.
    pub min_face_size: f32,
    pub max_faces: usize,
    /// Longer side of the down-scaled copy detection runs on (raised when faces would get
    /// smaller than the back-end finds): the whole frame for [`Detector::detect_frame`],
    /// the fine pass of a stream's search.
    pub detect_size: i32,
    /// Longer side of the copy a stream's coarse pass (large faces, whenever something
    /// moved) runs on.
    pub coarse_size: i32,
    /// CPU threads for a back-end that runs through ONNX Runtime (0: its default).
    pub threads: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            kind: DetectorKind::Auto,
            model: None,
            score_threshold: None,
            nms_threshold: 0.3,
            min_face_size: 16.0,
            max_faces: 32,
            detect_size: 640,
            coarse_size: 320,
            threads: 0,
        }
    }
}

/// Builds the back-end that `config` asks for, with a reason when it cannot.
pub fn build_detector(config: &DetectorConfig) -> Result<Box<dyn FaceDetector>> {
    let kind = resolve_kind(config);
    let model = |default: Option<PathBuf>| -> Result<PathBuf> {
        let path = config.model.clone().or(default).context("this detector needs a model file")?;
        if !path.is_file() {
            bail!("detector model {}: no such file", path.display());
        }
        Ok(path)
    };
    Ok(match kind {
        DetectorKind::YuNet => Box::new(YuNet::new(&model(None)?, config.score_threshold, config.nms_threshold)?),
        DetectorKind::CenterFace => Box::new(CenterFace::new(
            &model(Some(paths::centerface_model()))?,
            config.score_threshold,
            config.nms_threshold,
            config.threads,
        )?),
        DetectorKind::Haar => Box::new(Haar::new(&paths::haar_dir())?),
        DetectorKind::Auto => unreachable!("resolve_kind never returns Auto"),
    })
}

fn resolve_kind(config: &DetectorConfig) -> DetectorKind {
    match (config.kind, &config.model) {
        (DetectorKind::Auto, Some(m)) if m.to_string_lossy().to_lowercase().contains("centerface") => {
            DetectorKind::CenterFace
        }
        (DetectorKind::Auto, Some(_)) => DetectorKind::YuNet,
        (DetectorKind::Auto, None) if paths::centerface_model().is_file() => DetectorKind::CenterFace,
        (DetectorKind::Auto, None) => DetectorKind::Haar,
        (k, _) => k,
    }
}

/// How much detection may enlarge a frame to find faces below a back-end's native size.
const MAX_UPSCALE: f32 = 4.0;
/// Longest side of an enlarged detection copy (frames already this large are not
/// enlarged): Haar on a 1.5x 720p copy took 5 s per frame here.
const MAX_SIDE: i32 = 1280;

/// A back-end plus the frame-level policy (scale, thresholds, limits).
pub struct Detector {
    backend: Box<dyn FaceDetector>,
    config: DetectorConfig,
    threshold: f32,
}

impl Detector {
    pub fn new(config: DetectorConfig) -> Result<Self> {
        let backend = build_detector(&config)?;
        let threshold = config.score_threshold.unwrap_or_else(|| backend.default_threshold());
        Ok(Self { backend, config, threshold })
    }

    /// The score threshold in force.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Longer side of the copy to detect on: at most the frame's, down to `detect_size`
    /// unless the smallest wanted face would shrink below what the back-end finds; above
    /// the frame's when that face is smaller than the back-end finds at all.
    fn scaled_side(&self, long: i32) -> i32 {
        let keep = self.backend.native_min_face() / self.config.min_face_size.max(1.0);
        if keep > 1.0 {
            // Faces wanted smaller than the back-end finds: detect on an enlarged copy.
            return ((long as f32 * keep.min(MAX_UPSCALE)).ceil() as i32).min(MAX_SIDE.max(long));
        }
        let need = (long as f32 * keep).ceil() as i32;
        self.config.detect_size.max(need).min(long)
    }

    /// Faces in frame coordinates, best first, at most `max_faces`.
    pub fn detect_frame(&mut self, frame: &Frame) -> Result<Vec<Face>> {
        let (bgr, factor) = self.scaled_copy(frame)?;
        self.detect_bgr(&bgr, factor)
    }

    /// The down-scaled BGR copy detection runs on, and its factor back to the frame.
    pub fn scaled_copy(&self, frame: &Frame) -> Result<(Mat, f32)> {
        frame.bgr_scaled(self.scaled_side(frame.width().max(frame.height())))
    }

    /// Faces on a BGR image already scaled by 1/`factor` relative to the frame.
    pub fn detect_bgr(&mut self, bgr: &Mat, factor: f32) -> Result<Vec<Face>> {
        let faces = self.found(bgr, factor, [0.0, 0.0])?;
        Ok(self.rank(faces))
    }

    /// Best first, at most `max_faces`.
    pub fn rank(&self, mut faces: Vec<Face>) -> Vec<Face> {
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        faces.truncate(self.config.max_faces);
        faces
    }

    /// Faces in the frame's rectangle `rect` (x, y, w, h), detected on a copy scaled by
    /// `scale`, in frame coordinates and unsorted: the searches of [`crate::search`] merge
    /// several regions before ranking.
    pub fn detect_region(&mut self, frame: &Frame, rect: [i32; 4], scale: f64) -> Result<Vec<Face>> {
        let (bgr, origin, factor) = frame.bgr_region_mapped(rect, scale)?;
        self.found(&bgr, factor, origin)
    }

    /// The scale of a stream's coarse pass: the frame at `coarse_size` (never enlarged).
    pub fn coarse_scale(&self, frame_long: i32) -> f64 {
        (self.config.coarse_size as f64 / frame_long.max(1) as f64).min(1.0)
    }

    /// The scale at which faces of `min_face_size` are findable (enlarged for faces smaller
    /// than the back-end finds, within limits).
    pub fn fine_scale(&self, frame_long: i32) -> f64 {
        self.scaled_side(frame_long) as f64 / frame_long.max(1) as f64
    }

    /// The smallest face (frame px) a pass at `scale` finds.
    pub fn min_face_at(&self, scale: f64) -> f32 {
        self.backend.native_min_face() / scale as f32
    }

    /// Faces on `bgr` (the frame, or a region of it, scaled by 1/`factor`), above the score
    /// threshold and `min_face_size`, moved to frame coordinates by `offset`.
    fn found(&mut self, bgr: &Mat, factor: f32, offset: [f32; 2]) -> Result<Vec<Face>> {
        // No findable face fits in an image narrower than the smallest findable face, and
        // the DNN back-ends fail on such shapes (YuNet on 3x7: empty layer output).
        let min_side = self.backend.native_min_face().ceil() as i32;
        if bgr.rows() < min_side || bgr.cols() < min_side {
            return Ok(Vec::new());
        }
        Ok(self
            .backend
            .detect(bgr)?
            .into_iter()
            .map(|f| f.scaled(factor).shifted(offset))
            .filter(|f| f.score >= self.threshold)
            .filter(|f| f.bbox[2].max(f.bbox[3]) >= self.config.min_face_size)
            .collect())
    }
}
