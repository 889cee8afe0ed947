//! Faces on buffers: one `GstVideoRegionOfInterestMeta` of type `face` per face, with a
//! `face` parameter structure carrying what the rectangle cannot (sub-pixel box, 5
//! landmarks or 2 eyes, score, track id). Other elements (and `tee` branches) can read
//! the plain rectangles; our elements read the whole face back.

use std::ops::ControlFlow;

use faceenhance::Face;
use gst_video::VideoRegionOfInterestMeta;

pub const ROI_TYPE: &str = "face";

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
        let [x, y, w, h] = f.bbox;
        let x0 = x.max(0.0).min(width as f32);
        let y0 = y.max(0.0).min(height as f32);
        let x1 = (x + w).max(0.0).min(width as f32);
        let y1 = (y + h).max(0.0).min(height as f32);
        let rect = (x0 as u32, y0 as u32, (x1 - x0).round() as u32, (y1 - y0).round() as u32);
        let mut meta = VideoRegionOfInterestMeta::add(buf, ROI_TYPE, rect);
        meta.set_id(f.id.min(i32::MAX as u64) as i32);
        let mut s = gst::Structure::builder("face")
            .field("score", f.score as f64)
            .field("id", f.id)
            .field("bbox", array(f.bbox))
            .build();
        if let Some(lm) = &f.landmarks {
            s.set("landmarks", array(lm.iter().flatten().copied()));
        }
        if let Some(eyes) = &f.eyes {
            s.set("eyes", array(eyes.iter().flatten().copied()));
        }
        if let Some(Some(model)) = models.get(i) {
            s.set("model", *model);
        }
        meta.add_param(s);
    }
}

/// Removes every face meta from the buffer.
pub fn remove(buf: &mut gst::BufferRef) {
    buf.foreach_meta_mut(|mut meta| {
        let is_face = meta.downcast_ref::<VideoRegionOfInterestMeta>().is_some_and(|m| m.roi_type() == ROI_TYPE);
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
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == ROI_TYPE)
        .map(|m| {
            let (x, y, w, h) = m.rect();
            let mut face = Face::from_box([x as f32, y as f32, w as f32, h as f32], 1.0);
            face.id = m.id().max(0) as u64;
            if let Some(p) = m.param("face") {
                face.score = p.get::<f64>("score").map(|v| v as f32).unwrap_or(1.0);
                face.id = p.get::<u64>("id").unwrap_or(face.id);
                if let Some(b) = floats(p, "bbox").filter(|v| v.len() == 4) {
                    face.bbox = [b[0], b[1], b[2], b[3]];
                }
                face.landmarks = floats(p, "landmarks")
                    .filter(|v| v.len() == 10)
                    .map(|v| [[v[0], v[1]], [v[2], v[3]], [v[4], v[5]], [v[6], v[7]], [v[8], v[9]]]);
                face.eyes = floats(p, "eyes").filter(|v| v.len() == 4).map(|v| [[v[0], v[1]], [v[2], v[3]]]);
            }
            face
        })
        .collect()
}
