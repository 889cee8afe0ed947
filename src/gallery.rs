//! The face gallery: for each tracked face of a video, its best restored crop (by detector
//! score and sharpness), an index (`index.json`: id, first and last time, the best crop's
//! frame, box, score, model) and one contact sheet of every face with its times, the
//! picture an investigator looks at first.
//!
//! Memory stays bounded however long the video: a track not seen for
//! [`Gallery::retire_after`] frames is retired, its best crop written to the gallery folder
//! and its pixels dropped, so only the small index entry stays in memory. The contact sheet
//! reads retired crops back from disk, one page of [`SHEET_CELLS`] people at a time.
//!
//! A person who leaves the picture and comes back gets a new tracker id; with
//! [`Identities`] the gallery groups tracks into people by the face descriptor of each
//! track's best crop (dlib's face net, `model::identity`), so the index and the contact sheet
//! show one person with every track listed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use opencv::core::{Mat, Point, Rect, Scalar, Size, Vector, CV_8UC3};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use serde::Serialize;

use crate::align::{self, Template};
use crate::detect::Face;
use crate::frame::Frame;
use crate::model::identity::{self, IdentityNet, DIM};

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
    /// The person (see [`Person`]) this track belongs to; set by [`Gallery::write`].
    pub person: u64,
    /// The best crop while the track is live; `None` once it was written to `file` and
    /// dropped from memory (retired).
    #[serde(skip)]
    crop: Option<Mat>,
    /// With [`Identities`]: the best crop's face as the identity net sees it, until its
    /// descriptor is taken (at retirement or write).
    #[serde(skip)]
    view: Option<Mat>,
    /// The best crop's face descriptor (boxed: most entries of a long stream never hold one
    /// while grouping is off).
    #[serde(skip)]
    descriptor: Option<Box<[f32; DIM]>>,
    /// Frame number of the last sighting (decides retirement).
    #[serde(skip)]
    last_frame: u64,
}

impl Entry {
    /// Detector score weighted by sharpness (a blurred or turned-away face loses).
    fn quality(&self) -> f64 {
        quality(self.score, self.sharpness)
    }
}

/// Detector score weighted by sharpness: which crop of a track is its best.
fn quality(score: f32, sharpness: f64) -> f64 {
    score as f64 * (1.0 + sharpness).ln()
}

/// Default of [`Gallery::retire_after`]: 250 frames, 10 s at 25 fps.
pub const RETIRE_AFTER_FRAMES: u64 = 250;

/// Default of [`Identities::threshold`]: dlib's net puts one person's photos 0.26 apart on
/// average (at most 0.58 on the London set) and different people 0.8 (1 % of pairs under
/// 0.6); 0.5 joins most returns and almost never two people (two people shown as one is
/// the worse mistake for an investigator).
pub const IDENTITY_THRESHOLD: f32 = 0.5;

/// People per contact-sheet page (8 across, 12 down): a page stays a few MB however many
/// people the stream had.
pub const SHEET_CELLS: usize = 96;
const SHEET_COLS: i32 = 8;

/// One person: the tracks whose best crops' descriptors lie within the threshold of the
/// person's mean descriptor (each track its own person without [`Identities`]).
#[derive(Clone, Debug, Serialize)]
pub struct Person {
    pub person: u64,
    /// Track ids, in order of appearance.
    pub tracks: Vec<u64>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// The track whose crop stands for the person (the best by score and sharpness).
    pub best_track: u64,
    /// Its PNG, relative to the gallery folder.
    pub file: String,
}

/// Groups tracks into people by face descriptor.
pub struct Identities {
    net: IdentityNet,
    /// Largest descriptor distance from a person's mean at which a track joins them.
    pub threshold: f32,
}

impl Identities {
    pub fn new(net: IdentityNet, threshold: f32) -> Self {
        Self { net, threshold }
    }
}

/// PNG writes on a thread of their own, in order: the streaming thread only queues a crop
/// (at most [`Writer::QUEUE`] wait; a slow disk then holds the stream back rather than
/// filling memory). The first failure is reported by the next call.
struct Writer {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Job {
    Png(PathBuf, Mat),
    /// Answered once every earlier job is done.
    Flush(crossbeam_channel::Sender<()>),
}

impl Writer {
    const QUEUE: usize = 64;

    fn new() -> Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(Self::QUEUE);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let report = failed.clone();
        let thread = std::thread::Builder::new()
            .name("facegallery-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Png(path, m) => {
                            if let Err(e) = write_png(&path, &m) {
                                report.lock().unwrap().get_or_insert(format!("{e:#}"));
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .context("face gallery: starting the writer thread")?;
        Ok(Self { jobs: Some(tx), failed, thread: Some(thread) })
    }

    fn check(&self) -> Result<()> {
        match self.failed.lock().unwrap().clone() {
            Some(e) => bail!("face gallery: {e}"),
            None => Ok(()),
        }
    }

    fn png(&self, path: PathBuf, m: Mat) -> Result<()> {
        self.check()?;
        let jobs = self.jobs.as_ref().expect("open until dropped");
        jobs.send(Job::Png(path, m)).map_err(|_| anyhow::anyhow!("face gallery: the writer thread is gone"))
    }

    /// Waits until every queued file is on disk.
    fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let jobs = self.jobs.as_ref().expect("open until dropped");
        jobs.send(Job::Flush(tx)).map_err(|_| anyhow::anyhow!("face gallery: the writer thread is gone"))?;
        rx.recv().map_err(|_| anyhow::anyhow!("face gallery: the writer thread is gone"))?;
        self.check()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the queued files are written.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Side of the aligned crop cut for the identity net: its face box is the net's 150 px.
fn identity_crop_side() -> i32 {
    (identity::INPUT as f32 / identity::FFHQ_FACE_BOX[2]).round() as i32
}

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
    identities: Option<Identities>,
    /// The people of the last [`Gallery::write`].
    people: Vec<Person>,
    writer: Writer,
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
            identities: None,
            people: Vec::new(),
            writer: Writer::new()?,
        })
    }

    /// Groups tracks into people with `identities` (each track is its own person without).
    pub fn with_identities(mut self, identities: Identities) -> Self {
        self.identities = Some(identities);
        self
    }

    /// Waits until every retired crop is on disk.
    pub fn flush(&self) -> Result<()> {
        self.writer.flush()
    }

    /// The people of the last [`Gallery::write`].
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    /// How many crops are held in memory (tracks not yet retired).
    pub fn crops_in_memory(&self) -> usize {
        self.live.len()
    }

    /// Retires every track not seen for more than [`Gallery::retire_after`] frames before
    /// frame `number`: hands its best crop to the writer thread and drops the pixels.
    /// [`Gallery::offer`] calls it; call it for frames without faces too.
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
                self.writer.png(self.dir.join(&e.file), crop)?;
            }
            self.live.remove(&id);
        }
        self.describe(false)
    }

    /// Takes the descriptor of every retired track's face (live tracks wait: their best crop
    /// may still change), or of all with `all`, in batches; the face pixels are dropped.
    fn describe(&mut self, all: bool) -> Result<()> {
        let Some(ids) = self.identities.as_mut() else { return Ok(()) };
        let waiting: Vec<u64> =
            self.entries.values().filter(|e| e.view.is_some() && (all || e.crop.is_none())).map(|e| e.id).collect();
        for chunk in waiting.chunks(16) {
            let views: Vec<Mat> =
                chunk.iter().map(|id| self.entries[id].view.clone().expect("filtered on views")).collect();
            let descriptors = ids.net.descriptors_of_views(&views).context("face gallery: identity")?;
            for (id, d) in chunk.iter().zip(descriptors) {
                let e = self.entries.get_mut(id).expect("listed above");
                e.descriptor = Some(Box::new(d));
                e.view = None;
            }
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
            // Only the face's rectangle is converted (an I420 frame never whole).
            let crop = frame.bgr_region([rect.x, rect.y, rect.width, rect.height], 1.0)?;
            let sharpness = sharpness(&crop)?;
            let better = self.entries.get(&face.id).is_none_or(|e| quality(face.score, sharpness) > e.quality());
            // The identity net's view of a new best crop: aligned on the landmarks (or the
            // box), cut to the face box the net was trained on.
            let view = match (&self.identities, better) {
                (Some(_), true) => Some(identity_view(&crop, [rect.x, rect.y], face)?),
                _ => None,
            };
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
                person: 0,
                crop: Some(crop),
                view,
                descriptor: None,
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
                    if better {
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

    /// Writes every face's PNG, `index.json` (the people, then the tracks) and the contact
    /// sheet (`contact-sheet.png`, then `contact-sheet-2.png` ... for every further
    /// [`SHEET_CELLS`] people); returns the index path. The index is streamed to disk and the
    /// sheet drawn a page at a time, so neither grows with the stream in memory.
    pub fn write(&mut self) -> Result<PathBuf> {
        self.describe(true)?;
        // Retired crops on disk first: a live crop of the same track then replaces its file,
        // and the sheet reads the retired ones back.
        self.writer.flush()?;
        for e in self.entries.values() {
            if let Some(crop) = &e.crop {
                write_png(&self.dir.join(&e.file), crop)?;
            }
        }
        self.people = self.group();
        let index = self.dir.join("index.json");
        #[derive(Serialize)]
        struct Index<'a> {
            people: &'a [Person],
            tracks: Vec<&'a Entry>,
        }
        let file = std::fs::File::create(&index).with_context(|| format!("writing {}", index.display()))?;
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer_pretty(
            &mut out,
            &Index { people: &self.people, tracks: self.entries.values().collect() },
        )
        .with_context(|| format!("writing {}", index.display()))?;
        out.flush().with_context(|| format!("writing {}", index.display()))?;
        for page in 0..self.people.len().div_ceil(SHEET_CELLS).max(1) {
            let name =
                if page == 0 { "contact-sheet.png".to_string() } else { format!("contact-sheet-{}.png", page + 1) };
            write_png(&self.dir.join(name), &self.contact_sheet(page)?)?;
        }
        Ok(index)
    }

    /// Tracks grouped into people, in order of first appearance: each track with a
    /// descriptor joins the person whose mean descriptor is nearest, if within the
    /// threshold; the rest start a person of their own. Sets each entry's `person`.
    fn group(&mut self) -> Vec<Person> {
        let threshold = self.identities.as_ref().map(|i| i.threshold).filter(|t| *t > 0.0);
        let mut people: Vec<Person> = Vec::new();
        // per person: the sum of its descriptors and how many
        let mut sums: Vec<Option<([f32; DIM], f32)>> = Vec::new();
        let mut best_quality: Vec<f64> = Vec::new();
        for e in self.entries.values_mut() {
            let near = match (threshold, &e.descriptor) {
                (Some(t), Some(d)) => sums
                    .iter()
                    .enumerate()
                    .filter_map(|(k, s)| s.as_ref().map(|(sum, n)| (k, mean_distance(sum, *n, d))))
                    .filter(|&(_, dist)| dist < t)
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(k, _)| k),
                _ => None,
            };
            let k = match near {
                Some(k) => {
                    let p = &mut people[k];
                    p.tracks.push(e.id);
                    (p.first_ns, p.last_ns) = (p.first_ns.min(e.first_ns), p.last_ns.max(e.last_ns));
                    if e.quality() > best_quality[k] {
                        (p.best_track, p.file, best_quality[k]) = (e.id, e.file.clone(), e.quality());
                    }
                    if let (Some((sum, n)), Some(d)) = (sums[k].as_mut(), &e.descriptor) {
                        sum.iter_mut().zip(d.iter()).for_each(|(s, v)| *s += v);
                        *n += 1.0;
                    }
                    k
                }
                None => {
                    people.push(Person {
                        person: people.len() as u64 + 1,
                        tracks: vec![e.id],
                        first_ns: e.first_ns,
                        last_ns: e.last_ns,
                        best_track: e.id,
                        file: e.file.clone(),
                    });
                    sums.push(e.descriptor.as_ref().map(|d| (**d, 1.0)));
                    best_quality.push(e.quality());
                    people.len() - 1
                }
            };
            e.person = k as u64 + 1;
        }
        people
    }

    /// One page of the contact sheet: up to [`SHEET_CELLS`] people as 128 px thumbnails
    /// of their best crop, 8 across, each captioned with the person's tracks (with
    /// grouping) or the track id, and the times they were seen.
    pub fn contact_sheet(&self, page: usize) -> Result<Mat> {
        const THUMB: i32 = 128;
        const CAPTION: i32 = 34;
        let grouped = self.identities.as_ref().is_some_and(|i| i.threshold > 0.0);
        let people: Vec<&Person> = self.people.iter().skip(page * SHEET_CELLS).take(SHEET_CELLS).collect();
        let n = people.len().max(1) as i32;
        let cols = n.min(SHEET_COLS);
        let rows = (n + cols - 1) / cols;
        let mut sheet =
            Mat::new_rows_cols_with_default(rows * (THUMB + CAPTION), cols * THUMB, CV_8UC3, Scalar::all(30.0))?;
        for (k, p) in people.iter().enumerate() {
            let (c, r) = (k as i32 % cols, k as i32 / cols);
            let e = &self.entries[&p.best_track];
            let mut thumb = Mat::default();
            imgproc::resize(&self.crop(e)?, &mut thumb, Size::new(THUMB, THUMB), 0.0, 0.0, imgproc::INTER_AREA)?;
            let mut cell = Mat::roi_mut(&mut sheet, Rect::new(c * THUMB, r * (THUMB + CAPTION), THUMB, THUMB))?;
            thumb.copy_to(&mut cell)?;
            let label = if grouped { person_label(p) } else { format!("#{}", p.best_track) };
            let lines = [label, format!("{}-{}", clock(p.first_ns), clock(p.last_ns))];
            for (l, text) in lines.iter().enumerate() {
                let org = Point::new(c * THUMB + 4, r * (THUMB + CAPTION) + THUMB + 13 + 15 * l as i32);
                let font = imgproc::FONT_HERSHEY_SIMPLEX;
                imgproc::put_text(&mut sheet, text, org, font, 0.4, Scalar::all(235.0), 1, imgproc::LINE_AA, false)?;
            }
        }
        Ok(sheet)
    }
}

/// "P2 #3 #7": the person and its tracks, as many as fit a 128 px caption ("+4" for the rest).
fn person_label(p: &Person) -> String {
    let mut label = format!("P{}", p.person);
    for (k, t) in p.tracks.iter().enumerate() {
        let more = format!(" +{}", p.tracks.len() - k);
        let next = format!(" #{t}");
        if label.len() + next.len() > 18 || (k + 1 < p.tracks.len() && label.len() + next.len() + more.len() > 21) {
            label.push_str(&more);
            break;
        }
        label.push_str(&next);
    }
    label
}

/// Distance of `d` from the mean of `n` descriptors summing to `sum`.
fn mean_distance(sum: &[f32; DIM], n: f32, d: &[f32; DIM]) -> f32 {
    sum.iter().zip(d).map(|(s, v)| (s / n - v) * (s / n - v)).sum::<f32>().sqrt()
}

/// The identity net's view of `face` from `region`, the BGR copy of the frame around it
/// with its top-left corner at `at`: the FFHQ-aligned crop whose face box is the net's
/// input size (the box lies inside the gallery's margin; edges beyond it repeat).
fn identity_view(region: &Mat, at: [i32; 2], face: &Face) -> Result<Mat> {
    let side = identity_crop_side();
    let sim = align::estimate(face, Template::Ffhq5, side)?.with_source_offset(at[0] as f64, at[1] as f64);
    identity::face_view(&align::warp(region, &sim, side)?)
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
