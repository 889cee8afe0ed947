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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f32) -> Face {
        Face::from_box([x, 10.0, 40.0, 40.0], 0.9)
    }

    #[test]
    fn ids_follow_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::default();
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
        let mut t = Tracker::new(0.3, 1);
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
}
