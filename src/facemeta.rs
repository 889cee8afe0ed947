//! The contract between the elements: how a face travels on a buffer. The plugin attaches
//! one region-of-interest meta of type [`ROI_TYPE`] per face, with a parameter structure
//! named [`PARAM`] carrying what the rectangle cannot (sub-pixel box, 5 landmarks or 2 eyes,
//! score, track id, the model that restored it). Every element reads and writes faces
//! through this one definition; the plugin only maps it onto GStreamer's types.
//!
//! The structure's `bbox`, `landmarks` and `eyes` are relative to the ROI rectangle
//! ([`Relative`]): a point is `[(x - rect.x) / rect.w, (y - rect.y) / rect.h]` (a box
//! `[x, y, w, h]` the same, with `w / rect.w`, `h / rect.h`), so they follow the rectangle
//! wherever an element moves or rescales it.
//!
//! Rescaling elements keep the rectangle but not always the structure (`videoscale` of
//! GStreamer 1.22 drops ROI parameters when it scales), so each landmark (eye) is also a
//! zero-size ROI of type [`LANDMARK_TYPE`] ([`EYE_TYPE`]) at its pixel, its id the point's
//! index and its parent id the face ROI's id: rectangles every version rescales. Faces
//! whose structure is gone get their points from those ([`points`]), to within a pixel.

use crate::detect::Face;

/// The ROI type of a face.
pub const ROI_TYPE: &str = "face";
/// A face's landmark as a zero-size ROI (id: index 0..5, parent id: the face ROI's id).
pub const LANDMARK_TYPE: &str = "face-landmark";
/// A face's eye (Haar) as a zero-size ROI (id: 0 left, 1 right; parent id: the face's).
pub const EYE_TYPE: &str = "face-eye";
/// Every ROI type a face brings (removed together).
pub const ALL_TYPES: [&str; 3] = [ROI_TYPE, LANDMARK_TYPE, EYE_TYPE];
/// The name of a face ROI's parameter structure; its fields follow.
pub const PARAM: &str = "face";
/// Detector score (double).
pub const SCORE: &str = "score";
/// Track id (u64; 0: untracked).
pub const ID: &str = "id";
/// Sub-pixel box, relative to the rectangle (4 doubles).
pub const BBOX: &str = "bbox";
/// 5 landmarks, relative (10 doubles: x, y of each).
pub const LANDMARKS: &str = "landmarks";
/// 2 eyes, relative (4 doubles).
pub const EYES: &str = "eyes";
/// The model that restored the face (string; absent: not restored).
pub const MODEL: &str = "model";

/// An ROI rectangle in pixels: x, y, width, height.
pub type Rect = (u32, u32, u32, u32);

/// The ROI rectangle of `face` in a `width` x `height` frame: its box clipped to the frame.
pub fn rect_of(face: &Face, width: u32, height: u32) -> Rect {
    let [x, y, w, h] = face.bbox;
    let x0 = x.max(0.0).min(width as f32);
    let y0 = y.max(0.0).min(height as f32);
    let x1 = (x + w).max(0.0).min(width as f32);
    let y1 = (y + h).max(0.0).min(height as f32);
    (x0 as u32, y0 as u32, (x1 - x0).round() as u32, (y1 - y0).round() as u32)
}

/// The id a face ROI carries (ROI ids are 32-bit).
pub fn roi_id(face: &Face) -> i32 {
    face.id.min(i32::MAX as u64) as i32
}

/// Frame coordinates <-> fractions of an ROI rectangle (a degenerate side counts as 1 px,
/// so a face clipped to nothing still round-trips).
pub struct Relative {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

impl Relative {
    pub fn of((x, y, w, h): Rect) -> Self {
        Self { x: x as f32, y: y as f32, w: w.max(1) as f32, h: h.max(1) as f32 }
    }

    pub fn point_to(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [(x - self.x) / self.w, (y - self.y) / self.h]
    }

    pub fn point_from(&self, [u, v]: [f32; 2]) -> [f32; 2] {
        [self.x + u * self.w, self.y + v * self.h]
    }

    pub fn bbox_to(&self, [x, y, w, h]: [f32; 4]) -> [f32; 4] {
        let [u, v] = self.point_to([x, y]);
        [u, v, w / self.w, h / self.h]
    }

    pub fn bbox_from(&self, [u, v, w, h]: [f32; 4]) -> [f32; 4] {
        let [x, y] = self.point_from([u, v]);
        [x, y, w * self.w, h * self.h]
    }
}

/// What a face's parameter structure holds, relative to its rectangle.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub score: f32,
    pub id: u64,
    pub bbox: [f32; 4],
    pub landmarks: Option<Vec<f32>>,
    pub eyes: Option<Vec<f32>>,
}

impl Params {
    /// `face` relative to its ROI rectangle `rect`.
    pub fn of(face: &Face, rect: Rect) -> Self {
        let r = Relative::of(rect);
        Self {
            score: face.score,
            id: face.id,
            bbox: r.bbox_to(face.bbox),
            landmarks: face.landmarks.map(|l| l.iter().flat_map(|&p| r.point_to(p)).collect()),
            eyes: face.eyes.map(|e| e.iter().flat_map(|&p| r.point_to(p)).collect()),
        }
    }

    /// Puts what the structure holds on `face`, whose ROI rectangle is (now) `rect`.
    /// Points of the wrong count are ignored.
    pub fn apply(&self, face: &mut Face, rect: Rect) {
        let r = Relative::of(rect);
        let p = |v: &[f32]| r.point_from([v[0], v[1]]);
        face.score = self.score;
        face.id = self.id;
        face.bbox = r.bbox_from(self.bbox);
        face.landmarks = self
            .landmarks
            .as_deref()
            .filter(|v| v.len() == 10)
            .map(|v| [p(&v[0..]), p(&v[2..]), p(&v[4..]), p(&v[6..]), p(&v[8..])]);
        face.eyes = self.eyes.as_deref().filter(|v| v.len() == 4).map(|v| [p(&v[0..]), p(&v[2..])]);
    }
}

/// Whether every point has a pixel in a `width` x `height` frame to stand on as a
/// zero-size ROI (a face's points go out as ROIs all or none).
pub fn points_inside(points: &[[f32; 2]], width: u32, height: u32) -> bool {
    points.iter().all(|&[x, y]| x >= 0.0 && y >= 0.0 && x < width as f32 && y < height as f32)
}

/// The zero-size ROI rectangle of a point (the pixel it lies in).
pub fn point_rect([x, y]: [f32; 2]) -> Rect {
    (x as u32, y as u32, 0, 0)
}

/// An ROI as [`points`] looks at it: type, id, parent id, rectangle.
pub type Roi<'a> = (&'a str, i32, i32, Rect);

/// The points of `kind` under the face ROI `parent` (`n` of them, pixel centres), if the
/// ROIs hold them all and `parent` names one face only.
pub fn points(rois: &[Roi], kind: &str, parent: i32, n: usize) -> Option<Vec<[f32; 2]>> {
    if rois.iter().filter(|r| r.0 == ROI_TYPE && r.1 == parent).count() != 1 {
        return None;
    }
    let mut found: Vec<(i32, [f32; 2])> = rois
        .iter()
        .filter(|r| r.0 == kind && r.2 == parent)
        .map(|r| (r.1, [r.3 .0 as f32 + 0.5, r.3 .1 as f32 + 0.5]))
        .collect();
    found.sort_by_key(|p| p.0);
    let in_order = found.len() == n && found.iter().enumerate().all(|(k, p)| p.0 == k as i32);
    in_order.then(|| found.into_iter().map(|p| p.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_through_a_rescaled_rectangle() {
        let mut f = Face::from_box([100.4, 50.6, 80.2, 90.7], 0.9);
        f.id = 7;
        f.landmarks = Some([[120.5, 80.25], [160.0, 81.0], [140.0, 100.0], [125.0, 120.0], [155.0, 121.0]]);
        let rect = rect_of(&f, 640, 480);
        assert_eq!(rect, (100, 50, 80, 91));
        let p = Params::of(&f, rect);
        assert!((p.landmarks.as_ref().unwrap()[0] - 20.5 / 80.0).abs() < 1e-6);
        let mut back = Face::from_box([0.0; 4], 0.0);
        // the rectangle at half size: every point follows it
        p.apply(&mut back, (50, 25, 40, 45));
        let lm = back.landmarks.unwrap();
        assert!((lm[0][0] - 60.25).abs() < 1.0 && (lm[0][1] - 40.125).abs() < 1.0, "{lm:?}");
        assert_eq!((back.id, back.score), (7, 0.9));
        assert!(back.eyes.is_none());
    }

    #[test]
    fn points_need_all_of_them_in_order_under_one_face() {
        let rois: Vec<Roi> = vec![
            (ROI_TYPE, 3, 0, (10, 10, 50, 50)),
            (EYE_TYPE, 1, 3, (40, 20, 0, 0)),
            (EYE_TYPE, 0, 3, (20, 20, 0, 0)),
        ];
        assert_eq!(points(&rois, EYE_TYPE, 3, 2), Some(vec![[20.5, 20.5], [40.5, 20.5]]));
        assert_eq!(points(&rois, LANDMARK_TYPE, 3, 5), None, "none of that kind");
        assert_eq!(points(&rois[..2], EYE_TYPE, 3, 2), None, "one missing");
        let twice: Vec<Roi> = [rois.clone(), vec![(ROI_TYPE, 3, 0, (0, 0, 5, 5))]].concat();
        assert_eq!(points(&twice, EYE_TYPE, 3, 2), None, "two faces with one id");
    }
}
