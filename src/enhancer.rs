//! The stages joined on one thread: [`Enhancer`] (detect + track + restore), the core's
//! whole job without GStreamer, for tests, benches and library users. The product overlaps
//! detection and restoration with the `faceenhance` bin's queue instead (`video` and
//! `image` run the elements). Restoration itself is [`crate::restore`]; live restoration with a
//! deadline is [`crate::live`].

use crate::detect::{Detector, DetectorConfig, Face};
use crate::frame::Frame;
use crate::restore::{FaceRestorer, RestoreConfig, RestoreStats};
use crate::track::{FaceStream, TrackConfig};
use anyhow::Result;

/// Detection + tracking + restoration on one thread.
pub struct Enhancer {
    pub faces: FaceStream,
    pub restorer: FaceRestorer,
}

impl Enhancer {
    pub fn new(detect: DetectorConfig, restore: RestoreConfig) -> Result<Self> {
        let faces = FaceStream::new(Detector::new(detect)?, TrackConfig::default());
        Ok(Self { faces, restorer: FaceRestorer::new(restore)? })
    }

    /// The next frame of a video: faces tracked and smoothed from the frames before.
    pub fn process(&mut self, frame: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        let (faces, _) = self.faces.next(frame)?;
        let stats = self.restorer.restore(frame, &faces)?;
        Ok((faces, stats))
    }

    /// A still picture: nothing carried over from earlier pictures.
    pub fn process_image(&mut self, frame: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        self.faces.reset();
        self.process(frame)
    }

    /// A still picture into `dst`, `upscale` times larger than `src`.
    pub fn process_image_into(&mut self, src: &Frame, dst: &mut Frame) -> Result<(Vec<Face>, RestoreStats)> {
        self.faces.reset();
        let (faces, _) = self.faces.next(src)?;
        let stats = self.restorer.restore_into(src, dst, &faces)?;
        Ok((faces, stats))
    }
}
