//! A generator session: checks the model against its profile, converts aligned crops to the
//! profile's tensor layout, runs all faces of a frame as one batch, converts back.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{Array4, ArrayView4};
use opencv::core::{Mat, Scalar, CV_32FC3};
use opencv::prelude::*;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use super::profile::{ChannelOrder, Profile};
use super::provider::{self, Provider, ProviderOptions};
use super::runtime;

/// What happened to each provider tried before a session ran.
#[derive(Clone, Debug)]
pub struct ProviderReport {
    /// The provider that runs the model.
    pub active: Provider,
    /// Providers tried first that could not run, each with its reason.
    pub skipped: Vec<(Provider, String)>,
}

impl std::fmt::Display for ProviderReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "running on {}", self.active.name())?;
        for (p, why) in &self.skipped {
            write!(f, "; {} unavailable: {why}", p.name())?;
        }
        Ok(())
    }
}

pub struct Restorer {
    session: Session,
    profile: Profile,
    path: PathBuf,
    report: ProviderReport,
    /// Fixed batch size of the model's input, if it has one.
    fixed_batch: Option<usize>,
}

impl Restorer {
    /// Loads `model` with its profile (`profile`, or the TOML beside it) on the best
    /// provider of `opts` that works.
    pub fn load(model: &Path, profile: Option<&Path>, opts: &ProviderOptions) -> Result<Self> {
        if !model.is_file() {
            bail!("model {}: no such file", model.display());
        }
        let profile = Profile::for_model(model, profile)?;
        let env = runtime::environment()?;
        let mut skipped = Vec::new();
        for &p in opts.provider.chain() {
            let attempt = (|| -> Result<Session> {
                let mut b = Session::builder(env)?;
                if opts.threads > 0 {
                    b = b.with_intra_threads(opts.threads).map_err(|e| anyhow!("{e}"))?;
                }
                provider::register(p, opts, &mut b)?;
                Ok(b.commit_from_file(model)?)
            })();
            match attempt {
                Ok(session) => {
                    let report = ProviderReport { active: p, skipped };
                    tracing::info!(model = %model.display(), "{report}");
                    let fixed_batch =
                        check_signature(&session, &profile).with_context(|| format!("model {}", model.display()))?;
                    let mut r = Self { session, profile, path: model.to_path_buf(), report, fixed_batch };
                    r.warm_up().with_context(|| format!("model {}: the first run failed", model.display()))?;
                    return Ok(r);
                }
                Err(e) if p == Provider::Cpu => {
                    return Err(anyhow!("model {}: ONNX Runtime cannot load it: {e:#}", model.display()));
                }
                Err(e) => {
                    // Expected on a CPU machine under `auto`; worth a warning when asked for.
                    if opts.provider == Provider::Auto {
                        tracing::info!(provider = p.name(), "provider unavailable: {e:#}");
                    } else {
                        tracing::warn!(provider = p.name(), "provider unavailable: {e:#}");
                    }
                    skipped.push((p, format!("{e:#}")));
                }
            }
        }
        unreachable!("every provider chain ends with the CPU")
    }

    /// One run on a grey face at start: the first frame is not slowed by ONNX Runtime's
    /// lazy set-up, and a model that loads but cannot run fails at the state change.
    fn warm_up(&mut self) -> Result<()> {
        let s = self.profile.input_size;
        let grey = Mat::new_rows_cols_with_default(s, s, opencv::core::CV_8UC3, Scalar::all(128.0))?;
        let out = self.infer(&[grey])?;
        let got = (out[0].rows(), out[0].cols());
        let want = self.profile.output_size;
        if got != (want, want) {
            bail!("output is {}x{}, the profile says {want}x{want}", got.1, got.0);
        }
        Ok(())
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn report(&self) -> &ProviderReport {
        &self.report
    }

    /// Restores aligned BGR u8 crops of `input_size`; returns BGR f32 images in [0, 255] of
    /// `output_size`, one per crop, in order. All crops go in one batch when the model allows.
    pub fn infer(&mut self, crops: &[Mat]) -> Result<Vec<Mat>> {
        let chunk = self.fixed_batch.unwrap_or(crops.len().max(1));
        let mut out = Vec::with_capacity(crops.len());
        for group in crops.chunks(chunk) {
            let mut input = to_tensor(group, &self.profile)?;
            if let Some(n) = self.fixed_batch {
                // Pad a short last group up to the model's fixed batch.
                if input.shape()[0] < n {
                    let mut padded = Array4::<f32>::zeros((n, 3, input.shape()[2], input.shape()[3]));
                    padded.slice_mut(ndarray::s![..group.len(), .., .., ..]).assign(&input);
                    input = padded;
                }
            }
            let outputs =
                self.session.run(ort::inputs![self.profile.input.as_str() => TensorRef::from_array_view(&input)?])?;
            let value = outputs
                .get(&self.profile.output)
                .ok_or_else(|| anyhow!("model output '{}' missing from the run", self.profile.output))?;
            let arr = value.try_extract_array::<f32>()?;
            let arr = arr.into_dimensionality::<ndarray::Ix4>().context("model output is not 4-D")?;
            for i in 0..group.len() {
                out.push(from_tensor(arr.slice(ndarray::s![i..i + 1, .., .., ..]), &self.profile)?);
            }
        }
        Ok(out)
    }
}

/// Checks that the model's input and output match the profile; returns the fixed batch
/// size, if the model has one.
fn check_signature(session: &Session, profile: &Profile) -> Result<Option<usize>> {
    let find = |list: &[ort::value::Outlet], name: &str, what: &str| -> Result<Vec<i64>> {
        let names: Vec<&str> = list.iter().map(|o| o.name()).collect();
        let o = list.iter().find(|o| o.name() == name).ok_or_else(|| {
            anyhow!("profile '{}' names {what} '{name}', but the model's {what}s are {names:?}", profile.name)
        })?;
        match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                if *ty != ort::value::TensorElementType::Float32 {
                    bail!("{what} '{name}' is {ty:?}, expected float32");
                }
                Ok(shape.iter().copied().collect())
            }
            other => bail!("{what} '{name}' is not a tensor ({other:?})"),
        }
    };
    let check = |shape: &[i64], size: i32, what: &str| -> Result<()> {
        let ok = shape.len() == 4
            && (shape[1] == 3 || shape[1] < 0)
            && (shape[2] == size as i64 || shape[2] < 0)
            && (shape[3] == size as i64 || shape[3] < 0);
        if !ok {
            bail!("{what} shape {shape:?} does not match the profile '{}' ([batch, 3, {size}, {size}])", profile.name);
        }
        Ok(())
    };
    let ins = find(session.inputs(), &profile.input, "input")?;
    check(&ins, profile.input_size, "input")?;
    let outs = find(session.outputs(), &profile.output, "output")?;
    check(&outs, profile.output_size, "output")?;
    Ok((ins[0] > 0).then_some(ins[0] as usize))
}

/// BGR u8 crops -> NCHW f32 in the profile's channel order and range.
pub fn to_tensor(crops: &[Mat], profile: &Profile) -> Result<Array4<f32>> {
    let s = profile.input_size as usize;
    let [lo, hi] = profile.range;
    let k = (hi - lo) / 255.0;
    let order: [usize; 3] = match profile.channels {
        ChannelOrder::Rgb => [2, 1, 0],
        ChannelOrder::Bgr => [0, 1, 2],
    };
    let mut t = Array4::<f32>::zeros((crops.len(), 3, s, s));
    for (n, crop) in crops.iter().enumerate() {
        if crop.rows() as usize != s || crop.cols() as usize != s || crop.channels() != 3 {
            bail!("crop {}x{}x{} does not fit the {s}x{s} BGR input", crop.cols(), crop.rows(), crop.channels());
        }
        let crop = if crop.is_continuous() { crop.clone() } else { crop.try_clone()? };
        let bytes = crop.data_bytes()?;
        for y in 0..s {
            for x in 0..s {
                let px = &bytes[(y * s + x) * 3..][..3];
                for (c, &src) in order.iter().enumerate() {
                    t[[n, c, y, x]] = lo + k * px[src] as f32;
                }
            }
        }
    }
    Ok(t)
}

/// One [1, 3, H, W] output in the profile's order and range -> a BGR f32 Mat in [0, 255].
pub fn from_tensor(t: ArrayView4<f32>, profile: &Profile) -> Result<Mat> {
    let (h, w) = (t.shape()[2], t.shape()[3]);
    let [lo, hi] = profile.range;
    let k = 255.0 / (hi - lo);
    let order: [usize; 3] = match profile.channels {
        ChannelOrder::Rgb => [2, 1, 0],
        ChannelOrder::Bgr => [0, 1, 2],
    };
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, CV_32FC3, Scalar::all(0.0))?;
    let data = m.data_typed_mut::<opencv::core::Vec3f>()?;
    for y in 0..h {
        for x in 0..w {
            let px = &mut data[y * w + x];
            for (c, &dst) in order.iter().enumerate() {
                px[dst] = ((t[[0, c, y, x]] - lo) * k).clamp(0.0, 255.0);
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Template;

    fn profile(channels: ChannelOrder, range: [f32; 2]) -> Profile {
        Profile {
            kind: Default::default(),
            name: "t".into(),
            description: String::new(),
            input: "input".into(),
            output: "output".into(),
            input_size: 4,
            output_size: 4,
            channels,
            range,
            template: Template::Ffhq5,
        }
    }

    /// A 4x4 BGR crop whose pixel (0,0) is B=10, G=20, R=255.
    fn crop() -> Mat {
        let mut m = Mat::new_rows_cols_with_default(4, 4, opencv::core::CV_8UC3, Scalar::all(0.0)).unwrap();
        *m.at_2d_mut::<opencv::core::Vec3b>(0, 0).unwrap() = opencv::core::Vec3b::from([10, 20, 255]);
        m
    }

    #[test]
    fn rgb_unit_range_known_answer() {
        let p = profile(ChannelOrder::Rgb, [0.0, 1.0]);
        let t = to_tensor(&[crop()], &p).unwrap();
        assert_eq!([t[[0, 0, 0, 0]], t[[0, 1, 0, 0]], t[[0, 2, 0, 0]]], [1.0, 20.0 / 255.0, 10.0 / 255.0]);
        let back = from_tensor(t.view(), &p).unwrap();
        let px = back.at_2d::<opencv::core::Vec3f>(0, 0).unwrap();
        assert!((px[0] - 10.0).abs() < 1e-3 && (px[1] - 20.0).abs() < 1e-3 && (px[2] - 255.0).abs() < 1e-3);
    }

    #[test]
    fn bgr_symmetric_range_known_answer() {
        let p = profile(ChannelOrder::Bgr, [-1.0, 1.0]);
        let t = to_tensor(&[crop()], &p).unwrap();
        assert!((t[[0, 0, 0, 0]] - (-1.0 + 2.0 * 10.0 / 255.0)).abs() < 1e-6);
        assert!((t[[0, 2, 0, 0]] - 1.0).abs() < 1e-6);
        assert_eq!(t[[0, 1, 1, 1]], -1.0, "black is the bottom of the range");
        // Out-of-range outputs are clamped to valid pixels.
        let mut out = t.clone();
        out[[0, 0, 0, 0]] = 3.0;
        let m = from_tensor(out.view(), &p).unwrap();
        assert_eq!(m.at_2d::<opencv::core::Vec3f>(0, 0).unwrap()[0], 255.0);
    }

    #[test]
    fn wrong_crop_size_is_refused() {
        let p = profile(ChannelOrder::Rgb, [0.0, 1.0]);
        let big = Mat::new_rows_cols_with_default(8, 8, opencv::core::CV_8UC3, Scalar::all(0.0)).unwrap();
        assert!(to_tensor(&[big], &p).unwrap_err().to_string().contains("does not fit"));
    }
}
