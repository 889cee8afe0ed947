//! Faces on buffers: the core's contract (`faceenhance::facemeta`: ROI types, the parameter
//! structure's fields, coordinates relative to the rectangle, landmark ROIs for elements
//! that drop the structure) mapped onto `GstVideoRegionOfInterestMeta`.
use std::ops::ControlFlow;

use faceenhance::facemeta::{self, Params, Roi, EYE_TYPE, LANDMARK_TYPE, ROI_TYPE};
use faceenhance::Face;
use gst_video::VideoRegionOfInterestMeta;

fn array(values: impl IntoIterator<Item = f32>) -> gst::Array {
    gst::Array::new(values.into_iter().map(|v| v as f64))
}

fn floats(s: &gst::StructureRef, field: &str) -> Option<Vec<f32>> {
    let arr = s.get::<gst::Array>(field).ok()?;
    arr.iter().map(|v| v.get::<f64>().ok().map(|f| f as f32)).collect()
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
        let rect = facemeta::rect_of(f, width, height);
        let id = facemeta::roi_id(f);
        let mut meta = VideoRegionOfInterestMeta::add(buf, ROI_TYPE, rect);
        meta.set_id(id);
        let p = Params::of(f, rect);
        let mut s = gst::Structure::builder(facemeta::PARAM)
            .field(facemeta::SCORE, p.score as f64)
            .field(facemeta::ID, p.id)
            .field(facemeta::BBOX, array(p.bbox))
            .build();
        if let Some(lm) = p.landmarks {
            s.set(facemeta::LANDMARKS, array(lm));
        }
        if let Some(eyes) = p.eyes {
            s.set(facemeta::EYES, array(eyes));
        }
        if let Some(Some(model)) = models.get(i) {
            s.set(facemeta::MODEL, *model);
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

/// `points` as zero-size ROIs of `kind` under the face ROI `parent`; none when one lies
/// outside the frame.
fn add_points(buf: &mut gst::BufferRef, kind: &str, parent: i32, points: &[[f32; 2]], width: u32, height: u32) {
    if !facemeta::points_inside(points, width, height) {
        return;
    }
    for (k, &p) in points.iter().enumerate() {
        let mut m = VideoRegionOfInterestMeta::add(buf, kind, facemeta::point_rect(p));
        m.set_id(k as i32);
        m.set_parent_id(parent);
    }
}

/// Removes every face meta (and its landmark and eye ROIs) from the buffer.
pub fn remove(buf: &mut gst::BufferRef) {
    buf.foreach_meta_mut(|mut meta| {
        let is_face = meta
            .downcast_ref::<VideoRegionOfInterestMeta>()
            .is_some_and(|m| facemeta::ALL_TYPES.contains(&m.roi_type()));
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
        .map(|m| m.param(facemeta::PARAM).and_then(|p| p.get::<String>(facemeta::MODEL).ok()))
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
            if let Some(p) = m.param(facemeta::PARAM) {
                let params = Params {
                    score: p.get::<f64>(facemeta::SCORE).map(|v| v as f32).unwrap_or(1.0),
                    id: p.get::<u64>(facemeta::ID).unwrap_or(face.id),
                    bbox: floats(p, facemeta::BBOX)
                        .filter(|v| v.len() == 4)
                        .map(|b| [b[0], b[1], b[2], b[3]])
                        .unwrap_or([0.0, 0.0, 1.0, 1.0]),
                    landmarks: floats(p, facemeta::LANDMARKS),
                    eyes: floats(p, facemeta::EYES),
                };
                params.apply(&mut face, m.rect());
            }
            // The structure was dropped on the way (a scaling element): the point ROIs.
            if face.landmarks.is_none() {
                face.landmarks =
                    facemeta::points(&rois, LANDMARK_TYPE, m.id(), 5).map(|p| [p[0], p[1], p[2], p[3], p[4]]);
            }
            if face.eyes.is_none() {
                face.eyes = facemeta::points(&rois, EYE_TYPE, m.id(), 2).map(|p| [p[0], p[1]]);
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
