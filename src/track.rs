//! Faces through time: stable ids across frames, optical-flow tracking between detections
//! (`detect-interval`), and One-Euro smoothing of boxes and landmarks so that the
//! alignment, and with it the restored face, does not jitter from frame to frame.

use anyhow::Result;
use opencv::core::{Mat, Point2f, Size, TermCriteria, TermCriteria_Type, Vector};
use opencv::prelude::*;
use opencv::video;

use crate::align::Similarity;
use crate::detect::{Detector, Face};
use crate::frame::Frame;
use crate::search::{Search, SearchConfig};

/// The One-Euro filter (Casiry et al. 2012) on one coordinate, with time in frames: heavy
/// smoothing while a value is still, little lag once it moves.
#[derive(Clone, Debug)]
struct OneEuro {
    value: f32,
    speed: f32,
}

fn alpha(cutoff: f32) -> f32 {
    let tau = 1.0 / (2.0 * std::f32::consts::PI * cutoff);
    1.0 / (1.0 + tau)
}

impl OneEuro {
    fn new(value: f32) -> Self {
        Self { value, speed: 0.0 }
    }

    /// `min_cutoff` in cycles per frame; `beta` raises it with speed (px per frame).
    fn filter(&mut self, x: f32, min_cutoff: f32, beta: f32) -> f32 {
        // Derivative cutoff 0.04 cycles/frame (1 Hz at 25 fps, the paper's default).
        let a_d = alpha(0.04);
        self.speed += a_d * ((x - self.value) - self.speed);
        let cutoff = min_cutoff + beta * self.speed.abs();
        self.value += alpha(cutoff) * (x - self.value);
        self.value
    }
}

/// The coordinates of a face that get smoothed: box, then landmarks or eyes.
fn coords(f: &Face) -> Vec<f32> {
    let mut v = f.bbox.to_vec();
    if let Some(l) = &f.landmarks {
        v.extend(l.iter().flatten());
    }
    if let Some(e) = &f.eyes {
        v.extend(e.iter().flatten());
    }
    v
}

fn set_coords(f: &mut Face, v: &[f32]) {
    f.bbox.copy_from_slice(&v[..4]);
    let mut rest = &v[4..];
    if let Some(l) = f.landmarks.as_mut() {
        for (p, c) in l.iter_mut().zip(rest.chunks(2)) {
            *p = [c[0], c[1]];
        }
        rest = &rest[10..];
    }
    if let Some(e) = f.eyes.as_mut() {
        for (p, c) in e.iter_mut().zip(rest.chunks(2)) {
            *p = [c[0], c[1]];
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrackConfig {
    /// Overlap needed to keep a face's id.
    pub iou_threshold: f32,
    /// Updates a face may be missing before its id is forgotten.
    pub max_missed: u32,
    /// One-Euro smoothing of boxes and landmarks.
    pub smoothing: bool,
    /// Cutoff (cycles per frame) while still: lower smooths more.
    pub min_cutoff: f32,
    /// How fast the cutoff rises with motion (per px/frame).
    pub beta: f32,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self { iou_threshold: 0.3, max_missed: 5, smoothing: true, min_cutoff: 0.04, beta: 0.05 }
    }
}

struct Track {
    id: u64,
    face: Face,
    missed: u32,
    filters: Vec<OneEuro>,
}

/// Ids and smoothing over a sequence of face lists.
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    config: TrackConfig,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new(TrackConfig::default())
    }
}

impl Tracker {
    pub fn new(config: TrackConfig) -> Self {
        Self { tracks: Vec::new(), next_id: 1, config }
    }

    /// Gives every face an id: the id of the track it overlaps most (best pairs first),
    /// or a new one; smooths the face when its track goes on. Tracks unseen for
    /// `max_missed` updates are forgotten.
    pub fn update(&mut self, faces: &mut [Face]) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (fi, f) in faces.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let iou = f.iou(&t.face);
                if iou >= self.config.iou_threshold {
                    pairs.push((iou, fi, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut face_track = vec![None; faces.len()];
        let mut track_used = vec![false; self.tracks.len()];
        for (_, fi, ti) in pairs {
            if face_track[fi].is_none() && !track_used[ti] {
                face_track[fi] = Some(ti);
                track_used[ti] = true;
            }
        }
        for (t, used) in self.tracks.iter_mut().zip(&track_used) {
            if !used {
                t.missed += 1;
            }
        }
        let c = self.config.clone();
        for (fi, f) in faces.iter_mut().enumerate() {
            match face_track[fi] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    f.id = t.id;
                    let v = coords(f);
                    if c.smoothing && v.len() == t.filters.len() {
                        let smooth: Vec<f32> =
                            t.filters.iter_mut().zip(&v).map(|(k, x)| k.filter(*x, c.min_cutoff, c.beta)).collect();
                        set_coords(f, &smooth);
                    } else {
                        t.filters = v.into_iter().map(OneEuro::new).collect();
                    }
                    t.face = f.clone();
                    t.missed = 0;
                }
                None => {
                    f.id = self.next_id;
                    self.next_id += 1;
                    let filters = coords(f).into_iter().map(OneEuro::new).collect();
                    self.tracks.push(Track { id: f.id, face: f.clone(), missed: 0, filters });
                }
            }
        }
        let max = c.max_missed;
        self.tracks.retain(|t| t.missed <= max);
    }

    /// The faces of every track still alive (seen within `max_missed` updates), where
    /// they were last seen, and whether that was the last update: where to look for them.
    pub fn live(&self) -> Vec<(Face, bool)> {
        self.tracks.iter().map(|t| (t.face.clone(), t.missed == 0)).collect()
    }

    /// The faces as last seen.
    pub fn current(&self) -> Vec<Face> {
        self.tracks.iter().filter(|t| t.missed == 0).map(|t| t.face.clone()).collect()
    }

    pub fn reset(&mut self) {
        self.tracks.clear();
    }
}

/// Side (px) the smallest tracked face keeps in the grey copy optical flow runs on.
const FLOW_FACE: f32 = 48.0;

/// The power-of-two reduction (1 to 8) of the frame that optical flow runs on, given the
/// smallest tracked face's side: small enough to be cheap, large enough to follow it.
fn flow_reduction(smallest: f32) -> i32 {
    let mut k = 1;
    while k < 8 && smallest / (2 * k) as f32 >= FLOW_FACE {
        k *= 2;
    }
    k
}

/// Points to follow on a face: its landmarks (or eyes) and a 4x4 grid over its box.
fn flow_points(f: &Face, scale: f32) -> Vec<Point2f> {
    let mut pts = Vec::new();
    if let Some(l) = &f.landmarks {
        pts.extend(l.iter().map(|p| Point2f::new(p[0] / scale, p[1] / scale)));
    }
    if let Some(e) = &f.eyes {
        pts.extend(e.iter().map(|p| Point2f::new(p[0] / scale, p[1] / scale)));
    }
    let [x, y, w, h] = f.bbox.map(|v| v / scale);
    for i in 0..4 {
        for j in 0..4 {
            pts.push(Point2f::new(x + w * (0.2 + 0.2 * i as f32), y + h * (0.2 + 0.2 * j as f32)));
        }
    }
    pts
}

/// Moves `face` by the similarity that its points followed, if enough of them were
/// followed reliably (forward-backward error under a pixel).
fn follow(prev: &Mat, next: &Mat, face: &Face, scale: f32) -> Result<Option<Face>> {
    let pts: Vector<Point2f> = flow_points(face, scale).into_iter().collect();
    let criteria = TermCriteria::new(TermCriteria_Type::COUNT as i32 + TermCriteria_Type::EPS as i32, 20, 0.03)?;
    let lk = |a: &Mat, b: &Mat, from: &Vector<Point2f>| -> Result<(Vector<Point2f>, Vector<u8>)> {
        let mut to = Vector::<Point2f>::new();
        let mut status = Vector::<u8>::new();
        let mut err = Vector::<f32>::new();
        video::calc_optical_flow_pyr_lk(
            a,
            b,
            from,
            &mut to,
            &mut status,
            &mut err,
            Size::new(15, 15),
            2,
            criteria,
            0,
            1e-4,
        )?;
        Ok((to, status))
    };
    let (fwd, s1) = lk(prev, next, &pts)?;
    let (back, s2) = lk(next, prev, &fwd)?;
    let mut src = Vec::new();
    let mut dst = Vec::new();
    for i in 0..pts.len() {
        let (p, q, r) = (pts.get(i)?, fwd.get(i)?, back.get(i)?);
        if s1.get(i)? == 1 && s2.get(i)? == 1 && (p.x - r.x).hypot(p.y - r.y) < 1.0 {
            src.push([p.x * scale, p.y * scale]);
            dst.push([q.x * scale, q.y * scale]);
        }
    }
    if src.len() * 2 < pts.len() {
        return Ok(None);
    }
    let sim = Similarity::fit(&src, &dst)?;
    let mut f = face.clone();
    let [x, y, w, h] = face.bbox;
    let c = sim.apply([x + w / 2.0, y + h / 2.0]);
    let k = sim.scale() as f32;
    f.bbox = [c[0] - w * k / 2.0, c[1] - h * k / 2.0, w * k, h * k];
    if let Some(l) = f.landmarks.as_mut() {
        l.iter_mut().for_each(|p| *p = sim.apply(*p));
    }
    if let Some(e) = f.eyes.as_mut() {
        e.iter_mut().for_each(|p| *p = sim.apply(*p));
    }
    Ok(Some(f))
}

/// Detection every `interval` frames (where [`Search`] says to look), optical-flow tracking
/// in between, ids and smoothing on every frame. A face whose tracking loses confidence
/// triggers a detection on the next frame instead of drifting.
pub struct FaceStream {
    detector: Detector,
    search: Search,
    tracker: Tracker,
    interval: u64,
    frame: u64,
    redetect: bool,
    prev: Option<(Mat, f32)>,
}

impl FaceStream {
    pub fn new(detector: Detector, config: TrackConfig) -> Self {
        Self {
            detector,
            search: Search::new(SearchConfig::default()),
            tracker: Tracker::new(config),
            interval: 1,
            frame: 0,
            redetect: true,
            prev: None,
        }
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn set_interval(&mut self, n: u32) {
        self.interval = n.max(1) as u64;
    }

    /// Frames over which a full search for new faces is spread (0: every frame).
    pub fn set_sweep_frames(&mut self, n: u32) {
        self.search.set_sweep_frames(n);
    }

    /// Forget all faces (after a seek: the next frame is detected afresh).
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.search.reset();
        self.prev = None;
        self.redetect = true;
        self.frame = 0;
    }

    /// This frame's faces, and whether the detector ran on it.
    pub fn next(&mut self, frame: &Frame) -> Result<(Vec<Face>, bool)> {
        // The grey copy only serves optical flow: made only when frames are skipped, at the
        // reduction of the previous one (see below).
        let gray = match &self.prev {
            Some((_, k)) if self.interval > 1 => Some((frame.gray_thumbnail(*k as i32)?, *k)),
            _ => None,
        };
        let flow = match (&self.prev, &gray) {
            (Some((p, f)), Some((g, gf))) if p.size().ok() == g.size().ok() && f == gf => Some((p, g, *f)),
            _ => None,
        };
        let detect = self.redetect || flow.is_none() || self.frame.is_multiple_of(self.interval);
        self.redetect = false;
        let mut faces = match flow {
            Some((prev, gray, factor)) if !detect => {
                let mut moved = Vec::new();
                for f in self.tracker.current() {
                    match follow(prev, gray, &f, factor)? {
                        Some(m) => moved.push(m),
                        None => self.redetect = true,
                    }
                }
                moved
            }
            _ => {
                let (faces, r) = self.search.faces(frame, &mut self.detector, &self.tracker.live())?;
                tracing::trace!(
                    followed = r.followed,
                    kept = r.kept,
                    moving = r.moving,
                    examined = r.examined.len(),
                    full = r.full,
                    pixels = r.pixels as u64,
                    changed = format!("{:.3}", r.changed),
                    "search"
                );
                faces
            }
        };
        self.tracker.update(&mut faces);
        // For the next frame's flow: the power-of-two reduction that leaves the smallest
        // face now tracked about FLOW_FACE px (the Y plane of I420 as it is: no colour
        // conversion), this frame's copy when it already has it.
        self.prev = if self.interval > 1 {
            let smallest = faces.iter().map(|f| f.bbox[2].max(f.bbox[3])).fold(f32::MAX, f32::min);
            let k = flow_reduction(smallest) as f32;
            match gray {
                Some((g, f)) if f == k => Some((g, f)),
                _ => Some((frame.gray_thumbnail(k as i32)?, k)),
            }
        } else {
            None
        };
        self.frame += 1;
        Ok((faces, detect))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f32) -> Face {
        Face::from_box([x, 10.0, 40.0, 40.0], 0.9)
    }

    fn raw() -> Tracker {
        Tracker::new(TrackConfig { smoothing: false, ..Default::default() })
    }

    #[test]
    fn flow_runs_on_a_copy_where_the_smallest_face_keeps_about_48_px() {
        assert_eq!(flow_reduction(f32::MAX), 8, "no face: the cheapest copy");
        assert_eq!(flow_reduction(300.0), 4);
        assert_eq!(flow_reduction(100.0), 2);
        assert_eq!(flow_reduction(60.0), 1);
        assert_eq!(flow_reduction(20.0), 1);
    }

    #[test]
    fn ids_follow_faces_and_new_faces_get_new_ids() {
        let mut t = raw();
        let mut f = vec![at(0.0), at(200.0)];
        t.update(&mut f);
        let (a, b) = (f[0].id, f[1].id);
        assert_ne!(a, b);
        // Moved a little, listed in the other order, plus a newcomer.
        let mut g = vec![at(205.0), at(400.0), at(4.0)];
        t.update(&mut g);
        assert_eq!((g[0].id, g[2].id), (b, a));
        assert!(g[1].id != a && g[1].id != b);
    }

    #[test]
    fn a_track_is_forgotten_after_max_missed_updates() {
        let mut t = Tracker::new(TrackConfig { max_missed: 1, ..Default::default() });
        let mut f = vec![at(0.0)];
        t.update(&mut f);
        let id = f[0].id;
        t.update(&mut []);
        let mut back = vec![at(0.0)];
        t.update(&mut back);
        assert_eq!(back[0].id, id, "one miss is tolerated");
        t.update(&mut []);
        t.update(&mut []);
        let mut later = vec![at(0.0)];
        t.update(&mut later);
        assert_ne!(later[0].id, id, "two misses end the track");
    }

    #[test]
    fn smoothing_damps_jitter_and_follows_motion() {
        let mut t = Tracker::default();
        // A still face whose box jitters by +-2 px.
        let mut out = Vec::new();
        for i in 0..60 {
            let mut f = vec![at(100.0 + if i % 2 == 0 { 2.0 } else { -2.0 })];
            t.update(&mut f);
            out.push(f[0].bbox[0]);
        }
        let jitter = out[30..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(jitter < 0.6, "smoothed jitter {jitter} px (raw 4 px)");
        // Then it moves 8 px per frame: the smoothed box keeps up within a few px.
        let mut x = 100.0;
        let mut last = 0.0;
        for _ in 0..15 {
            x += 8.0;
            let mut f = vec![at(x)];
            t.update(&mut f);
            last = f[0].bbox[0];
        }
        assert!((x - last).abs() < 12.0, "lag {} px at 8 px/frame", x - last);
    }
}
