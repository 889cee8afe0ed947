//! Face attribute editing in the stream: each detected face's aligned crop goes through an
//! edit model (`kind = "edit"`, trained by `faceenhance-train edit`) with what is asked
//! (`Eyeglasses=1,Smiling=-1`: +1 add, -1 remove, unnamed attributes kept as they are).
//!
//! The model works at its own size (64 px); what it changed (output minus input, the edit
//! residual) is smoothed per track so an edit does not flicker from frame to frame, then
//! enlarged to the face's own resolution and added to the frame's pixels under a feathered
//! mask: the face is not resampled, so wherever the edit changed nothing it stays exactly
//! as it was, however large. Pixels outside faces are never written. With nothing asked,
//! frames pass untouched.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use opencv::core::{Mat, Size, CV_32FC3};
use opencv::imgproc;

use crate::align;
use crate::blend;
use crate::detect::Face;
use crate::frame::Frame;
use crate::model::profile::ModelKind;
use crate::model::{Profile, ProviderOptions, Restorer};

/// The largest side a face is edited at (the model's residual is enlarged to it).
const MAX_PASTE: i32 = 512;

/// What `spec` asks of each of `names` (in their order): `Name=value` pairs separated by
/// commas, value in [-1, 1] (+1 add, -1 remove, fractions for partial edits); names as the
/// model's profile spells them (CelebA's). Empty: nothing asked.
pub fn parse_asks(spec: &str, names: &[String]) -> Result<Vec<f32>> {
    let mut asks = vec![0.0f32; names.len()];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').with_context(|| format!("'{part}' is not Name=value"))?;
        let (name, value) = (name.trim(), value.trim());
        let Some(k) = names.iter().position(|n| n == name) else {
            bail!("'{name}' is not an attribute this model edits; it edits {}", names.join(", "));
        };
        let v: f32 = value
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .with_context(|| format!("{name}={value}: the value must be a number from -1 (remove) to 1 (add)"))?;
        if !(-1.0..=1.0).contains(&v) {
            bail!("{name}={value}: the value must be from -1 (remove) to 1 (add)");
        }
        asks[k] = v;
    }
    Ok(asks)
}

/// The attribute names an edit model's profile lists, read without opening the model
/// (for the element's documentation).
pub fn edit_names(model: &Path) -> Result<Vec<String>> {
    let profile = Profile::from_file(&Profile::beside(model))?;
    profile.ensure_kind(ModelKind::Edit)?;
    Ok(profile.attributes)
}

/// What [`FaceEditor::edit`] did to a frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EditStats {
    pub faces: usize,
    pub edited: usize,
    /// Frame rectangles that may have changed.
    pub regions: Vec<[i32; 4]>,
}

pub struct FaceEditor {
    /// The edit model; what is asked lives in its condition input.
    model: Restorer,
    /// Weight of a track's previous residual in its smoothed one (0: none).
    smoothing: f32,
    /// Smoothed edit residual per track, at the model's output size (f32 BGR).
    residuals: HashMap<u64, Mat>,
    /// Feather masks of the paste sizes used last.
    masks: MaskCache,
}

/// Feather masks by paste side, the `MASKS` used last: a face walking toward the camera
/// has a new side on every frame, and a mask per side ever seen (up to 4 MB each at
/// 1024 px) would grow without end.
#[derive(Default)]
struct MaskCache(std::collections::VecDeque<(i32, Mat)>);

const MASKS: usize = 8;

impl MaskCache {
    fn get(&mut self, side: i32) -> Result<Mat> {
        if let Some(i) = self.0.iter().position(|(s, _)| *s == side) {
            let hit = self.0.remove(i).expect("found");
            self.0.push_front(hit);
        } else {
            self.0.push_front((side, blend::feather_mask(side, 0.1)?));
            self.0.truncate(MASKS);
        }
        Ok(self.0[0].1.clone())
    }
}

impl FaceEditor {
    /// The edit model and the profile beside it (`kind = "edit"`).
    pub fn load(model: &Path, opts: &ProviderOptions) -> Result<Self> {
        let restorer = Restorer::load(model, Some(&Profile::beside(model)), opts)
            .with_context(|| format!("edit model {}", model.display()))?;
        restorer.profile().ensure_kind(ModelKind::Edit).with_context(|| format!("model {}", model.display()))?;
        Ok(Self { model: restorer, smoothing: 0.0, residuals: HashMap::new(), masks: MaskCache::default() })
    }

    /// The attributes the model edits, in its order.
    pub fn names(&self) -> &[String] {
        &self.model.profile().attributes
    }

    /// The profile of the model (its name, provider report, ...).
    pub fn model(&self) -> &Restorer {
        &self.model
    }

    /// Sets what is asked ([`parse_asks`]); an error leaves the previous asks.
    pub fn set_asks(&mut self, spec: &str) -> Result<()> {
        let asks = parse_asks(spec, self.names())?;
        self.model.set_condition(&asks)
    }

    /// How much of a track's previous edit is kept in this frame's (0..1): steadier edits,
    /// slower to follow a turning face.
    pub fn set_smoothing(&mut self, smoothing: f32) {
        self.smoothing = smoothing.clamp(0.0, 0.95);
    }

    /// Forgets every track's edit (a flush or a seek: the next frame is another scene).
    pub fn reset(&mut self) {
        self.residuals.clear();
    }

    /// Edits every face of `frame` as asked.
    pub fn edit(&mut self, frame: &mut Frame, faces: &[Face]) -> Result<EditStats> {
        let mut stats = EditStats { faces: faces.len(), ..Default::default() };
        if self.model.condition().iter().all(|&a| a == 0.0) {
            self.residuals.clear();
            return Ok(stats);
        }
        let (s, template) = (self.model.profile().input_size, self.model.profile().template);
        // model crops, and each face's paste transform at its own resolution
        let mut jobs = Vec::new();
        {
            let mat = if frame.format().is_planar() { None } else { Some(frame.mat()?) };
            for face in faces {
                if face.bbox[2] < 2.0 || face.bbox[3] < 2.0 {
                    continue;
                }
                let sim = align::estimate(face, template, s)?;
                let Some(crop) = blend::aligned_crop(frame, mat.as_ref(), &sim, s)? else { continue };
                // the crop's side in frame pixels, at least the model's
                let side = ((s as f64 / sim.scale()).round() as i32).clamp(s, MAX_PASTE);
                let big_sim = align::estimate(face, template, side)?;
                let key = if face.id != 0 { Some(face.id) } else { None };
                jobs.push((key, crop, big_sim, side));
            }
        }
        let crops: Vec<&Mat> = jobs.iter().map(|j| &j.1).collect();
        let outputs = if crops.is_empty() { Vec::new() } else { self.model.infer(&crops)? };
        let mut seen = Vec::with_capacity(jobs.len());
        for ((key, crop, big_sim, side), out) in jobs.into_iter().zip(outputs) {
            let mut residual = crate::restore::residual(&out, &crop, CV_32FC3)?;
            if let Some(k) = key {
                if let Some(prev) = self.residuals.get(&k).filter(|_| self.smoothing > 0.0) {
                    let mut mixed = Mat::default();
                    let a = self.smoothing as f64;
                    opencv::core::add_weighted(prev, a, &residual, 1.0 - a, 0.0, &mut mixed, CV_32FC3)?;
                    residual = mixed;
                }
                self.residuals.insert(k, residual.clone());
                seen.push(k);
            }
            // the change, enlarged to the face's own resolution, added to the frame's pixels
            let mut up = Mat::default();
            imgproc::resize(&residual, &mut up, Size::new(side, side), 0.0, 0.0, imgproc::INTER_CUBIC)?;
            let mask = self.masks.get(side)?;
            if let Some(rect) = blend::add_residual(frame, &up, &mask, &big_sim)? {
                stats.regions.push(rect);
                stats.edited += 1;
            }
        }
        self.residuals.retain(|k, _| seen.contains(k));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_cache_keeps_the_sizes_used_last_and_no_more() {
        use opencv::prelude::MatTraitConst;
        let mut c = MaskCache::default();
        for side in 40..140 {
            let m = c.get(side).unwrap();
            assert_eq!((m.rows(), m.cols()), (side, side));
        }
        assert_eq!(c.0.len(), MASKS);
        // a side in use stays: the same mask comes back, at the front
        let before = c.get(135).unwrap();
        assert_eq!(c.0[0].0, 135);
        assert_eq!(opencv::core::norm2_def(&before, &c.get(135).unwrap()).unwrap(), 0.0);
        assert!(c.0.iter().all(|(s, _)| *s >= 132));
    }

    fn names() -> Vec<String> {
        ["Eyeglasses", "Smiling", "Young"].map(String::from).to_vec()
    }

    #[test]
    fn asks_are_read_by_name_and_unnamed_ones_are_kept() {
        assert_eq!(parse_asks("Eyeglasses=1, Smiling=-1", &names()).unwrap(), [1.0, -1.0, 0.0]);
        assert_eq!(parse_asks("Young=0.5", &names()).unwrap(), [0.0, 0.0, 0.5]);
        assert_eq!(parse_asks("", &names()).unwrap(), [0.0; 3]);
    }

    #[test]
    fn bad_asks_say_what_is_wrong() {
        let e = |s: &str| format!("{:#}", parse_asks(s, &names()).unwrap_err());
        assert!(e("Beard=1").contains("it edits Eyeglasses, Smiling, Young"), "{}", e("Beard=1"));
        assert!(e("Smiling").contains("not Name=value"));
        assert!(e("Smiling=yes").contains("must be a number"));
        assert!(e("Smiling=2").contains("from -1 (remove) to 1 (add)"));
    }
}
