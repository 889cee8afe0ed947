//! The face gallery: for each tracked face of a video, its best restored crop (by detector
//! score and sharpness), an index (`index.json`: id, first and last time, the best crop's
//! frame, box, score, model) and one contact sheet of every face with its times, the
//! picture an investigator looks at first.
//!
//! Memory stays bounded however long the video: a track not seen for
//! [`Gallery::retire_after`] frames is retired, its best crop written to the gallery folder
//! and its pixels dropped, so only the small index entry stays in memory. The contact sheet
//! reads retired crops back from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use opencv::core::{Mat, Point, Rect, Scalar, Size, Vector, CV_8UC3};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use serde::Serialize;

use crate::detect::Face;
use crate::frame::{self, Frame};

/// One person (track id) in the gallery.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub id: u64,
    /// Stream time of the first and last frame the face was seen in (ns).
    pub first_ns: u64,
    pub last_ns: u64,
    pub frames_seen: u64,
    /// Frame number (from 0) and time of the best crop.
    pub best_frame: u64,
    pub best_ns: u64,
    /// Face box in the output frame (x, y, w, h) of the best crop.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Variance of the Laplacian of the crop's luma at 64 px: higher is sharper.
    pub sharpness: f64,
    /// The model that restored the best crop (none: kept as it was).
    pub model: Option<String>,
    /// The PNG, relative to the gallery folder.
    pub file: String,
    /// The best crop while the track is live; `None` once it was written to `file` and
    /// dropped from memory (retired).
    #[serde(skip)]
    crop: Option<Mat>,
    /// Frame number of the last sighting (decides retirement).
    #[serde(skip)]
    last_frame: u64,
}

impl Entry {
    /// Detector score weighted by sharpness (a blurred or turned-away face loses).
    fn quality(&self) -> f64 {
        self.score as f64 * (1.0 + self.sharpness).ln()
    }
}

/// Default of [`Gallery::retire_after`]: 250 frames, 10 s at 25 fps.
pub const RETIRE_AFTER_FRAMES: u64 = 250;

pub struct Gallery {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry>,
    /// Ids whose best crop is still held in memory.
    live: BTreeSet<u64>,
    /// Context kept around the face box, as a fraction of its side on each side.
    margin: f32,
    /// A track not seen for more than this many frames is retired: its best crop is written
    /// to the gallery folder and dropped from memory (the index entry stays). A track seen
    /// again later keeps its entry; a better crop then replaces the file. Default
    /// [`RETIRE_AFTER_FRAMES`].
    pub retire_after: u64,
}

impl Gallery {
    /// A gallery written into `dir` (created) by [`Gallery::write`].
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("face gallery folder {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            entries: BTreeMap::new(),
            live: BTreeSet::new(),
            margin: 0.3,
            retire_after: RETIRE_AFTER_FRAMES,
        })
    }

    /// How many crops are held in memory (tracks not yet retired).
    pub fn crops_in_memory(&self) -> usize {
        self.live.len()
    }

    /// Retires every track not seen for more than [`Gallery::retire_after`] frames before
    /// frame `number`: writes its best crop to disk and drops the pixels. [`Gallery::offer`]
    /// calls it; call it for frames without faces too.
    pub fn retire(&mut self, number: u64) -> Result<()> {
        let old: Vec<u64> = self
            .live
            .iter()
            .copied()
            .filter(|id| self.entries[id].last_frame.saturating_add(self.retire_after) < number)
            .collect();
        for id in old {
            let e = self.entries.get_mut(&id).expect("live ids have entries");
            if let Some(crop) = e.crop.take() {
                write_png(&self.dir.join(&e.file), &crop)?;
            }
            self.live.remove(&id);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Looks at one frame's faces (output coordinates, with tracker ids; untracked faces,
    /// id 0, are ignored) and keeps each id's best crop. `models[i]` names the model that
    /// restored face i.
    pub fn offer(
        &mut self,
        frame: &Frame,
        faces: &[Face],
        models: &[Option<String>],
        number: u64,
        ns: u64,
    ) -> Result<()> {
        let mut src: Option<Mat> = None;
        for (i, face) in faces.iter().enumerate().filter(|(_, f)| f.id > 0) {
            let [x, y, w, h] = face.bbox;
            let side = w.max(h) * (1.0 + 2.0 * self.margin);
            let (cx, cy) = (x + w / 2.0, y + h / 2.0);
            let rect = Rect::new((cx - side / 2.0) as i32, (cy - side / 2.0) as i32, side as i32, side as i32);
            let bounds = Rect::new(0, 0, frame.width(), frame.height());
            let rect = rect & bounds;
            if rect.width < 4 || rect.height < 4 {
                continue;
            }
            let src = match &src {
                Some(m) => m,
                None => src.insert(frame::to_bgr(&frame.mat()?, frame.format())?),
            };
            let crop = Mat::roi(src, rect)?.try_clone()?;
            let sharpness = sharpness(&crop)?;
            let candidate = Entry {
                id: face.id,
                first_ns: ns,
                last_ns: ns,
                frames_seen: 1,
                best_frame: number,
                best_ns: ns,
                bbox: face.bbox,
                score: face.score,
                sharpness,
                model: models.get(i).cloned().flatten(),
                file: format!("face-{:05}.png", face.id),
                crop: Some(crop),
                last_frame: number,
            };
            match self.entries.get_mut(&face.id) {
                None => {
                    self.entries.insert(face.id, candidate);
                    self.live.insert(face.id);
                }
                Some(e) => {
                    let (first, seen) = (e.first_ns.min(ns), e.frames_seen + 1);
                    let last = e.last_ns.max(ns);
                    let last_frame = e.last_frame.max(number);
                    if candidate.quality() > e.quality() {
                        // A retired track's better crop is held again (and rewritten later).
                        *e = candidate;
                        self.live.insert(face.id);
                    }
                    (e.first_ns, e.last_ns, e.frames_seen, e.last_frame) = (first, last, seen, last_frame);
                }
            }
        }
        self.retire(number)
    }

    /// The best crop of an entry: from memory while live, else read back from its file.
    fn crop(&self, e: &Entry) -> Result<Mat> {
        match &e.crop {
            Some(m) => Ok(m.clone()),
            None => {
                let path = self.dir.join(&e.file);
                let m = imgcodecs::imread(&path, imgcodecs::IMREAD_COLOR)?;
                if m.empty() {
                    bail!("could not read back {}", path.display());
                }
                Ok(m)
            }
        }
    }

    /// Writes every face's PNG, `index.json` and `contact-sheet.png`; returns the index path.
    pub fn write(&self) -> Result<PathBuf> {
        for e in self.entries.values() {
            if let Some(crop) = &e.crop {
                write_png(&self.dir.join(&e.file), crop)?;
            }
        }
        let index = self.dir.join("index.json");
        let list: Vec<&Entry> = self.entries.values().collect();
        std::fs::write(&index, serde_json::to_string_pretty(&list)?)
            .with_context(|| format!("writing {}", index.display()))?;
        write_png(&self.dir.join("contact-sheet.png"), &self.contact_sheet()?)?;
        Ok(index)
    }

    /// All faces as 128 px thumbnails in rows of up to 8, each captioned with its id and
    /// the times it was seen.
    pub fn contact_sheet(&self) -> Result<Mat> {
        const THUMB: i32 = 128;
        const CAPTION: i32 = 34;
        let n = self.entries.len().max(1) as i32;
        let cols = n.min(8);
        let rows = (n + cols - 1) / cols;
        let mut sheet =
            Mat::new_rows_cols_with_default(rows * (THUMB + CAPTION), cols * THUMB, CV_8UC3, Scalar::all(30.0))?;
        for (k, e) in self.entries.values().enumerate() {
            let (c, r) = (k as i32 % cols, k as i32 / cols);
            let mut thumb = Mat::default();
            imgproc::resize(&self.crop(e)?, &mut thumb, Size::new(THUMB, THUMB), 0.0, 0.0, imgproc::INTER_AREA)?;
            let mut cell = Mat::roi_mut(&mut sheet, Rect::new(c * THUMB, r * (THUMB + CAPTION), THUMB, THUMB))?;
            thumb.copy_to(&mut cell)?;
            let lines = [format!("#{}", e.id), format!("{}-{}", clock(e.first_ns), clock(e.last_ns))];
            for (l, text) in lines.iter().enumerate() {
                let org = Point::new(c * THUMB + 4, r * (THUMB + CAPTION) + THUMB + 13 + 15 * l as i32);
                let font = imgproc::FONT_HERSHEY_SIMPLEX;
                imgproc::put_text(&mut sheet, text, org, font, 0.4, Scalar::all(235.0), 1, imgproc::LINE_AA, false)?;
            }
        }
        Ok(sheet)
    }
}

/// m:ss.s of a stream time.
fn clock(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    format!("{}:{:04.1}", (s / 60.0) as u64, s % 60.0)
}

fn sharpness(bgr: &Mat) -> Result<f64> {
    let mut small = Mat::default();
    imgproc::resize(bgr, &mut small, Size::new(64, 64), 0.0, 0.0, imgproc::INTER_AREA)?;
    let mut grey = Mat::default();
    imgproc::cvt_color_def(&small, &mut grey, imgproc::COLOR_BGR2GRAY)?;
    let mut lap = Mat::default();
    imgproc::laplacian(&grey, &mut lap, opencv::core::CV_64F, 1, 1.0, 0.0, opencv::core::BORDER_DEFAULT)?;
    let (mut mean, mut dev) = (Mat::default(), Mat::default());
    opencv::core::mean_std_dev(&lap, &mut mean, &mut dev, &opencv::core::no_array())?;
    let sd = *dev.at::<f64>(0)?;
    Ok(sd * sd)
}

fn write_png(path: &Path, m: &Mat) -> Result<()> {
    if !imgcodecs::imwrite(path, m, &Vector::new())? {
        bail!("could not write {}", path.display());
    }
    Ok(())
}
