//! `profile=auto`: a published model recognised by its inputs and outputs alone.
//!
//! The published face restorers differ in their signatures only where their conventions
//! differ (FaceFusion's exports, checked against its face enhancer): all take RGB in
//! [-1, 1] as `input`; CodeFormer adds a scalar fidelity weight; GPEN-BFR-256 is the only
//! 256 px one and is framed by the ArcFace-128 template; GFPGAN 1.2-1.4, GPEN-BFR 512+ and
//! RestoreFormer++ share the FFHQ 512 template, so one profile fits them all. Real-ESRGAN
//! (RGB in [0, 1]) is the model whose output is an integer multiple of its input.

use anyhow::{bail, Result};
use ort::value::{Outlet, TensorElementType, ValueType};

use super::profile::{ChannelOrder, ModelKind, Profile};
use crate::align::Template;

/// One input or output of a model: name, element type (None: not a tensor) and shape
/// (negative: dynamic).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSig {
    pub name: String,
    pub elem: Option<TensorElementType>,
    pub shape: Vec<i64>,
}

impl TensorSig {
    pub fn of(o: &Outlet) -> Self {
        match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                Self { name: o.name().to_string(), elem: Some(*ty), shape: shape.iter().copied().collect() }
            }
            _ => Self { name: o.name().to_string(), elem: None, shape: Vec::new() },
        }
    }

    fn is_float(&self) -> bool {
        matches!(self.elem, Some(TensorElementType::Float32 | TensorElementType::Float16))
    }

    /// A [batch, 3, h, w] float image.
    fn is_image(&self) -> bool {
        self.is_float() && self.shape.len() == 4 && (self.shape[1] == 3 || self.shape[1] < 0)
    }

    /// The square side, Some(None) when dynamic, None when not square.
    fn side(&self) -> Option<Option<i32>> {
        match (self.shape[2], self.shape[3]) {
            (h, w) if h > 0 && h == w => Some(Some(h as i32)),
            (h, w) if h < 0 && w < 0 => Some(None),
            _ => None,
        }
    }
}

impl std::fmt::Display for TensorSig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ty = self.elem.map(|t| format!("{t:?}")).unwrap_or_else(|| "not a tensor".into());
        write!(f, "'{}' {ty} {:?}", self.name, self.shape)
    }
}

/// Names a scalar input may carry when it is a fidelity weight.
const FIDELITY_NAMES: [&str; 3] = ["weight", "w", "fidelity"];

/// What the signature says; the scale may need a run to be known.
#[derive(Clone, Debug, PartialEq)]
pub struct Recognised {
    pub input: String,
    pub output: String,
    pub fidelity_input: Option<String>,
    /// Input side (None: dynamic).
    pub input_size: Option<i32>,
    /// Output side (None: dynamic).
    pub output_size: Option<i32>,
}

/// Side of the probe run for a model whose input size is dynamic, and the tile a dynamic
/// background model is run in.
pub const DYNAMIC_TILE: i32 = 256;

impl Recognised {
    pub fn from_signature(inputs: &[TensorSig], outputs: &[TensorSig]) -> Result<Self> {
        let fail = |why: String| -> anyhow::Error {
            let list = |v: &[TensorSig]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
            anyhow::anyhow!(
                "profile=auto cannot recognise it: {why} (inputs: {}; outputs: {}). Write a profile: \
                 models/profiles/ has one per published family",
                list(inputs),
                list(outputs)
            )
        };
        let images: Vec<&TensorSig> = inputs.iter().filter(|t| t.is_image()).collect();
        let [image] = images.as_slice() else {
            return Err(fail(format!("{} image inputs ([batch, 3, h, w] float), expected one", images.len())));
        };
        let mut fidelity_input = None;
        for t in inputs.iter().filter(|t| t.name != image.name) {
            let scalar = t.shape.iter().all(|&d| d == 1 || d < 0) && t.shape.len() <= 1;
            let float = matches!(
                t.elem,
                Some(TensorElementType::Float64 | TensorElementType::Float32 | TensorElementType::Float16)
            );
            if scalar && float && FIDELITY_NAMES.contains(&t.name.to_ascii_lowercase().as_str()) {
                fidelity_input = Some(t.name.clone());
            } else {
                return Err(fail(format!("input {t} has no known role")));
            }
        }
        let Some(output) = outputs.iter().find(|t| t.is_image()) else {
            return Err(fail("no [batch, 3, h, w] float output".into()));
        };
        let (Some(input_size), Some(output_size)) = (image.side(), output.side()) else {
            return Err(fail("the image input or output is not square".into()));
        };
        Ok(Self { input: image.name.clone(), output: output.name.clone(), fidelity_input, input_size, output_size })
    }

    /// The input side to run once to learn the scale, when the shapes do not tell it.
    pub fn probe_size(&self) -> Option<i32> {
        match (self.input_size, self.output_size) {
            (Some(_), Some(_)) => None,
            (size, _) => Some(size.unwrap_or(64)),
        }
    }

    /// The profile, given the output side a probe run of `probe_size` gave (if one was needed).
    pub fn into_profile(self, probed: Option<i32>) -> Result<Profile> {
        let (s_in, s_out) = match (self.input_size, self.output_size, self.probe_size(), probed) {
            (Some(i), Some(o), _, _) => (i, o),
            (_, _, Some(p), Some(o)) => (p, o),
            _ => bail!("profile=auto: the model's scale is unknown (no probe run)"),
        };
        if s_out % s_in != 0 || s_out / s_in > 16 {
            bail!("profile=auto: output {s_out} px for input {s_in} px is not an integer scale up to 16");
        }
        let scale = s_out / s_in;
        let base = Profile {
            kind: ModelKind::Face,
            name: String::new(),
            description: String::new(),
            input: self.input,
            output: self.output,
            input_size: s_in,
            output_size: s_out,
            channels: ChannelOrder::Rgb,
            range: [-1.0, 1.0],
            template: Template::Ffhq5,
            fidelity_input: self.fidelity_input,
            attributes: Vec::new(),
            condition_input: None,
        };
        let (name, p) = match (scale, base.fidelity_input.is_some(), self.input_size) {
            (1, true, Some(_)) => ("codeformer".to_string(), base),
            (1, false, Some(256)) => ("gpen-bfr-256".to_string(), Profile { template: Template::Arcface128, ..base }),
            (1, false, Some(512 | 1024 | 2048)) => ("gfpgan / gpen-bfr / restoreformer++".to_string(), base),
            (1, _, size) => bail!(
                "profile=auto: a 1x face model of {} px is not one of the published families \
                 (CodeFormer, GFPGAN, GPEN-BFR 256/512+, RestoreFormer++); write a profile",
                size.map_or("dynamic".to_string(), |s| s.to_string())
            ),
            (k, false, size) => {
                let tile = size.unwrap_or(DYNAMIC_TILE);
                let p = Profile {
                    kind: ModelKind::Background,
                    range: [0.0, 1.0],
                    input_size: tile,
                    output_size: tile * k,
                    ..base
                };
                (format!("real-esrgan-x{k}"), p)
            }
            (k, true, _) => bail!("profile=auto: a x{k} model with a fidelity input matches no published family"),
        };
        let description = format!("recognised by profile=auto as {name} (x{scale}, {} px input)", p.input_size);
        Ok(Profile { name: format!("auto:{name}"), description, ..p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, elem: TensorElementType, shape: &[i64]) -> TensorSig {
        TensorSig { name: name.into(), elem: Some(elem), shape: shape.to_vec() }
    }
    use TensorElementType::{Float32 as F32, Float64 as F64, Int64};

    #[test]
    fn families_by_signature() {
        let img = |s: i64| t("input", F32, &[1, 3, s, s]);
        let out = |s: i64| t("output", F32, &[1, 3, s, s]);
        let gfpgan = Recognised::from_signature(&[img(512)], &[out(512)]).unwrap().into_profile(None).unwrap();
        assert_eq!((gfpgan.range, gfpgan.template, gfpgan.kind), ([-1.0, 1.0], Template::Ffhq5, ModelKind::Face));
        let gpen = Recognised::from_signature(&[img(256)], &[out(256)]).unwrap().into_profile(None).unwrap();
        assert_eq!(gpen.template, Template::Arcface128);
        let cf = Recognised::from_signature(
            &[img(512), t("weight", F64, &[1])],
            &[out(512), t("logits", F32, &[1, 256, 1024])],
        )
        .unwrap()
        .into_profile(None)
        .unwrap();
        assert_eq!(cf.fidelity_input.as_deref(), Some("weight"));
        assert_eq!(cf.name, "auto:codeformer");
        let dynamic = Recognised::from_signature(&[img(-1)], &[out(-1)]).unwrap();
        assert_eq!(dynamic.probe_size(), Some(64));
        let esr = dynamic.into_profile(Some(256)).unwrap();
        assert_eq!(
            (esr.kind, esr.range, esr.input_size, esr.output_size),
            (ModelKind::Background, [0.0, 1.0], 256, 1024)
        );
    }

    #[test]
    fn unknown_signatures_are_refused_with_the_reason() {
        let err = |inputs: &[TensorSig], outputs: &[TensorSig]| {
            let r = Recognised::from_signature(inputs, outputs);
            format!("{:#}", r.and_then(|r| r.into_profile(None)).unwrap_err())
        };
        let img = t("input", F32, &[1, 3, 512, 512]);
        let e = err(&[img.clone(), t("mask", Int64, &[1, 1, 512, 512])], std::slice::from_ref(&img));
        assert!(e.contains("'mask'") && e.contains("no known role") && e.contains("models/profiles"), "{e}");
        let e = err(&[t("x", F32, &[1, 1, 64, 64])], std::slice::from_ref(&img));
        assert!(e.contains("0 image inputs"), "{e}");
        let e = err(&[t("input", F32, &[1, 3, 96, 96])], &[t("output", F32, &[1, 3, 96, 96])]);
        assert!(e.contains("96 px is not one of the published families"), "{e}");
        let e = err(&[t("input", F32, &[1, 3, 64, 48])], &[img]);
        assert!(e.contains("not square"), "{e}");
    }
}
