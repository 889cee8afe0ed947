//! Face attributes (the 40 CelebA ones: Eyeglasses, Smiling, Male, ...) through ONNX
//! Runtime, with the predictor `faceenhance-train attributes` trains: the attributes an
//! attribute-guided model is given at inference (users have none), and a measure of what
//! an edit did. Its profile (`kind = "attributes"`) names the attributes in the order of
//! the output's logits.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use opencv::core::{Mat, Size};
use opencv::imgproc;
use ort::session::Session;
use ort::value::Tensor;

use super::profile::ModelKind;
use super::provider::{self, ProviderOptions};
use super::restorer::to_tensor;
use super::Profile;
use crate::align;
use crate::detect::Face;

pub struct AttributePredictor {
    session: Session,
    profile: Profile,
}

impl AttributePredictor {
    /// The model and the profile beside it (`x.onnx` -> `x.toml`).
    pub fn load(model: &Path, opts: &ProviderOptions) -> Result<Self> {
        let profile = Profile::from_file(&Profile::beside(model))
            .with_context(|| format!("attributes model {}", model.display()))?;
        profile.ensure_kind(ModelKind::Attributes).with_context(|| format!("model {}", model.display()))?;
        let (session, _) = provider::open(provider::Source::File(model), opts)?;
        let has = |list: Vec<&str>, name: &str| list.contains(&name);
        ensure!(
            has(session.inputs().iter().map(|i| i.name()).collect(), &profile.input)
                && has(session.outputs().iter().map(|o| o.name()).collect(), &profile.output),
            "model {}: the profile's input '{}' or output '{}' is not the model's",
            model.display(),
            profile.input,
            profile.output
        );
        Ok(Self { session, profile })
    }

    /// The attributes' names, in the order of [`Self::predict`]'s probabilities.
    pub fn names(&self) -> &[String] {
        &self.profile.attributes
    }

    /// Each face's attribute probabilities, the face aligned on the profile's template in
    /// `bgr`: cropped at twice the model's input (as the training crops were: CelebA faces
    /// about 1:1 at 128 px), or at the face's own resolution when it is larger (a warp
    /// straight to 128 px would alias what the network never saw), then area-averaged down.
    pub fn predict(&mut self, bgr: &Mat, faces: &[Face]) -> Result<Vec<Vec<f32>>> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.profile.input_size;
        let crops = faces
            .iter()
            .map(|face| {
                let k = align::estimate(face, self.profile.template, 2 * s)?.scale();
                let side = if k < 1.0 { ((2 * s) as f64 / k).round().min(1024.0) as i32 } else { 2 * s };
                let big = align::crop_face(bgr, face, self.profile.template, side)?;
                let mut crop = Mat::default();
                imgproc::resize(&big, &mut crop, Size::new(s, s), 0.0, 0.0, imgproc::INTER_AREA)?;
                Ok(crop)
            })
            .collect::<Result<Vec<Mat>>>()?;
        let input = to_tensor(&crops, &self.profile)?;
        let outputs = self.session.run(ort::inputs![self.profile.input.as_str() => Tensor::from_array(input)?])?;
        let (shape, logits) = outputs[self.profile.output.as_str()].try_extract_tensor::<f32>()?;
        let n = self.profile.attributes.len();
        ensure!(
            shape.first().copied() == Some(faces.len() as i64) && logits.len() == faces.len() * n,
            "attributes model: output of shape {shape:?} for {} faces and {n} attributes",
            faces.len()
        );
        Ok(logits.chunks(n).map(|l| l.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()).collect())
    }
}
