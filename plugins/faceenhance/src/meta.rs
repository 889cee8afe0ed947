//! Faces on buffers: one `GstVideoRegionOfInterestMeta` of type `face` per face, with a
//! `face` parameter structure carrying what the rectangle cannot (sub-pixel box, 5
//! landmarks or 2 eyes, score, track id). Other elements (and `tee` branches) can read
//! the plain rectangles; our elements read the whole face back.
//!
//! The structure's `bbox`, `landmarks` and `eyes` are relative to the ROI rectangle: a
//! point is `[(x - rect.x) / rect.w, (y - rect.y) / rect.h]` (a box `[x, y, w, h]` the
//! same, with `w / rect.w`, `h / rect.h`), so they follow the rectangle wherever an
//! element moves or rescales it.
//!
//! Rescaling elements keep the rectangle but not always the structure (`videoscale` of
//! GStreamer 1.22 drops ROI parameters when it scales), so each landmark (eye) is also a
//! zero-size ROI of type `face-landmark` (`face-eye`) at its pixel, its id the landmark's
//! index and its parent id the face ROI's id: rectangles every version rescales. Faces
//! whose structure is gone get their points from those, to within a pixel or so.
use std::ops::ControlFlow;

use faceenhance::Face;
use gst_video::VideoRegionOfInterestMeta;

pub const ROI_TYPE: &str = "face";
/// A face's landmark as a zero-size ROI (id: index 0..5, parent id: the face ROI's id).
pub const LANDMARK_TYPE: &str = "face-landmark";
/// A face's eye (Haar) as a zero-size ROI (id: 0 left, 1 right; parent id: the face's).
pub const EYE_TYPE: &str = "face-eye";

fn array(values: impl IntoIterator<Item = f32>) -> gst::Array {
    gst::Array::new(values.into_iter().map(|v| v as f64))
}

fn floats(s: &gst::StructureRef, field: &str) -> Option<Vec<f32>> {
    let arr = s.get::<gst::Array>(field).ok()?;
    arr.iter().map(|v| v.get::<f64>().ok().map(|f| f as f32)).collect()
}

/// Frame coordinates <-> fractions of an ROI rectangle (a degenerate side counts as 1 px,
/// so a face clipped to nothing still round-trips).
struct Relative {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

impl Relative {
    fn of((x, y, w, h): (u32, u32, u32, u32)) -> Self {
        Self { x: x as f32, y: y as f32, w: w.max(1) as f32, h: h.max(1) as f32 }
    }

    fn point_to(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [(x - self.x) / self.w, (y - self.y) / self.h]
    }

    fn point_from(&self, [u, v]: [f32; 2]) -> [f32; 2] {
        [self.x + u * self.w, self.y + v * self.h]
    }

    fn bbox_to(&self, [x, y, w, h]: [f32; 4]) -> [f32; 4] {
        let [u, v] = self.point_to([x, y]);
        [u, v, w / self.w, h / self.h]
    }

    fn bbox_from(&self, [u, v, w, h]: [f32; 4]) -> [f32; 4] {
        let [x, y] = self.point_from([u, v]);
        [x, y, w * self.w, h * self.h]
    }
}

/// Replaces the buffer's face metas with `faces`. Rectangles are clipped to the frame.
pub fn attach(buf: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32) {
    attach_labelled(buf, faces, width, height, &[]);
}

/// [`attach`], with the name of the model that restored each face (`models[i]`, if any)
/// in the parameter structure.
pub fn attach_labelled(buf: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32, models: &[Option<&str>]) {
    remove(buf);
    for (i, f) in faces.iter().enumerate() {
        let [x, y, w, h] = f.bbox;
        let x0 = x.max(0.0).min(width as f32);
        let y0 = y.max(0.0).min(height as f32);
        let x1 = (x + w).max(0.0).min(width as f32);
        let y1 = (y + h).max(0.0).min(height as f32);
        let rect = (x0 as u32, y0 as u32, (x1 - x0).round() as u32, (y1 - y0).round() as u32);
        let id = f.id.min(i32::MAX as u64) as i32;
        let mut meta = VideoRegionOfInterestMeta::add(buf, ROI_TYPE, rect);
        meta.set_id(id);
        let frame = Relative::of(rect);
        let mut s = gst::Structure::builder("face")
            .field("score", f.score as f64)
            .field("id", f.id)
            .field("bbox", array(frame.bbox_to(f.bbox)))
            .build();
        if let Some(lm) = &f.landmarks {
            s.set("landmarks", array(lm.iter().flat_map(|&p| frame.point_to(p))));
        }
        if let Some(eyes) = &f.eyes {
            s.set("eyes", array(eyes.iter().flat_map(|&p| frame.point_to(p))));
        }
        if let Some(Some(model)) = models.get(i) {
            s.set("model", *model);
        }
        meta.add_param(s);
        if let Some(lm) = &f.landmarks {
            add_points(buf, LANDMARK_TYPE, id, lm, width, height);
        }
        if let Some(eyes) = &f.eyes {
            add_points(buf, EYE_TYPE, id, eyes, width, height);
        }
    }
}

/// `points` as zero-size ROIs of `kind` under the face ROI `parent`, at the pixel each
/// lies in; none when one lies outside the frame (no pixel to stand on).
fn add_points(buf: &mut gst::BufferRef, kind: &str, parent: i32, points: &[[f32; 2]], width: u32, height: u32) {
    let inside = |&[x, y]: &[f32; 2]| x >= 0.0 && y >= 0.0 && x < width as f32 && y < height as f32;
    if !points.iter().all(inside) {
        return;
    }
    for (k, &[x, y]) in points.iter().enumerate() {
        let mut m = VideoRegionOfInterestMeta::add(buf, kind, (x as u32, y as u32, 0, 0));
        m.set_id(k as i32);
        m.set_parent_id(parent);
    }
}

/// An ROI meta as [`points`] looks at it: type, id, parent id, rectangle.
type Roi<'a> = (&'a str, i32, i32, (u32, u32, u32, u32));

/// The points of `kind` under the face ROI `parent` (`n` of them, pixel centres), if the
/// buffer has them all and `parent` names one face only.
fn points(rois: &[Roi], kind: &str, parent: i32, n: usize) -> Option<Vec<[f32; 2]>> {
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

/// Removes every face meta (and its landmark and eye ROIs) from the buffer.
pub fn remove(buf: &mut gst::BufferRef) {
    buf.foreach_meta_mut(|mut meta| {
        let is_face = meta
            .downcast_ref::<VideoRegionOfInterestMeta>()
            .is_some_and(|m| [ROI_TYPE, LANDMARK_TYPE, EYE_TYPE].contains(&m.roi_type()));
        ControlFlow::Continue(if is_face {
            gst::buffer::BufferMetaForeachAction::Remove
        } else {
            gst::buffer::BufferMetaForeachAction::Keep
        })
    });
}

/// For each face [`read`] returns, the model `facerestore` restored it with, if any.
pub fn models(buf: &gst::BufferRef) -> Vec<Option<String>> {
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == ROI_TYPE)
        .map(|m| m.param("face").and_then(|p| p.get::<String>("model").ok()))
        .collect()
}

/// The faces on a buffer, as `facedetector` attached them (or from bare rectangles).
pub fn read(buf: &gst::BufferRef) -> Vec<Face> {
    let rois: Vec<Roi> =
        buf.iter_meta::<VideoRegionOfInterestMeta>().map(|m| (m.roi_type(), m.id(), m.parent_id(), m.rect())).collect();
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == ROI_TYPE)
        .map(|m| {
            let (x, y, w, h) = m.rect();
            let mut face = Face::from_box([x as f32, y as f32, w as f32, h as f32], 1.0);
            face.id = m.id().max(0) as u64;
            if let Some(p) = m.param("face") {
                let frame = Relative::of(m.rect());
                let point = |v: &[f32]| frame.point_from([v[0], v[1]]);
                face.score = p.get::<f64>("score").map(|v| v as f32).unwrap_or(1.0);
                face.id = p.get::<u64>("id").unwrap_or(face.id);
                if let Some(b) = floats(p, "bbox").filter(|v| v.len() == 4) {
                    face.bbox = frame.bbox_from([b[0], b[1], b[2], b[3]]);
                }
                face.landmarks = floats(p, "landmarks")
                    .filter(|v| v.len() == 10)
                    .map(|v| [point(&v[0..]), point(&v[2..]), point(&v[4..]), point(&v[6..]), point(&v[8..])]);
                face.eyes = floats(p, "eyes").filter(|v| v.len() == 4).map(|v| [point(&v[0..]), point(&v[2..])]);
            }
            // The structure was dropped on the way (a scaling element): the point ROIs.
            if face.landmarks.is_none() {
                face.landmarks = points(&rois, LANDMARK_TYPE, m.id(), 5).map(|p| [p[0], p[1], p[2], p[3], p[4]]);
            }
            if face.eyes.is_none() {
                face.eyes = points(&rois, EYE_TYPE, m.id(), 2).map(|p| [p[0], p[1]]);
            }
            face
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> Face {
        let mut f = Face::from_box([100.4, 50.6, 80.2, 90.7], 0.9);
        f.id = 7;
        f.landmarks = Some([[120.5, 80.25], [160.0, 81.0], [140.0, 100.0], [125.0, 120.0], [155.0, 121.0]]);
        f.eyes = Some([[120.5, 80.25], [160.0, 81.0]]);
        f
    }

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn faces_round_trip_and_points_are_stored_relative_to_the_rectangle() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let f = face();
        attach(buf.get_mut().unwrap(), std::slice::from_ref(&f), 640, 480);
        let back = read(&buf);
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert_eq!((b.id, b.score), (7, 0.9));
        assert!(close(&b.bbox, &f.bbox, 1e-3), "{:?}", b.bbox);
        let flat = |l: &[[f32; 2]]| l.iter().flatten().copied().collect::<Vec<f32>>();
        assert!(close(&flat(&b.landmarks.unwrap()), &flat(&f.landmarks.unwrap()), 1e-3));
        assert!(close(&flat(&b.eyes.unwrap()), &flat(&f.eyes.unwrap()), 1e-3));
        // The rectangle is (100, 50, 80, 91): the first landmark is at (20.5 / 80, 30.25 / 91).
        let m = buf.iter_meta::<VideoRegionOfInterestMeta>().next().unwrap();
        assert_eq!(m.rect(), (100, 50, 80, 91));
        let lm = floats(m.param("face").unwrap(), "landmarks").unwrap();
        assert!(close(&lm[..2], &[20.5 / 80.0, 30.25 / 91.0], 1e-6), "{lm:?}");
    }

    #[test]
    fn without_the_structure_the_points_come_from_their_rois() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let mut other = face();
        other.id = 8;
        other.landmarks = other.landmarks.map(|l| l.map(|[x, y]| [x + 300.0, y + 200.0]));
        attach(buf.get_mut().unwrap(), &[face(), other.clone()], 640, 480);
        // What GStreamer 1.22's videoscale leaves of a face: the rectangles, ids and parents.
        let mut bare = gst::Buffer::new();
        for m in buf.iter_meta::<VideoRegionOfInterestMeta>() {
            let mut b = VideoRegionOfInterestMeta::add(bare.get_mut().unwrap(), m.roi_type(), m.rect());
            b.set_id(m.id());
            b.set_parent_id(m.parent_id());
        }
        let faces = read(&bare);
        assert_eq!(faces.len(), 2);
        for want in [face(), other] {
            let got = faces.iter().find(|f| f.id == want.id).unwrap();
            let (g, w) = (got.landmarks.unwrap(), want.landmarks.unwrap());
            assert!(g.iter().zip(&w).all(|(p, q)| (p[0] - q[0]).abs() <= 0.5 && (p[1] - q[1]).abs() <= 0.5), "{g:?}");
            assert!(got.eyes.is_some(), "eyes from their ROIs");
        }
        remove(bare.get_mut().unwrap());
        assert_eq!(bare.iter_meta::<VideoRegionOfInterestMeta>().count(), 0, "landmark ROIs removed with the faces");
    }

    #[test]
    fn points_follow_a_moved_rectangle() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        attach(buf.get_mut().unwrap(), &[face()], 640, 480);
        // What videoscale does to the rectangle at half the size.
        buf.get_mut().unwrap().meta_mut::<VideoRegionOfInterestMeta>().unwrap().set_rect((50, 25, 40, 45));
        let lm = read(&buf)[0].landmarks.unwrap();
        // (120.5, 80.25) at half size, up to the rectangle's rounding (half a pixel per side).
        assert!((lm[0][0] - 60.25).abs() < 1.0 && (lm[0][1] - 40.125).abs() < 1.0, "{lm:?}");
    }
}
