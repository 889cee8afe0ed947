//! Where and when detection looks, so that a stream costs little when nothing changes.
//!
//! Detecting every frame at the scale that keeps 16 px faces findable cost 3.5-10x a
//! decode + encode of 720p. Instead:
//! - known faces are re-detected every frame in a region 1.5 times their size around them
//!   (twice where that misses),
//!   scaled so the face spans [`FOLLOW_FACE`] px (cheap, fresh landmarks), or kept as
//!   they were where nothing moved (motion inside that region searches nothing else);
//! - new faces are searched for only where the picture changed (a grey thumbnail 1/8 of
//!   the frame, compared frame to frame): each small moving thing gets a region of its
//!   own at the scale that keeps `min_face_size` findable; larger motion marks a coarse
//!   pass over the whole frame at `coarse_size` (large faces) and the fine-scale tiles it
//!   touched (small faces);
//! - each frame examines the waiting regions, oldest first, within a budget of detection
//!   pixels: one full search spread over `sweep_frames` frames (so constant motion costs
//!   a bounded share of a frame, and stillness saves credit for the next thing that moves);
//! - a small moving thing examined without a face (a ball, a car, a swaying branch) is
//!   followed through the thumbnail and not examined again for [`RECHECK_FRAMES`] frames:
//!   otherwise it spends the whole budget, frame after frame, on the same nothing.
//!
//! The first frame, a seek (reset) and a cut get a full search at once. A camera pan or
//! tilt is no cut: the thumbnail's global shift is measured (phase correlation) and the
//! blocks compared after it, so only the strip the camera turned onto (and whatever moved
//! in the scene) is searched, and known faces are followed where the pan took them. Nor is
//! a zoom: where no shift explains the change, the similarity (scale, shift) that the
//! thumbnail's corners followed is fitted, the blocks are compared after it, the border a
//! zoom-out brings in waits for the budget, and once the picture has grown or shrunk by
//! [`ZOOM_SWEEP`] the whole frame does (faces of new sizes: some now findable).

use anyhow::Result;
use opencv::core::{self as cv, Mat};
use opencv::prelude::*;

use crate::detect::{Detector, Face};
use crate::frame::Frame;

/// Thumbnail factor: motion is judged on k x k block means.
const THUMB: i32 = 8;
/// A block mean that moved by more than this (of 255) counts as change.
const MOTION_LEVEL: f64 = 8.0;
/// More than this share of blocks changed: a cut or a camera move, search everything now.
const CUT_SHARE: f64 = 0.5;
/// Share of changed blocks above which the thumbnail's global shift (a pan) is measured.
const PAN_CHECK_SHARE: f64 = 0.1;
/// Phase-correlation peak (0..1) below which no global shift is trusted (a cut, or a
/// scene without texture): measured 0.3-0.9 on pans over real pictures, under 0.1 on cuts.
const PAN_CONFIDENCE: f64 = 0.2;
/// A pan's new strip is searched once it is this deep (frame px).
const PAN_BAND: f64 = 4.0 * THUMB as f64;
/// A zoom is measured only when the thumbnail's scale changed by more than this.
const ZOOM_MIN: f64 = 0.003;
/// Share of the thumbnail's followed corners that must agree on one similarity.
const ZOOM_INLIERS: f64 = 0.6;
/// Once a zoom has scaled the picture by this (either way) since the last sweep, every
/// region waits to be searched again within the budget.
pub const ZOOM_SWEEP: f64 = 1.25;
/// Side (px) a known face is scaled to for its re-detection.
pub const FOLLOW_FACE: f64 = 64.0;
/// A known face is looked for again first within this many of its sides around its centre
/// (a 96 px detector input: CenterFace 6.8 against 13.2 ms for [`FOLLOW_REACH`]'s 128 px,
/// criterion) ...
pub const FOLLOW_REACH_NEAR: f64 = 0.75;
/// ... and where that finds nothing (a fast move; a hard face with little context around
/// it: carphone lost its face in 21 of 120 frames with the near region alone), within this.
pub const FOLLOW_REACH: f64 = 1.0;
/// Side (px of detection input) of a fine-pass tile, before its overlap.
const TILE_INPUT: f64 = 256.0;
/// A moving thing whose region costs more than 1/this of a full search marks tiles instead.
const MOVING_SHARE: f64 = 8.0;
/// At most this many moving regions wait; more motion marks tiles.
const MAX_MOVING: usize = 64;
/// Largest enlargement of a small known face for its re-detection.
const MAX_FOLLOW_SCALE: f64 = 4.0;
/// A moving thing examined without a face is examined again after this many frames (2 s at
/// 25 fps: a person who walks in with their back turned is found within that once they turn).
pub const RECHECK_FRAMES: u64 = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    /// Frames over which one full search for new faces is spread (0: search the whole
    /// frame, both passes, on every frame, as a still picture is). 250 (10 s at 25 fps):
    /// a 720p clip in constant motion and without faces then costs ~1.4x a decode +
    /// encode, against 2.6x at 50 (measured, BENCHMARKS.md); a face entering a still
    /// scene is found on its first frame either way.
    pub sweep_frames: u32,
    /// How many times faster the budgeted search runs while faces are about (one seen
    /// within the last `sweep_frames` frames): where people are, more come. On a busy CCTV
    /// street (the bench's 1080p mosaic of bikes.mp4, faces of 16-60 px, 250 frames) the
    /// default found 37 % of the faces an every-frame search finds with 1 (58.5 k detection
    /// px a frame), 87 % with 10 (136 k), 98 % with 12.5 (157 k; every-frame: 1,166 k);
    /// matched face by face there, 97.6 %. 18 found fewer (88.8 %): not monotone, likely
    /// because a moving thing examined sooner, before its face can be found, is cleared
    /// and not looked at again for [`RECHECK_FRAMES`].
    pub busy_speedup: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self { sweep_frames: 250, busy_speedup: BUSY_SPEEDUP }
    }
}

/// Default of [`SearchConfig::busy_speedup`].
pub const BUSY_SPEEDUP: f64 = 12.5;

/// A region a search pass examines, and since which frame it changed unexamined.
#[derive(Clone, Debug)]
struct Region {
    rect: [i32; 4],
    scale: f64,
    dirty_since: Option<u64>,
}

/// A small moving thing examined without a face: where it is now (its search region,
/// moved along with it), its size in the motion mask when examined, and when.
#[derive(Clone, Debug)]
struct Cleared {
    rect: [i32; 4],
    blob: (i32, i32),
    at: u64,
}

impl Cleared {
    /// Whether the moving blob `b` is this thing, moved on: it overlaps its region and has
    /// not grown (a face that walks into it makes the blob larger, and is examined).
    fn is(&self, b: [i32; 4]) -> bool {
        overlaps(self.rect, b) && b[2] <= self.blob.0 * 3 / 2 + THUMB && b[3] <= self.blob.1 * 3 / 2 + THUMB
    }
}

impl Region {
    fn pixels(&self) -> f64 {
        self.rect[2] as f64 * self.rect[3] as f64 * self.scale * self.scale
    }
}

/// The search regions of one frame size: the coarse pass, then the fine tiles.
struct Layout {
    size: (i32, i32),
    regions: Vec<Region>,
    /// Fine tiles per row and their core side (frame px); 0 when the coarse pass suffices.
    cols: i32,
    core: i32,
    /// Pixels of one full budgeted search (coarse pass and every tile).
    full_pixels: f64,
    /// Pixels of the whole frame at the fine scale (a full search at once).
    fine_pixels: f64,
    /// Fine and coarse scale, and the fine tiles' overlap (frame px): a face too small
    /// for the coarse pass lies whole inside some tile.
    fine: f64,
    coarse: f64,
    margin: i32,
}

impl Layout {
    fn new(frame: &Frame, det: &Detector) -> Self {
        let (w, h) = (frame.width(), frame.height());
        let long = w.max(h);
        let coarse = det.coarse_scale(long);
        let fine = det.fine_scale(long);
        let mut regions = vec![Region { rect: [0, 0, w, h], scale: coarse, dirty_since: None }];
        let (mut cols, mut core) = (0, 0);
        // A face too small for the coarse pass lies whole inside some tile.
        let margin = (det.min_face_at(coarse) * 1.25).ceil() as i32;
        if fine > coarse * 1.05 {
            core = (TILE_INPUT / fine).ceil() as i32;
            cols = (w + core - 1) / core;
            let rows = (h + core - 1) / core;
            for r in 0..rows {
                for c in 0..cols {
                    let (x0, y0) = ((c * core - margin).max(0), (r * core - margin).max(0));
                    let (x1, y1) = (((c + 1) * core + margin).min(w), ((r + 1) * core + margin).min(h));
                    regions.push(Region { rect: [x0, y0, x1 - x0, y1 - y0], scale: fine, dirty_since: None });
                }
            }
        }
        let full_pixels = regions.iter().map(Region::pixels).sum();
        let fine_pixels = w as f64 * h as f64 * fine * fine;
        Self { size: (w, h), regions, cols, core, full_pixels, fine_pixels, fine, coarse, margin }
    }

    /// The regions that show what a pan of `acc` (frame px, the picture's shift since the
    /// last such search) brought into view: the band along each edge it came in from, at
    /// the fine scale with a tile's overlap (small faces), and the coarse pass over the
    /// whole frame (a large face is whole only once well inside; a band cut through the
    /// middle of the picture gave YuNet false faces at its edge).
    fn bands(&self, acc: [f64; 2]) -> Vec<Region> {
        let (w, h) = self.size;
        let mut out = Vec::new();
        for (shift, side) in [(acc[0], w), (acc[1], h)] {
            if shift.abs() < 1.0 {
                continue;
            }
            let depth = (shift.abs().ceil() as i32 + self.margin).min(side);
            // content moved left (shift < 0): the new band is on the right
            let start = if shift < 0.0 { side - depth } else { 0 };
            let rect = if side == w { [start, 0, depth, h] } else { [0, start, w, depth] };
            out.push(Region { rect, scale: self.fine, dirty_since: None });
        }
        if !out.is_empty() {
            out.push(Region { rect: [0, 0, w, h], scale: self.coarse, dirty_since: None });
        }
        out
    }

    /// Marks the coarse pass and the tile holding frame point (x, y) as changed.
    fn mark(&mut self, x: i32, y: i32, frame_no: u64) {
        let mut set = |i: usize| {
            if let Some(r) = self.regions.get_mut(i) {
                r.dirty_since.get_or_insert(frame_no);
            }
        };
        set(0);
        if self.cols > 0 {
            set(1 + ((y / self.core) * self.cols + x / self.core) as usize);
        }
    }
}

/// What one frame's search did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchReport {
    /// Known faces re-detected in their regions.
    pub followed: usize,
    /// Of those, the ones not found in the near region, looked for in the whole reach.
    pub widened: usize,
    /// Known faces kept where they were: nothing moved around them.
    pub kept: usize,
    /// Detection input spent on this frame, in pixels (the search's cost measure).
    pub pixels: f64,
    /// Search regions examined (0: the coarse pass, 1..: fine tiles).
    pub examined: Vec<usize>,
    /// Regions around small moving things examined.
    pub moving: usize,
    /// Everything was searched (first frame, reset, cut, or `sweep_frames` 0).
    pub full: bool,
    /// Share of thumbnail blocks that changed since the last frame (after the pan, if any).
    pub changed: f64,
    /// The picture's global shift since the last frame (a camera pan or tilt), frame px,
    /// when one was measured and used.
    pub pan: Option<[f64; 2]>,
    /// The picture's scale since the last frame (> 1: zooming in), when a zoom was
    /// measured and used.
    pub zoom: Option<f64>,
}

/// Motion-gated, budgeted face search over a stream of frames.
pub struct Search {
    config: SearchConfig,
    layout: Option<Layout>,
    prev: Option<Mat>,
    frame: u64,
    /// Detection pixels the search may still spend.
    credit: f64,
    /// Regions around small moving things, waiting to be examined (oldest first), with
    /// the size of the blob that made each.
    moving: Vec<(Region, (i32, i32))>,
    /// Moving things examined lately without a face.
    cleared: Vec<Cleared>,
    full_pending: bool,
    /// The picture's shift (frame px) since its last pan bands were searched.
    pan_acc: [f64; 2],
    /// The picture's scale since the last zoom sweep.
    zoom_acc: f64,
    /// The last frame a face was known on.
    last_face: Option<u64>,
}

impl Search {
    pub fn new(config: SearchConfig) -> Self {
        Self {
            config,
            layout: None,
            prev: None,
            frame: 0,
            credit: 0.0,
            moving: Vec::new(),
            cleared: Vec::new(),
            full_pending: true,
            pan_acc: [0.0; 2],
            zoom_acc: 1.0,
            last_face: None,
        }
    }

    pub fn config(&self) -> &SearchConfig {
        &self.config
    }

    /// Detection pixels of one full budgeted search (coarse pass and every tile) at the
    /// last frame's size: a budgeted frame spends this / `sweep_frames` on average.
    pub fn sweep_pixels(&self) -> Option<f64> {
        self.layout.as_ref().map(|l| l.full_pixels)
    }

    pub fn set_sweep_frames(&mut self, n: u32) {
        self.config.sweep_frames = n;
    }

    /// The next frame searches everything (a seek: nothing before says where faces are).
    pub fn reset(&mut self) {
        self.prev = None;
        self.moving.clear();
        self.cleared.clear();
        self.full_pending = true;
        self.credit = 0.0;
        self.pan_acc = [0.0; 2];
        self.zoom_acc = 1.0;
        self.last_face = None;
    }

    /// Turns this frame's changed thumbnail blocks (`mask`) into search work: each small
    /// moving thing a region of its own (a face walking into a still scene is examined at
    /// once, cheaply); larger motion marks the coarse pass and the tiles it touched.
    /// Motion inside a known face's region (`followed`) is its re-detection's business.
    /// While the camera pans (`panning`), what is left after the shift (a seam, parallax,
    /// a walker) marks tiles rather than regions of its own: a small crop around a seam
    /// gave YuNet false faces.
    fn note_motion(&mut self, mask: &Mat, frame_no: u64, followed: &[[i32; 4]], panning: bool) -> Result<()> {
        let layout = self.layout.as_mut().expect("set by the caller");
        let (w, h) = layout.size;
        let fine = layout.regions.get(1).map_or(layout.regions[0].scale, |r| r.scale);
        let (mut labels, mut stats, mut centroids) = (Mat::default(), Mat::default(), Mat::default());
        let n = opencv::imgproc::connected_components_with_stats(
            mask,
            &mut labels,
            &mut stats,
            &mut centroids,
            8,
            cv::CV_32S,
        )?;
        for blob in 1..n {
            let at = |c: i32| -> Result<i32> { Ok(*stats.at_2d::<i32>(blob, c)? * THUMB) };
            let [bx, by, bw, bh] = [at(0)?, at(1)?, at(2)?, at(3)?];
            if followed.iter().any(|f| inside([bx, by, bw, bh], *f)) {
                continue;
            }
            // Room for the rest of a face of which only a part moved.
            let pad = bw.max(bh) / 2 + 2 * THUMB;
            let (x0, y0) = ((bx - pad).max(0), (by - pad).max(0));
            let (x1, y1) = ((bx + bw + pad).min(w), (by + bh + pad).min(h));
            let region = Region { rect: [x0, y0, x1 - x0, y1 - y0], scale: fine, dirty_since: Some(frame_no) };
            if !panning && region.pixels() <= layout.full_pixels / MOVING_SHARE && self.moving.len() < MAX_MOVING {
                if let Some(c) = self.cleared.iter_mut().find(|c| c.is([bx, by, bw, bh])) {
                    // Examined lately, no face: follow it instead.
                    c.rect = region.rect;
                    continue;
                }
                add_moving(&mut self.moving, region, (bw, bh));
            } else {
                for y in (by..by + bh).step_by(THUMB as usize) {
                    for x in (bx..bx + bw).step_by(THUMB as usize) {
                        layout.mark(x + THUMB / 2, y + THUMB / 2, frame_no);
                    }
                }
            }
        }
        Ok(())
    }

    /// This frame's faces, in frame coordinates, best first: the faces tracked so far
    /// (`known`, each with whether it was seen on the last frame) where they are now, plus
    /// new ones where the search looked.
    pub fn faces(
        &mut self,
        frame: &Frame,
        det: &mut Detector,
        known: &[(Face, bool)],
    ) -> Result<(Vec<Face>, SearchReport)> {
        let frame_no = self.frame;
        self.frame += 1;
        self.cleared.retain(|c| frame_no - c.at < RECHECK_FRAMES);
        let mut report = SearchReport::default();
        let size = (frame.width(), frame.height());
        if self.layout.as_ref().is_none_or(|l| l.size != size) {
            self.layout = Some(Layout::new(frame, det));
            self.prev = None;
            self.full_pending = true;
        }

        // Where each known face is looked for again (its motion is that search's business).
        let follow: Vec<(&Face, bool, [i32; 4], f64)> = known
            .iter()
            .filter_map(|(f, seen)| follow_region(f, size, FOLLOW_REACH).map(|(r, s)| (f, *seen, r, s)))
            .collect();

        // Motion since the last frame: small moving things become regions of their own,
        // larger motion marks the coarse pass and the tiles it touched.
        let thumb = frame.gray_thumbnail(THUMB)?;
        let mut mask = None;
        if let Some(prev) = self.prev.as_ref().filter(|p| p.size().ok() == thumb.size().ok()) {
            let (mut m, _) = changed_blocks(prev, &thumb, None)?;
            let blocks = (thumb.rows() * thumb.cols()).max(1) as f64;
            let mut changed = cv::count_non_zero(&m)?;
            if changed as f64 / blocks > PAN_CHECK_SHARE {
                // A pan moves every block: compare after the global shift, if one explains
                // most of the change (what is left: the new strip and real movers). The
                // strip is searched as bands (below), the movers as motion.
                if let Some(shift) = global_shift(prev, &thumb)? {
                    let (movers, fresh) = changed_blocks(prev, &thumb, Some(shift))?;
                    let left = cv::count_non_zero(&movers)? + fresh;
                    if left * 2 < changed {
                        (m, changed) = (movers, left);
                        let pan = [shift[0] * THUMB as f64, shift[1] * THUMB as f64];
                        report.pan = Some(pan);
                        self.pan_acc = [self.pan_acc[0] + pan[0], self.pan_acc[1] + pan[1]];
                    }
                }
                // No shift explains it: a zoom? Compared after the fitted similarity; the
                // border a zoom-out brought in marks its tiles (they wait for the budget).
                if report.pan.is_none() {
                    if let Some((t, scale)) = global_similarity(prev, &thumb)? {
                        let (movers, fresh) = changed_after(prev, &thumb, &t)?;
                        let left = cv::count_non_zero(&movers)? + cv::count_non_zero(&fresh)?;
                        if left * 2 < changed {
                            (m, changed) = (movers, left);
                            report.zoom = Some(scale);
                            self.zoom_acc *= scale;
                            let layout = self.layout.as_mut().expect("set above");
                            for y in 0..fresh.rows() {
                                for x in 0..fresh.cols() {
                                    if *fresh.at_2d::<u8>(y, x)? > 0 {
                                        layout.mark(x * THUMB + THUMB / 2, y * THUMB + THUMB / 2, frame_no);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            report.changed = changed as f64 / blocks;
            if report.changed > CUT_SHARE {
                self.full_pending = true;
            } else if changed > 0 {
                let followed: Vec<[i32; 4]> = follow.iter().map(|(_, _, r, _)| *r).collect();
                let moving_camera = report.pan.is_some() || report.zoom.is_some();
                self.note_motion(&m, frame_no, &followed, moving_camera)?;
            }
            mask = Some(m);
        } else {
            self.full_pending = true;
        }
        self.prev = Some(thumb);
        let layout = self.layout.as_mut().expect("set above");

        // Re-detecting hundreds of faces one by one costs more than one full search.
        let follow_pixels: f64 = follow.iter().map(|(_, _, r, s)| r[2] as f64 * r[3] as f64 * s * s).sum();
        if self.full_pending || self.config.sweep_frames == 0 || follow_pixels > layout.full_pixels {
            // The whole frame at the fine scale, as a still picture is searched.
            for r in layout.regions.iter_mut() {
                r.dirty_since = None;
            }
            self.moving.clear();
            self.cleared.clear();
            self.full_pending = false;
            self.credit = 0.0;
            self.pan_acc = [0.0; 2];
            self.zoom_acc = 1.0;
            report.full = true;
            report.pixels = layout.fine_pixels;
            return Ok((det.detect_frame(frame)?, report));
        }

        let mut followed = Vec::new();
        for (face, seen, rect, scale) in follow {
            // (after a pan or zoom every face moved with the picture, whatever the mask says)
            let still = match &mask {
                Some(m) if seen && report.pan.is_none() && report.zoom.is_none() => !moved(m, rect)?,
                _ => false,
            };
            if still {
                // Nothing moved around it: the face is where it was (and a static picture
                // gives the same faces, frame after frame).
                followed.push(face.clone());
                report.kept += 1;
            } else {
                // Near first; the whole reach only where the face was not there.
                let near = follow_region(face, size, FOLLOW_REACH_NEAR).filter(|(r, _)| r != &rect);
                report.followed += 1;
                let mut found = Vec::new();
                for (k, (r, s)) in near.into_iter().chain(std::iter::once((rect, scale))).enumerate() {
                    report.widened += k;
                    found = det.detect_region(frame, r, s)?;
                    report.pixels += r[2] as f64 * r[3] as f64 * s * s;
                    if !found.is_empty() {
                        break;
                    }
                }
                // this face's re-detection: the one nearest where it was (anything else in
                // the region is the search's business, and a crop's edge can fool the
                // detector)
                let [x, y, w, h] = face.bbox;
                let d = |f: &Face| {
                    let [fx, fy, fw, fh] = f.bbox;
                    (fx + fw / 2.0 - x - w / 2.0).powi(2) + (fy + fh / 2.0 - y - h / 2.0).powi(2)
                };
                followed.extend(found.into_iter().min_by(|a, b| d(a).total_cmp(&d(b))));
            }
        }
        let followed = merge(followed, det.config().nms_threshold);

        let mut searched = Vec::new();
        // What a pan brought into view is new picture, searched once it is a band a few
        // blocks deep (paid at once: the budget is for a still camera's changes).
        if self.pan_acc.iter().any(|a| a.abs() >= PAN_BAND) {
            for r in layout.bands(self.pan_acc) {
                searched.extend(det.detect_region(frame, r.rect, r.scale)?);
                report.pixels += r.pixels();
            }
            self.pan_acc = [0.0; 2];
        }
        // A zoom changed every face's size: once by ZOOM_SWEEP, the whole frame waits again.
        if self.zoom_acc.ln().abs() >= ZOOM_SWEEP.ln() {
            for r in layout.regions.iter_mut() {
                r.dirty_since.get_or_insert(frame_no);
            }
            self.zoom_acc = 1.0;
        }
        // Where people are, more come: while a face was seen within the last
        // `sweep_frames` frames the search runs `busy_speedup` times faster.
        if !known.is_empty() {
            self.last_face = Some(frame_no);
        }
        let busy = self.last_face.is_some_and(|f| frame_no - f <= self.config.sweep_frames as u64);
        let sweep = if busy {
            (self.config.sweep_frames as f64 / self.config.busy_speedup.max(1.0)).max(1.0)
        } else {
            self.config.sweep_frames.max(1) as f64
        };
        self.credit = (self.credit + layout.full_pixels / sweep).min(layout.full_pixels);
        while self.credit > 0.0 {
            // Moving things first (oldest first), then the coarse pass and tiles.
            if let Some((r, blob)) = (!self.moving.is_empty()).then(|| self.moving.remove(0)) {
                let found = det.detect_region(frame, r.rect, r.scale)?;
                if found.is_empty() {
                    self.cleared.push(Cleared { rect: r.rect, blob, at: frame_no });
                }
                searched.extend(found);
                self.credit -= r.pixels();
                report.pixels += r.pixels();
                report.moving += 1;
                continue;
            }
            let next = (0..layout.regions.len())
                .filter_map(|i| layout.regions[i].dirty_since.map(|d| (d, i)))
                .min()
                .map(|(_, i)| i);
            let Some(i) = next else { break };
            let r = &mut layout.regions[i];
            searched.extend(det.detect_region(frame, r.rect, r.scale)?);
            r.dirty_since = None;
            self.credit -= r.pixels();
            report.pixels += r.pixels();
            report.examined.push(i);
        }
        // A known face keeps the detection of its own region (a face found at another
        // scale has another box: switching between them would make it jitter).
        let iou = det.config().nms_threshold;
        let mut faces = followed;
        let new: Vec<Face> =
            merge(searched, iou).into_iter().filter(|s| faces.iter().all(|f| f.iou(s) <= iou)).collect();
        faces.extend(new);
        Ok((det.rank(faces), report))
    }
}

/// The blocks of `thumb` that differ from `prev` (255) by more than [`MOTION_LEVEL`],
/// `prev` first moved by `shift` (thumbnail px), and how many blocks the shifted `prev`
/// does not cover (what a pan brought into view: left out of the mask, searched as bands).
fn changed_blocks(prev: &Mat, thumb: &Mat, shift: Option<[f64; 2]>) -> Result<(Mat, i32)> {
    let size = thumb.size()?;
    let mut moved = Mat::default();
    if let Some([dx, dy]) = shift {
        let t = Mat::from_slice_2d(&[[1.0f64, 0.0, dx], [0.0, 1.0, dy]])?;
        opencv::imgproc::warp_affine(
            prev,
            &mut moved,
            &t,
            size,
            opencv::imgproc::INTER_LINEAR,
            cv::BORDER_REPLICATE,
            cv::Scalar::default(),
        )?;
    }
    let mut diff = Mat::default();
    cv::absdiff(thumb, if shift.is_some() { &moved } else { prev }, &mut diff)?;
    let mut m = Mat::default();
    opencv::imgproc::threshold(&diff, &mut m, MOTION_LEVEL, 255.0, opencv::imgproc::THRESH_BINARY)?;
    let Some([dx, dy]) = shift else { return Ok((m, 0)) };
    // the strip the pan brought in (a block partly new counts as new)
    let (w, h) = (size.width, size.height);
    let (x0, x1) = (dx.ceil().clamp(0.0, w as f64) as i32, (w as f64 + dx).floor().clamp(0.0, w as f64) as i32);
    let (y0, y1) = (dy.ceil().clamp(0.0, h as f64) as i32, (h as f64 + dy).floor().clamp(0.0, h as f64) as i32);
    let mut seen = Mat::new_rows_cols_with_default(h, w, cv::CV_8U, cv::Scalar::all(0.0))?;
    if x1 > x0 && y1 > y0 {
        Mat::roi_mut(&mut seen, cv::Rect::new(x0, y0, x1 - x0, y1 - y0))?.set_to_def(&cv::Scalar::all(255.0))?;
    }
    let mut out = Mat::default();
    cv::bitwise_and_def(&m, &seen, &mut out)?;
    let fresh = w * h - cv::count_non_zero(&seen)?;
    Ok((out, fresh))
}

/// The global shift (thumbnail px, x and y) from `prev` to `thumb`, by phase correlation,
/// when its peak is confident; None for a cut or a picture without texture.
fn global_shift(prev: &Mat, thumb: &Mat) -> Result<Option<[f64; 2]>> {
    if thumb.rows() < 8 || thumb.cols() < 8 {
        return Ok(None);
    }
    let (mut a, mut b) = (Mat::default(), Mat::default());
    prev.convert_to(&mut a, cv::CV_64F, 1.0, 0.0)?;
    thumb.convert_to(&mut b, cv::CV_64F, 1.0, 0.0)?;
    let mut window = Mat::default();
    opencv::imgproc::create_hanning_window(&mut window, thumb.size()?, cv::CV_64F)?;
    let mut response = 0.0;
    let p = opencv::imgproc::phase_correlate(&a, &b, &window, Some(&mut response))?;
    Ok((response >= PAN_CONFIDENCE && p.x.abs() < thumb.cols() as f64 / 2.0 && p.y.abs() < thumb.rows() as f64 / 2.0)
        .then_some([p.x, p.y]))
}

/// The similarity (2x3, thumbnail px) that the corners of `prev` followed to `thumb`, and
/// its scale, when most corners agree on one whose scale is not 1 (a zoom).
fn global_similarity(prev: &Mat, thumb: &Mat) -> Result<Option<(Mat, f64)>> {
    use opencv::core::{Point2f, Size, TermCriteria, TermCriteria_Type, Vector};
    if thumb.rows() < 16 || thumb.cols() < 16 {
        return Ok(None);
    }
    let mut corners = Vector::<Point2f>::new();
    opencv::imgproc::good_features_to_track(prev, &mut corners, 200, 0.01, 3.0, &cv::no_array(), 3, false, 0.04)?;
    if corners.len() < 12 {
        return Ok(None);
    }
    let criteria = TermCriteria::new(TermCriteria_Type::COUNT as i32 + TermCriteria_Type::EPS as i32, 20, 0.01)?;
    let (mut to, mut status, mut err) = (Vector::<Point2f>::new(), Vector::<u8>::new(), Vector::<f32>::new());
    opencv::video::calc_optical_flow_pyr_lk(
        prev,
        thumb,
        &corners,
        &mut to,
        &mut status,
        &mut err,
        Size::new(9, 9),
        2,
        criteria,
        0,
        1e-4,
    )?;
    let (mut a, mut b) = (Vector::<Point2f>::new(), Vector::<Point2f>::new());
    for i in 0..corners.len() {
        if status.get(i)? == 1 {
            a.push(corners.get(i)?);
            b.push(to.get(i)?);
        }
    }
    if a.len() < 12 {
        return Ok(None);
    }
    let mut inliers = Vector::<u8>::new();
    let t = opencv::calib3d::estimate_affine_partial_2d(
        &a,
        &b,
        &mut inliers,
        opencv::calib3d::RANSAC,
        0.5,
        2000,
        0.99,
        10,
    )?;
    if t.empty() || (inliers.iter().filter(|&i| i != 0).count() as f64) < ZOOM_INLIERS * a.len() as f64 {
        return Ok(None);
    }
    let (c, s) = (*t.at_2d::<f64>(0, 0)?, *t.at_2d::<f64>(1, 0)?);
    let scale = c.hypot(s);
    Ok(((scale - 1.0).abs() > ZOOM_MIN && s.atan2(c).abs() < 0.05).then_some((t, scale)))
}

/// The blocks of `thumb` that differ from `prev` moved by the similarity `t`, and the
/// blocks `prev` moved by `t` does not cover (what a zoom-out brought into view).
fn changed_after(prev: &Mat, thumb: &Mat, t: &Mat) -> Result<(Mat, Mat)> {
    use opencv::core::Size;
    let size = thumb.size()?;
    let (mut moved, mut diff, mut m) = (Mat::default(), Mat::default(), Mat::default());
    let border = cv::BORDER_REPLICATE;
    opencv::imgproc::warp_affine(
        prev,
        &mut moved,
        t,
        size,
        opencv::imgproc::INTER_LINEAR,
        border,
        cv::Scalar::default(),
    )?;
    // Resampling the block means for a scale leaves an error at sharp edges that a
    // shift's does not; both sides smoothed alike keep it under the motion level.
    let (mut a, mut b) = (Mat::default(), Mat::default());
    opencv::imgproc::gaussian_blur_def(thumb, &mut a, Size::new(3, 3), 0.0)?;
    opencv::imgproc::gaussian_blur_def(&moved, &mut b, Size::new(3, 3), 0.0)?;
    cv::absdiff(&a, &b, &mut diff)?;
    opencv::imgproc::threshold(&diff, &mut m, MOTION_LEVEL, 255.0, opencv::imgproc::THRESH_BINARY)?;
    let all = Mat::new_rows_cols_with_default(size.height, size.width, cv::CV_8U, cv::Scalar::all(255.0))?;
    let mut covered = Mat::default();
    let none = cv::BORDER_CONSTANT;
    opencv::imgproc::warp_affine(
        &all,
        &mut covered,
        t,
        size,
        opencv::imgproc::INTER_LINEAR,
        none,
        cv::Scalar::default(),
    )?;
    // a block partly new counts as new
    let mut fresh = Mat::default();
    opencv::imgproc::threshold(&covered, &mut fresh, 254.0, 255.0, opencv::imgproc::THRESH_BINARY_INV)?;
    let mut old = Mat::default();
    cv::bitwise_not_def(&fresh, &mut old)?;
    let mut movers = Mat::default();
    cv::bitwise_and(&m, &old, &mut movers, &cv::no_array())?;
    Ok((movers, fresh))
}

/// Queues `r`, merged with any queued region it overlaps (the union keeps the older
/// mark: a thing that keeps moving is not pushed back in the queue).
fn add_moving(queue: &mut Vec<(Region, (i32, i32))>, mut r: Region, mut blob: (i32, i32)) {
    while let Some(i) = queue.iter().position(|(q, _)| overlaps(q.rect, r.rect)) {
        let (q, b) = queue.remove(i);
        blob = (blob.0.max(b.0), blob.1.max(b.1));
        let [ax, ay, aw, ah] = q.rect;
        let [bx, by, bw, bh] = r.rect;
        let (x0, y0) = (ax.min(bx), ay.min(by));
        let (x1, y1) = ((ax + aw).max(bx + bw), (ay + ah).max(by + bh));
        r.rect = [x0, y0, x1 - x0, y1 - y0];
        r.dirty_since = q.dirty_since.min(r.dirty_since);
    }
    let at = queue.partition_point(|(q, _)| q.dirty_since <= r.dirty_since);
    queue.insert(at, (r, blob));
}

/// Whether rectangle `a` lies within `b`.
fn inside(a: [i32; 4], b: [i32; 4]) -> bool {
    a[0] >= b[0] && a[1] >= b[1] && a[0] + a[2] <= b[0] + b[2] && a[1] + a[3] <= b[1] + b[3]
}

fn overlaps(a: [i32; 4], b: [i32; 4]) -> bool {
    a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3]
}

/// Whether any thumbnail block inside the frame rectangle `rect` changed.
fn moved(mask: &Mat, rect: [i32; 4]) -> Result<bool> {
    let [x, y, w, h] = rect;
    let (x0, y0) = ((x / THUMB).min(mask.cols() - 1), (y / THUMB).min(mask.rows() - 1));
    let x1 = ((x + w + THUMB - 1) / THUMB).clamp(x0 + 1, mask.cols());
    let y1 = ((y + h + THUMB - 1) / THUMB).clamp(y0 + 1, mask.rows());
    let roi = Mat::roi(mask, cv::Rect::new(x0, y0, x1 - x0, y1 - y0))?;
    Ok(cv::count_non_zero(&roi)? > 0)
}

/// The region around a known face that its re-detection examines (`2 reach` times its
/// size, inside the frame) and the scale that brings the face to [`FOLLOW_FACE`] px.
pub fn follow_region(f: &Face, (w, h): (i32, i32), reach: f64) -> Option<([i32; 4], f64)> {
    let side = f.bbox[2].max(f.bbox[3]) as f64;
    if side < 1.0 {
        return None;
    }
    let (cx, cy) = (f.bbox[0] as f64 + f.bbox[2] as f64 / 2.0, f.bbox[1] as f64 + f.bbox[3] as f64 / 2.0);
    let reach = side * reach;
    let x0 = ((cx - reach).floor() as i32).clamp(0, w);
    let y0 = ((cy - reach).floor() as i32).clamp(0, h);
    let x1 = ((cx + reach).ceil() as i32).clamp(0, w);
    let y1 = ((cy + reach).ceil() as i32).clamp(0, h);
    if x1 - x0 < 2 || y1 - y0 < 2 {
        return None;
    }
    let scale = (FOLLOW_FACE / side).min(MAX_FOLLOW_SCALE);
    Some(([x0, y0, x1 - x0, y1 - y0], scale))
}

/// One face per place: of boxes overlapping by more than `iou`, the best-scoring stays
/// (the same face found by its re-detection and a search pass, or in two tiles).
fn merge(mut faces: Vec<Face>, iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::with_capacity(faces.len());
    for f in faces {
        if kept.iter().all(|k| k.iou(&f) <= iou) {
            kept.push(f);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_best_of_overlapping_boxes() {
        let a = Face::from_box([0.0, 0.0, 40.0, 40.0], 0.9);
        let b = Face::from_box([2.0, 2.0, 40.0, 40.0], 0.95);
        let c = Face::from_box([100.0, 0.0, 40.0, 40.0], 0.5);
        let m = merge(vec![a, b.clone(), c.clone()], 0.3);
        assert_eq!(m, vec![b, c]);
    }

    #[test]
    fn follow_regions_are_one_and_a_half_and_two_faces_inside_the_frame() {
        let f = Face::from_box([100.0, 100.0, 50.0, 50.0], 0.9);
        let (r, s) = follow_region(&f, (640, 360), FOLLOW_REACH_NEAR).unwrap();
        assert_eq!(r, [87, 87, 76, 76]);
        assert_eq!(follow_region(&f, (640, 360), FOLLOW_REACH).unwrap().0, [75, 75, 100, 100]);
        assert!(s > 1.0, "a 50 px face is enlarged to {FOLLOW_FACE} px");
        assert!((s - FOLLOW_FACE / 50.0).abs() < 1e-9);
        // At the corner, clipped; a tiny face is enlarged at most MAX_FOLLOW_SCALE times.
        let g = Face::from_box([0.0, 0.0, 4.0, 4.0], 0.9);
        let (r, s) = follow_region(&g, (640, 360), FOLLOW_REACH_NEAR).unwrap();
        assert_eq!(r, [0, 0, 5, 5]);
        assert_eq!(s, MAX_FOLLOW_SCALE);
        assert!(follow_region(&Face::from_box([700.0, 0.0, 10.0, 10.0], 0.9), (640, 360), FOLLOW_REACH).is_none());
    }
}
