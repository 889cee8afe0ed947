//! A generator session: checks the model against its profile, converts aligned crops to the
//! profile's tensor layout, runs all faces of a frame as one batch, converts back.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use half::f16;
use ndarray::{Array4, ArrayD, ArrayView3, ArrayView4, IxDyn};
use opencv::core::{Mat, Scalar, CV_32FC3, CV_8U, CV_8UC1, CV_8UC4};
use opencv::prelude::*;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType};

use super::profile::{ChannelOrder, Profile, ProfileSource};
use super::provider::{self, ProviderOptions, ProviderReport};
use super::recognise::{Recognised, TensorSig};

/// How the session's tensors are fed and read, settled once at load.
struct Io {
    input: String,
    output: String,
    /// Half-precision image input / output (fp16 exports): converted at the boundary.
    input_f16: bool,
    output_f16: bool,
    /// Fixed batch size of the image input, if it has one.
    fixed_batch: Option<usize>,
    fidelity: Option<Scalar1>,
    /// An edit model's condition input (`[batch, n, 1, 1]` float32) and its `n`.
    condition: Option<(String, usize)>,
}

/// A one-element input (CodeFormer's fidelity weight) with its element type and shape.
struct Scalar1 {
    name: String,
    elem: TensorElementType,
    shape: Vec<usize>,
}

impl Io {
    /// Binds the names a profile gives (output empty: the first output) to the model's
    /// tensors and checks their types.
    fn new(
        ins: &[TensorSig],
        outs: &[TensorSig],
        input: &str,
        output: &str,
        fidelity: Option<&str>,
        condition: Option<(&str, usize)>,
    ) -> Result<Self> {
        let find = |list: &[TensorSig], name: &str, what: &str| -> Result<TensorSig> {
            list.iter().find(|t| t.name == name).cloned().ok_or_else(|| {
                let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
                anyhow!("the profile names {what} '{name}', but the model's {what}s are {names:?}")
            })
        };
        let half = |t: &TensorSig, what: &str| -> Result<bool> {
            match t.elem {
                Some(TensorElementType::Float32) => Ok(false),
                Some(TensorElementType::Float16) => Ok(true),
                _ => bail!("{what} {t} is not a float32 or float16 tensor"),
            }
        };
        let image_in = find(ins, input, "input")?;
        let image_out = if output.is_empty() {
            outs.first().cloned().ok_or_else(|| anyhow!("the model has no output"))?
        } else {
            find(outs, output, "output")?
        };
        let fidelity = match fidelity {
            None => None,
            Some(name) => {
                let t = find(ins, name, "input")?;
                let elem = match t.elem {
                    Some(
                        e @ (TensorElementType::Float64 | TensorElementType::Float32 | TensorElementType::Float16),
                    ) => e,
                    _ => bail!("fidelity input {t} is not a float tensor"),
                };
                let shape: Vec<usize> = t.shape.iter().map(|&d| d.max(1) as usize).collect();
                if shape.iter().product::<usize>() != 1 {
                    bail!("fidelity input {t} is not a single value");
                }
                Some(Scalar1 { name: t.name, elem, shape })
            }
        };
        let condition = match condition {
            None => None,
            Some((name, n)) => {
                let t = find(ins, name, "input")?;
                let ok = t.elem == Some(TensorElementType::Float32)
                    && t.shape.len() == 4
                    && (t.shape[1] == n as i64 || t.shape[1] < 0)
                    && t.shape[2..].iter().all(|&d| d == 1 || d < 0);
                if !ok {
                    bail!("condition input {t} is not a float32 [batch, {n}, 1, 1] tensor (one value per attribute)");
                }
                Some((t.name, n))
            }
        };
        let fed: Vec<&str> =
            [Some(input), fidelity.as_ref().map(|f| f.name.as_str()), condition.as_ref().map(|c| c.0.as_str())]
                .into_iter()
                .flatten()
                .collect();
        if let Some(t) = ins.iter().find(|t| !fed.contains(&t.name.as_str())) {
            bail!("input {t} is not named by the profile (nothing would feed it)");
        }
        Ok(Self {
            input_f16: half(&image_in, "input")?,
            output_f16: half(&image_out, "output")?,
            fixed_batch: (image_in.shape.first().copied().unwrap_or(-1) > 0).then(|| image_in.shape[0] as usize),
            input: image_in.name,
            output: image_out.name,
            fidelity,
            condition,
        })
    }

    /// One run: `input` NCHW f32 in the model's range, `fidelity` for the scalar input,
    /// `condition` (one value per attribute) for every image of an edit model's batch.
    /// `read` gets the output as a view of ONNX Runtime's own buffer (no copy of it).
    fn run<T>(
        &self,
        session: &mut Session,
        input: Array4<f32>,
        fidelity: f32,
        condition: &[f32],
        read: impl FnOnce(ArrayView4<f32>) -> Result<T>,
    ) -> Result<T> {
        let mut feed: Vec<(String, DynValue)> = Vec::with_capacity(3);
        if let Some((name, n)) = &self.condition {
            ensure!(condition.len() == *n, "{} condition values for {n} attributes", condition.len());
            let batch = input.shape()[0];
            let c = Array4::from_shape_fn((batch, *n, 1, 1), |(_, k, _, _)| condition[k]);
            feed.push((name.clone(), Tensor::from_array(c)?.into_dyn()));
        }
        let image = if self.input_f16 {
            Tensor::from_array(input.mapv(f16::from_f32))?.into_dyn()
        } else {
            Tensor::from_array(input)?.into_dyn()
        };
        feed.push((self.input.clone(), image));
        if let Some(f) = &self.fidelity {
            let shape = IxDyn(&f.shape);
            let value = match f.elem {
                TensorElementType::Float64 => Tensor::from_array(ArrayD::from_elem(shape, fidelity as f64))?.into_dyn(),
                TensorElementType::Float16 => {
                    Tensor::from_array(ArrayD::from_elem(shape, f16::from_f32(fidelity)))?.into_dyn()
                }
                _ => Tensor::from_array(ArrayD::from_elem(shape, fidelity))?.into_dyn(),
            };
            feed.push((f.name.clone(), value));
        }
        let outputs = session.run(feed)?;
        let value =
            outputs.get(&self.output).ok_or_else(|| anyhow!("model output '{}' missing from the run", self.output))?;
        let declared = if self.output_f16 { "float16" } else { "float32" };
        let wrong_type = || format!("output '{}' is not the {declared} tensor the model declares", self.output);
        let not4 =
            |shape: &[usize]| anyhow!("output '{}' has shape {shape:?}, not [batch, 3, height, width]", self.output);
        if self.output_f16 {
            let arr: ArrayD<f32> = value.try_extract_array::<f16>().with_context(wrong_type)?.mapv(f16::to_f32);
            let view = arr.view().into_dimensionality::<ndarray::Ix4>().map_err(|_| not4(arr.shape()))?;
            read(view)
        } else {
            let arr = value.try_extract_array::<f32>().with_context(wrong_type)?;
            let shape = arr.shape().to_vec();
            read(arr.into_dimensionality::<ndarray::Ix4>().map_err(|_| not4(&shape))?)
        }
    }
}

pub struct Restorer {
    session: Session,
    profile: Profile,
    path: PathBuf,
    report: ProviderReport,
    io: Io,
    /// Value fed to the profile's fidelity input, if it has one.
    fidelity: f32,
    /// Values fed to an edit model's condition input (zeros: change nothing).
    condition: Vec<f32>,
}

impl Restorer {
    /// Loads `model` with its profile (`profile`: a file, a family name or `auto`; None:
    /// the TOML beside the model, else `auto`) on the best provider of `opts` that works.
    pub fn load(model: &Path, profile: Option<&Path>, opts: &ProviderOptions) -> Result<Self> {
        if !model.is_file() {
            bail!("model {}: no such file", model.display());
        }
        let ctx = || format!("model {}", model.display());
        let from_file = match Profile::source(model, profile).with_context(ctx)? {
            ProfileSource::File(p) => Some(Profile::from_file(&p)?),
            ProfileSource::Auto => None,
        };
        let (mut session, report) = provider::open(provider::Source::File(model), opts)?;
        let ins: Vec<TensorSig> = session.inputs().iter().map(TensorSig::of).collect();
        let outs: Vec<TensorSig> = session.outputs().iter().map(TensorSig::of).collect();
        let with_profile = |p: &Profile| format!("model {} with profile '{}'", model.display(), p.name);
        let (profile, io) = match from_file {
            Some(p) => {
                let condition = p.condition_input.as_deref().map(|c| (c, p.attributes.len()));
                let io = Io::new(&ins, &outs, &p.input, &p.output, p.fidelity_input.as_deref(), condition)
                    .with_context(|| with_profile(&p))?;
                (p, io)
            }
            None => {
                let ctx = || match profile {
                    Some(_) => ctx(),
                    None => format!(
                        "model {} (no profile {} beside it, so profile=auto was tried)",
                        model.display(),
                        Profile::beside(model).display()
                    ),
                };
                let rec = Recognised::from_signature(&ins, &outs).with_context(ctx)?;
                let io = Io::new(&ins, &outs, &rec.input, &rec.output, rec.fidelity_input.as_deref(), None)
                    .with_context(ctx)?;
                let probed = match rec.probe_size() {
                    None => None,
                    Some(s) => {
                        let side = io
                            .run(&mut session, Array4::zeros((1, 3, s as usize, s as usize)), 0.5, &[], |out| {
                                Ok(out.shape()[2] as i32)
                            })
                            .with_context(|| format!("model {}: probe run at {s} px", model.display()))?;
                        Some(side)
                    }
                };
                let p = rec.into_profile(probed).with_context(ctx)?;
                tracing::info!(model = %model.display(), "{}", p.description);
                (p, io)
            }
        };
        check_sizes(&ins, &outs, &io, &profile).with_context(|| with_profile(&profile))?;
        let condition = vec![0.0; profile.attributes.len()];
        let mut r = Self { session, profile, path: model.to_path_buf(), report, io, fidelity: 0.5, condition };
        r.warm_up().with_context(|| format!("model {}: the first run failed", model.display()))?;
        Ok(r)
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

    /// The value fed to a fidelity input (CodeFormer's `w`, 0..1); no effect on models
    /// without one.
    pub fn fidelity(&self) -> f32 {
        self.fidelity
    }

    pub fn set_fidelity(&mut self, w: f32) {
        self.fidelity = w.clamp(0.0, 1.0);
    }

    /// What an edit model is asked for, one value per attribute of the profile (+1 add,
    /// -1 remove, 0 keep); no effect on other models.
    pub fn set_condition(&mut self, values: &[f32]) -> Result<()> {
        ensure!(
            values.len() == self.profile.attributes.len(),
            "{} values for the {} attributes of model '{}'",
            values.len(),
            self.profile.attributes.len(),
            self.profile.name
        );
        self.condition = values.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        Ok(())
    }

    /// What an edit model is asked for (zeros: nothing), as [`Self::set_condition`] set it.
    pub fn condition(&self) -> &[f32] {
        &self.condition
    }

    /// Restores aligned BGR u8 crops of `input_size`; returns BGR f32 images in [0, 255] of
    /// `output_size`, one per crop, in order. All crops go in one batch when the model allows.
    pub fn infer<M: Borrow<Mat>>(&mut self, crops: &[M]) -> Result<Vec<Mat>> {
        let profile = self.profile.clone();
        self.infer_each(crops, |t| from_tensor(t, &profile))
    }

    /// Runs the crops (BGR-first u8, 3 or 4 channels, `input_size`) as [`Self::infer`] does
    /// and hands each output, `[3, H, W]` in the profile's order and range, to `read` as a
    /// view of the session's output: a caller that wants it in another form (the weighted
    /// 8-bit image the paste takes) converts once, with no float image in between.
    pub fn infer_each<M: Borrow<Mat>, T>(
        &mut self,
        crops: &[M],
        read: impl FnMut(ArrayView3<f32>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let input = to_tensor(crops, &self.profile)?;
        self.run_tensor(input, read)
    }

    /// Runs a batch already in the model's layout (from [`to_tensor`]), in groups of the
    /// model's fixed batch where it has one, and hands each output to `read` as
    /// [`Self::infer_each`] does.
    pub fn run_tensor<T>(
        &mut self,
        input: Array4<f32>,
        mut read: impl FnMut(ArrayView3<f32>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let total = input.shape()[0];
        let chunk = self.io.fixed_batch.unwrap_or(total.max(1));
        let mut out = Vec::with_capacity(total);
        let mut groups: Vec<Array4<f32>> = if chunk >= total {
            vec![input]
        } else {
            input.axis_chunks_iter(ndarray::Axis(0), chunk).map(|g| g.to_owned()).collect()
        };
        for mut input in groups.drain(..) {
            let group_len = input.shape()[0];
            if let Some(n) = self.io.fixed_batch {
                // Pad a short last group up to the model's fixed batch.
                if input.shape()[0] < n {
                    let mut padded = Array4::<f32>::zeros((n, 3, input.shape()[2], input.shape()[3]));
                    padded.slice_mut(ndarray::s![..group_len, .., .., ..]).assign(&input);
                    input = padded;
                }
            }
            let batch = input.shape()[0];
            let (profile, path, output) = (&self.profile, &self.path, &self.io.output);
            self.io.run(&mut self.session, input, self.fidelity, &self.condition, |arr| {
                // Slicing and indexing below trust this shape: a model that gives back fewer
                // images or channels than it was fed is an error here, not a panic there.
                let side = profile.output_size as usize;
                let want = [batch, 3, side, side];
                if arr.shape() != want {
                    bail!(
                        "model '{}' ({}): output '{output}' has shape {:?} for a batch of {batch}, expected \
                         {want:?} ({batch} images, 3 channels, {side}x{side} per the profile){}",
                        profile.name,
                        path.display(),
                        arr.shape(),
                        mismatch(arr.shape(), &want)
                    );
                }
                // NaN or infinity would be clamped into black or white faces: a broken model
                // (or fp16 overflow) is an error that says so.
                let images = arr.slice(ndarray::s![..group_len, .., .., ..]);
                if let Some(bad) = images.iter().find(|v| !v.is_finite()) {
                    bail!(
                        "model '{}' ({}): output '{output}' holds {bad} values (not finite): the model or its \
                         precision is broken",
                        profile.name,
                        path.display(),
                    );
                }
                for image in images.outer_iter() {
                    out.push(read(image)?);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// What differs between an output's shape and the expected one, in words.
fn mismatch(got: &[usize], want: &[usize; 4]) -> String {
    let what = ["batch", "channel count", "height", "width"];
    let diffs: Vec<String> = (0..4)
        .filter(|&i| got[i] != want[i])
        .map(|i| format!("{} {} instead of {}", what[i], got[i], want[i]))
        .collect();
    format!(": {}", diffs.join(", "))
}

/// Checks the image input and output shapes against the profile's sizes.
fn check_sizes(ins: &[TensorSig], outs: &[TensorSig], io: &Io, profile: &Profile) -> Result<()> {
    let check = |list: &[TensorSig], name: &str, size: i32, what: &str| -> Result<()> {
        let shape = &list.iter().find(|t| t.name == name).expect("bound by Io::new").shape;
        let ok = shape.len() == 4
            && (shape[1] == 3 || shape[1] < 0)
            && (shape[2] == size as i64 || shape[2] < 0)
            && (shape[3] == size as i64 || shape[3] < 0);
        if !ok {
            bail!("{what} '{name}' shape {shape:?} does not match the profile ([batch, 3, {size}, {size}])");
        }
        Ok(())
    };
    check(ins, &io.input, profile.input_size, "input")?;
    check(outs, &io.output, profile.output_size, "output")
}

/// The tensor channel `c` reads from byte `order[c]` of a BGR-first pixel.
fn channel_order(profile: &Profile) -> [usize; 3] {
    match profile.channels {
        ChannelOrder::Rgb => [2, 1, 0],
        ChannelOrder::Bgr => [0, 1, 2],
    }
}

/// BGR-first u8 crops (BGR, or BGRx/BGRA straight from a packed frame: the fourth byte is
/// skipped) -> NCHW f32 in the profile's channel order and range. Reads the crops' bytes
/// where they are.
pub fn to_tensor<M: Borrow<Mat>>(crops: &[M], profile: &Profile) -> Result<Array4<f32>> {
    let s = profile.input_size as usize;
    let [lo, hi] = profile.range;
    let k = (hi - lo) / 255.0;
    let order = channel_order(profile);
    let mut t = Array4::<f32>::zeros((crops.len(), 3, s, s));
    for (n, crop) in crops.iter().enumerate() {
        let crop = crop.borrow();
        let ch = crop.channels() as usize;
        if crop.rows() as usize != s || crop.cols() as usize != s || !(ch == 3 || ch == 4) || crop.depth() != CV_8U {
            bail!("crop {}x{}x{} does not fit the {s}x{s} BGR input", crop.cols(), crop.rows(), crop.channels());
        }
        let copy;
        let bytes = if crop.is_continuous() {
            crop.data_bytes()?
        } else {
            copy = crop.try_clone()?;
            copy.data_bytes()?
        };
        for (c, &src) in order.iter().enumerate() {
            let mut plane = t.slice_mut(ndarray::s![n, c, .., ..]);
            let plane = plane.as_slice_mut().expect("a standard-layout plane");
            for (v, px) in plane.iter_mut().zip(bytes.chunks_exact(ch)) {
                *v = lo + k * px[src] as f32;
            }
        }
    }
    Ok(t)
}

/// One `[3, H, W]` output in the profile's order and range -> a BGR f32 Mat in [0, 255].
pub fn from_tensor(t: ArrayView3<f32>, profile: &Profile) -> Result<Mat> {
    let (h, w) = (t.shape()[1], t.shape()[2]);
    let [lo, hi] = profile.range;
    let k = 255.0 / (hi - lo);
    let order = channel_order(profile);
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, CV_32FC3, Scalar::all(0.0))?;
    let data = m.data_typed_mut::<opencv::core::Vec3f>()?;
    for (c, &dst) in order.iter().enumerate() {
        let plane = t.index_axis(ndarray::Axis(0), c);
        for (px, &v) in data.iter_mut().zip(plane.iter()) {
            px[dst] = ((v - lo) * k).clamp(0.0, 255.0);
        }
    }
    Ok(m)
}

/// One `[3, H, W]` output -> the BGRA u8 image [`crate::blend::paste`] takes, `weights` (u8,
/// the output's size) as alpha: the model's output converted once, straight from its buffer.
pub fn weighted_from_tensor(t: ArrayView3<f32>, profile: &Profile, weights: &Mat) -> Result<Mat> {
    let (h, w) = (t.shape()[1], t.shape()[2]);
    ensure!(
        weights.rows() as usize == h
            && weights.cols() as usize == w
            && weights.typ() == CV_8UC1
            && weights.is_continuous(),
        "weights {}x{} for a {w}x{h} output",
        weights.cols(),
        weights.rows()
    );
    let [lo, hi] = profile.range;
    let k = 255.0 / (hi - lo);
    let order = channel_order(profile);
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, CV_8UC4, Scalar::all(0.0))?;
    let data = m.data_bytes_mut()?;
    for (c, &dst) in order.iter().enumerate() {
        let plane = t.index_axis(ndarray::Axis(0), c);
        for (px, &v) in data.chunks_exact_mut(4).zip(plane.iter()) {
            // round half up, as OpenCV's float-to-u8 conversion did
            px[dst] = (((v - lo) * k).clamp(0.0, 255.0) + 0.5) as u8;
        }
    }
    for (px, &a) in data.chunks_exact_mut(4).zip(weights.data_bytes()?) {
        px[3] = a;
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
            fidelity_input: None,
            attributes: Vec::new(),
            condition_input: None,
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
        let back = from_tensor(t.index_axis(ndarray::Axis(0), 0), &p).unwrap();
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
        let m = from_tensor(out.index_axis(ndarray::Axis(0), 0), &p).unwrap();
        assert_eq!(m.at_2d::<opencv::core::Vec3f>(0, 0).unwrap()[0], 255.0);
    }

    /// The paste's weighted image made straight from the output holds what converting it to
    /// a float image and merging the weights gave, to the rounding; a BGRx crop (as a
    /// packed frame is warped) makes the same tensor as its BGR copy.
    #[test]
    fn weighted_output_and_bgrx_crops_match_the_long_way() {
        let p = profile(ChannelOrder::Rgb, [-1.0, 1.0]);
        let bgr = crop();
        let mut bgrx = Mat::default();
        opencv::imgproc::cvt_color_def(&bgr, &mut bgrx, opencv::imgproc::COLOR_BGR2BGRA).unwrap();
        let t = to_tensor(&[&bgr], &p).unwrap();
        assert_eq!(t, to_tensor(&[&bgrx], &p).unwrap());
        let mut weights = Mat::new_rows_cols_with_default(4, 4, opencv::core::CV_8UC1, Scalar::all(200.0)).unwrap();
        *weights.at_2d_mut::<u8>(3, 3).unwrap() = 7;
        let view = t.index_axis(ndarray::Axis(0), 0);
        let short = weighted_from_tensor(view, &p, &weights).unwrap();
        let long = crate::blend::weighted(from_tensor(view, &p).unwrap(), &weights).unwrap();
        let (a, b) = (short.data_bytes().unwrap(), long.data_bytes().unwrap());
        assert!(a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 1), "{a:?} vs {b:?}");
        assert_eq!(&a[..4], &[10, 20, 255, 200]);
        assert_eq!(a[63], 7, "the weights are the alpha");
    }

    #[test]
    fn wrong_crop_size_is_refused() {
        let p = profile(ChannelOrder::Rgb, [0.0, 1.0]);
        let big = Mat::new_rows_cols_with_default(8, 8, opencv::core::CV_8UC3, Scalar::all(0.0)).unwrap();
        assert!(to_tensor(&[big], &p).unwrap_err().to_string().contains("does not fit"));
    }
}
