//! The stages joined: [`Enhancer`] (detect + track + restore, for the CLI, tests and
//! benches) and [`run_threaded`], which overlaps detection of frame n+1 with restoration of
//! frame n on two worker threads joined by bounded channels, frames leaving in order.
//! Restoration itself is [`crate::restore`]; live restoration with a deadline is
//! [`crate::live`].

use anyhow::Result;
use crossbeam_channel::bounded;
use opencv::core::Mat;
use opencv::prelude::*;

use crate::detect::{Detector, DetectorConfig, Face};
use crate::frame::{self, Frame, PixelFormat};
use crate::track::{FaceStream, TrackConfig};

pub use crate::live::{LiveOutcome, LiveRestorer};
pub use crate::restore::{expand_models, pick_model, FaceRestorer, RestoreConfig, RestoreStats};

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

/// A frame that owns its pixels, for moving between threads.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: PixelFormat,
}

impl OwnedFrame {
    pub fn view(&mut self) -> Result<Frame<'_>> {
        Frame::new(&mut self.data, self.width, self.height, self.stride, self.format)
    }

    /// A packed BGR copy of an OpenCV image.
    pub fn from_bgr(m: &Mat) -> Result<Self> {
        let mut m = m.try_clone()?;
        let f = frame::frame_from_mat(&mut m)?;
        Ok(Self {
            data: f.data().to_vec(),
            width: f.width() as u32,
            height: f.height() as u32,
            stride: f.stride(),
            format: f.format(),
        })
    }
}

/// Enhances a stream of frames on two worker threads (detect | restore) joined by bounded
/// channels of `depth`; `sink` gets every frame, in order, with its faces. The first
/// error from any stage stops the run and is returned.
pub fn run_threaded<I, S>(
    frames: I,
    detect: DetectorConfig,
    restore: RestoreConfig,
    depth: usize,
    mut sink: S,
) -> Result<usize>
where
    I: IntoIterator<Item = OwnedFrame> + Send,
    S: FnMut(OwnedFrame, Vec<Face>, RestoreStats) -> Result<()>,
{
    let (to_detect, detect_rx) = bounded::<OwnedFrame>(depth);
    let (to_restore, restore_rx) = bounded::<(OwnedFrame, Vec<Face>)>(depth);
    let (to_sink, sink_rx) = bounded::<Result<(OwnedFrame, Vec<Face>, RestoreStats)>>(depth);

    std::thread::scope(|scope| {
        let errors = to_sink.clone();
        scope.spawn(move || {
            let run = || -> Result<()> {
                let mut stream = FaceStream::new(Detector::new(detect)?, TrackConfig::default());
                for mut f in detect_rx {
                    let (faces, _) = stream.next(&f.view()?)?;
                    if to_restore.send((f, faces)).is_err() {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(e) = run() {
                let _ = errors.send(Err(e.context("detection thread")));
            }
        });
        scope.spawn(move || {
            let run = || -> Result<()> {
                let mut restorer = FaceRestorer::new(restore)?;
                for (mut f, faces) in restore_rx.iter() {
                    let stats = restorer.restore(&mut f.view()?, &faces)?;
                    if to_sink.send(Ok((f, faces, stats))).is_err() {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(e) = run() {
                let _ = to_sink.send(Err(e.context("restoration thread")));
            }
        });

        // A feeder thread, so this one only drains and the bounded channels cannot deadlock.
        scope.spawn(move || {
            for f in frames {
                if to_detect.send(f).is_err() {
                    break;
                }
            }
        });
        let mut count = 0usize;
        for msg in sink_rx {
            let (f, faces, stats) = msg?;
            sink(f, faces, stats)?;
            count += 1;
        }
        Ok(count)
    })
}
