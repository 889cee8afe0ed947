//! `facedraw`: draws the face meta (boxes, landmarks, track ids and scores) onto the
//! frame, for looking at what `facedetector` found.

use std::sync::LazyLock;

use faceenhance::Face;
use gst::glib;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use opencv::core::{Point, Rect, Scalar};
use opencv::imgproc;

use crate::{meta, video};

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facedraw", gst::DebugColorFlags::empty(), Some("Face drawing")));

/// No settings; its state is the negotiated frame layout.
#[derive(Default)]
struct State {
    info: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
pub struct FaceDraw {
    state: std::sync::Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceDraw {
    const NAME: &'static str = "GstFaceEnhanceDraw";
    type Type = super::FaceDraw;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceDraw {}
/// A colour per track id, as a Scalar in the frame's own channel order.
fn colour(id: u64, format: faceenhance::PixelFormat) -> Scalar {
    const PALETTE: [[f64; 3]; 6] = [
        [0.0, 255.0, 0.0],
        [255.0, 64.0, 64.0],
        [64.0, 128.0, 255.0],
        [255.0, 255.0, 0.0],
        [255.0, 0.0, 255.0],
        [0.0, 255.0, 255.0],
    ];
    let rgb = PALETTE[(id as usize) % PALETTE.len()];
    let mut s = [255.0; 4];
    for (c, off) in format.rgb_offsets().iter().enumerate() {
        s[*off] = rgb[c];
    }
    Scalar::new(s[0], s[1], s[2], s[3])
}

fn draw(frame: &mut faceenhance::Frame, faces: &[Face]) -> anyhow::Result<()> {
    let format = frame.format();
    let mut m = frame.mat_mut()?;
    for f in faces {
        let c = colour(f.id, format);
        let [x, y, w, h] = f.bbox.map(|v| v.round() as i32);
        let thick = (w / 64).clamp(1, 4);
        imgproc::rectangle(&mut m, Rect::new(x, y, w, h), c, thick, imgproc::LINE_8, 0)?;
        let points: Vec<[f32; 2]> = match (&f.landmarks, &f.eyes) {
            (Some(l), _) => l.to_vec(),
            (None, Some(e)) => e.to_vec(),
            _ => Vec::new(),
        };
        for p in points {
            let centre = Point::new(p[0].round() as i32, p[1].round() as i32);
            imgproc::circle(&mut m, centre, thick + 1, c, -1, imgproc::LINE_8, 0)?;
        }
        let label = format!("#{} {:.2}", f.id, f.score);
        let org = Point::new(x, (y - 4).max(10));
        imgproc::put_text(&mut m, &label, org, imgproc::FONT_HERSHEY_SIMPLEX, 0.4, c, 1, imgproc::LINE_8, false)?;
    }
    Ok(())
}

impl BaseTransformImpl for FaceDraw {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let faces = meta::read(buf);
        gst::log!(CAT, imp = self, "{} faces to draw", faces.len());
        if faces.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let info = self.state.lock().unwrap().info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        video::with_frame_mut(buf, &info, |frame| draw(frame, &faces))
            .map_err(|e| video::stream_failed(self, "drawing faces failed", e))?;
        Ok(gst::FlowSuccess::Ok)
    }
}

video::in_place_video_filter!(
    FaceDraw,
    "Face drawing",
    "Filter/Effect/Video",
    "Draws the faces attached by facedetector: boxes, landmarks, ids and scores"
);
