//! Stable face ids across frames: greedy IoU matching of this frame's detections to the
//! last known boxes. (Tracking between detections and landmark smoothing build on this.)

use crate::detect::Face;

struct Track {
    id: u64,
    face: Face,
    missed: u32,
}

pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    iou_threshold: f32,
    max_missed: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new(0.3, 5)
    }
}

impl Tracker {
    pub fn new(iou_threshold: f32, max_missed: u32) -> Self {
        Self { tracks: Vec::new(), next_id: 1, iou_threshold, max_missed }
    }

    /// Gives every face an id: the id of the track it overlaps most (best pairs first),
    /// or a new one. Tracks unseen for `max_missed` updates are forgotten.
    pub fn update(&mut self, faces: &mut [Face]) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (fi, f) in faces.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let iou = f.iou(&t.face);
                if iou >= self.iou_threshold {
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
        for (fi, f) in faces.iter_mut().enumerate() {
            match face_track[fi] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    f.id = t.id;
                    t.face = f.clone();
                    t.missed = 0;
                }
                None => {
                    f.id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track { id: f.id, face: f.clone(), missed: 0 });
                }
            }
        }
        let max = self.max_missed;
        self.tracks.retain(|t| t.missed <= max);
    }

    pub fn reset(&mut self) {
        self.tracks.clear();
    }
}
