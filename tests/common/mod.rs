//! Shared by the end-to-end tests: where the repository, the shared test data and the
//! shipped models are, and small image helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use faceenhance::PixelFormat;
use opencv::core::{Mat, Rect, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// The repository root (the folder with the workspace Cargo.toml).
pub fn repo() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() && std::fs::read_to_string(&manifest).unwrap_or_default().contains("[workspace]") {
            return dir;
        }
        assert!(dir.pop(), "no workspace root above {}", env!("CARGO_MANIFEST_DIR"));
    }
}

/// `../shared` beside the repository (`FACEENHANCE_SHARED` overrides). Tests that need it
/// fail with this message rather than skip: CI has it.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("FACEENHANCE_SHARED").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared"));
    assert!(p.join("data").is_dir(), "test data not found at {} (set FACEENHANCE_SHARED)", p.display());
    p
}

pub fn yunet() -> PathBuf {
    shared().join("models/face_detection_yunet_2022mar.onnx")
}

pub fn real_lq(rel: &str) -> PathBuf {
    shared().join("data/real-lq").join(rel)
}

/// A file the set-up script put in the cache (clips, CenterFace, the astronaut).
pub fn cached(rel: &str) -> PathBuf {
    let p = faceenhance::paths::cache_dir().join(rel);
    assert!(p.is_file(), "{} missing: run scripts/setup.sh", p.display());
    p
}

pub fn astronaut() -> PathBuf {
    cached("data/astronaut.png")
}

pub fn imread(path: &Path) -> Mat {
    let m = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!m.empty(), "cannot read {}", path.display());
    m
}

pub fn resize(m: &Mat, w: i32, h: i32) -> Mat {
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(w, h), 0.0, 0.0, imgproc::INTER_AREA).unwrap();
    out
}

pub fn roi(m: &Mat, x: i32, y: i32, w: i32, h: i32) -> Mat {
    Mat::roi(m, Rect::new(x, y, w, h)).unwrap().try_clone().unwrap()
}

/// Intersection over union of two (x, y, w, h) boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let ih = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// A BGR picture (even sides) as I420 bytes: Y, then U and V at half size, back to back.
pub fn i420_bytes(bgr: &Mat) -> Vec<u8> {
    let mut yuv = Mat::default();
    imgproc::cvt_color_def(bgr, &mut yuv, imgproc::COLOR_BGR2YUV_I420).unwrap();
    yuv.data_bytes().unwrap().to_vec()
}

/// A writable `w` x `h` I420 frame over `planes` (as [`i420_bytes`] lays them out).
pub fn i420_frame(planes: &mut [u8], w: usize, h: usize) -> faceenhance::Frame<'_> {
    let (y, rest) = planes.split_at_mut(w * h);
    let (u, v) = rest.split_at_mut(w * h / 4);
    faceenhance::Frame::new_i420([y, u, v], w as u32, h as u32, [w, w / 2, w / 2]).unwrap()
}

/// Packs BGR into `format` with padding bytes (value 7) after each row and alpha 200.
pub fn pack(bgr: &Mat, format: PixelFormat, pad: usize) -> (Vec<u8>, usize) {
    let (w, h) = (bgr.cols() as usize, bgr.rows() as usize);
    let ch = format.channels();
    let stride = w * ch + pad;
    let mut out = vec![7u8; stride * h];
    let src = bgr.data_bytes().unwrap();
    let [r, g, b] = format.rgb_offsets();
    for y in 0..h {
        for x in 0..w {
            let s = &src[(y * w + x) * 3..][..3];
            let d = y * stride + x * ch;
            if ch == 4 {
                out[d + 3] = 200;
            }
            out[d + b] = s[0];
            out[d + g] = s[1];
            out[d + r] = s[2];
        }
    }
    (out, stride)
}

/// A minimal protobuf writer, enough for ONNX test models (no ONNX tooling needed).
#[derive(Default)]
pub struct Pb(pub Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub fn int(mut self, field: u64, v: i64) -> Self {
        self.varint(field << 3);
        self.varint(v as u64);
        self
    }
    pub fn bytes(mut self, field: u64, b: &[u8]) -> Self {
        self.varint((field << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    pub fn msg(self, field: u64, m: Pb) -> Self {
        self.bytes(field, &m.0)
    }
}

/// ONNX element types the test models use.
pub const F32: i64 = 1;
pub const F16: i64 = 10;
pub const F64: i64 = 11;

/// ValueInfoProto of a float tensor; a negative dim is symbolic (`batch` first, then `d1`..).
fn onnx_value(name: &str, dims: &[i64]) -> Pb {
    onnx_typed_value(name, F32, dims)
}

/// ValueInfoProto of a tensor of element type `elem`.
fn onnx_typed_value(name: &str, elem: i64, dims: &[i64]) -> Pb {
    let mut shape = Pb::default();
    for (i, &d) in dims.iter().enumerate() {
        let sym = if i == 0 { "batch".to_string() } else { format!("d{i}") };
        shape = shape.msg(1, if d < 0 { Pb::default().str(2, &sym) } else { Pb::default().int(1, d) });
    }
    let tensor = Pb::default().int(1, elem).msg(2, shape);
    Pb::default().str(1, name).msg(2, Pb::default().msg(1, tensor))
}

/// AttributeProto of a list of ints.
fn onnx_ints(name: &str, v: &[i64]) -> Pb {
    v.iter().fold(Pb::default().str(1, name).int(20, 7), |p, &x| p.int(8, x))
}

/// AttributeProto of one int.
fn onnx_int(name: &str, v: i64) -> Pb {
    Pb::default().str(1, name).int(3, v).int(20, 2)
}

/// A NodeProto; `attrs` are already-built AttributeProtos.
fn onnx_node(op: &str, inputs: &[&str], output: &str, attrs: Vec<Pb>) -> Pb {
    let node = inputs.iter().fold(Pb::default(), |p, i| p.str(1, i)).str(2, output).str(3, output).str(4, op);
    attrs.into_iter().fold(node, |p, a| p.msg(5, a))
}

/// A float initializer with explicit values.
fn onnx_floats(name: &str, dims: &[i64], values: &[f32]) -> Pb {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    dims.iter().fold(Pb::default(), |p, &d| p.int(1, d)).int(2, F32).str(8, name).bytes(9, &raw)
}

/// What a published model's inputs and outputs look like (FaceFusion's exports).
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    /// Square input side; negative: dynamic height and width (Real-ESRGAN).
    pub size: i64,
    /// Output side / input side.
    pub scale: i64,
    /// CodeFormer's extra `weight` input (float64, shape [1]).
    pub fidelity: bool,
    /// Half-precision image input and output.
    pub f16: bool,
}

/// Per-channel offsets of [`family_model`]'s known-answer function.
const FAMILY_OFFSETS: [f32; 3] = [0.0, 0.2, -0.2];

/// What [`family_model`] gives back, as B, G, R in 0..255, for a pixel whose red is `red`
/// (0..255), fed RGB in `range` with weight `w`: channel c = 0.5 x red + offset c + w in
/// the model's range, mapped back to 0..255 and clipped. Written from the published
/// conventions, not from the code under test.
pub fn family_answer(red: f64, (lo, hi): (f64, f64), w: f64) -> [f64; 3] {
    let red = lo + (hi - lo) * red / 255.0;
    let rgb = FAMILY_OFFSETS.map(|k| ((0.5 * red + k as f64 + w - lo) * 255.0 / (hi - lo)).clamp(0.0, 255.0));
    [rgb[2], rgb[1], rgb[0]]
}

/// A model with exactly the signature of a published family (`input` [1, 3, S, S], plus
/// `weight` for CodeFormer; `output` [1, 3, S x scale, ...]) whose function reveals how it
/// is fed: every output channel c is `0.5 x (input channel 0) + FAMILY_OFFSETS[c]`
/// (+ `weight` when there is one), in the model's own value range, at every pixel. So the
/// colour order (channel 0 is red or blue), the value range (the 0.5 does not commute with
/// a range's offset) and the weight are all visible in the pixels that come back. Writes
/// `{stem}.onnx` only: the profile is the test's business.
pub fn family_model(dir: &Path, stem: &str, sig: Signature) -> PathBuf {
    let k = sig.scale;
    let c = 3 * k * k;
    // 1x1 convolution to c channels; with DepthToSpace (DCR) channel o is colour o % 3.
    let mut w = vec![0.0f32; (c * 3) as usize];
    for o in 0..c as usize {
        w[o * 3] = 0.5;
    }
    let b: Vec<f32> = (0..c as usize).map(|o| FAMILY_OFFSETS[o % 3]).collect();
    let img = if sig.size < 0 { vec![1, 3, -1, -1] } else { vec![1, 3, sig.size, sig.size] };
    let out = if sig.size < 0 { vec![1, 3, -1, -1] } else { vec![1, 3, sig.size * k, sig.size * k] };
    let elem = if sig.f16 { F16 } else { F32 };
    let cast = |to: i64| vec![onnx_int("to", to)];
    let mut graph = Pb::default()
        .str(2, stem)
        .msg(5, onnx_floats("w", &[c, 3, 1, 1], &w))
        .msg(5, onnx_floats("b", &[c], &b))
        .msg(11, onnx_typed_value("input", elem, &img));
    let mut x = "input".to_string();
    if sig.f16 {
        graph = graph.msg(1, onnx_node("Cast", &["input"], "x32", cast(F32)));
        x = "x32".into();
    }
    graph = graph.msg(
        1,
        onnx_node(
            "Conv",
            &[&x, "w", "b"],
            "y",
            vec![onnx_ints("kernel_shape", &[1, 1]), onnx_ints("pads", &[0, 0, 0, 0])],
        ),
    );
    let mut y = "y".to_string();
    if k > 1 {
        graph = graph.msg(1, onnx_depth_to_space("y", "up", k));
        y = "up".into();
    }
    if sig.fidelity {
        graph = graph
            .msg(11, onnx_typed_value("weight", F64, &[1]))
            .msg(1, onnx_node("Cast", &["weight"], "w32", cast(F32)))
            .msg(1, onnx_node("Add", &[&y, "w32"], "yw", vec![]));
        y = "yw".into();
    }
    if sig.f16 {
        graph = graph.msg(1, onnx_node("Cast", &[&y], "output", cast(F16)));
    } else {
        graph = graph.msg(1, onnx_node("Identity", &[&y], "output", vec![]));
    }
    graph = graph.msg(12, onnx_typed_value("output", elem, &out));
    write_onnx(dir, stem, graph)
}

/// A 3x3 convolution, padding 1.
fn onnx_conv(input: &str, weight: &str, output: &str, stride: i64) -> Pb {
    let attrs = vec![
        onnx_ints("pads", &[1, 1, 1, 1]),
        onnx_ints("kernel_shape", &[3, 3]),
        onnx_ints("strides", &[stride, stride]),
    ];
    onnx_node("Conv", &[input, weight], output, attrs)
}

/// A float32 initializer of small pseudo-random values (uniform in +-0.01) from `seed`.
fn onnx_weight(name: &str, dims: [i64; 4], seed: &mut u64) -> Pb {
    onnx_typed_weight(name, dims, F32, seed)
}

/// One step of Knuth's 64-bit linear congruential generator: seeded noise for tests.
pub fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed
}

/// The same values as [`onnx_weight`] stored as `elem` (F32 or F16).
fn onnx_typed_weight(name: &str, dims: [i64; 4], elem: i64, seed: &mut u64) -> Pb {
    let n: i64 = dims.iter().product();
    let mut raw = Vec::with_capacity(n as usize * 4);
    for _ in 0..n {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v = ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02;
        if elem == F16 {
            raw.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
        } else {
            raw.extend_from_slice(&v.to_le_bytes());
        }
    }
    dims.iter().fold(Pb::default(), |p, &d| p.int(1, d)).int(2, elem).str(8, name).bytes(9, &raw)
}

/// A convolutional generator with the restore-64 input: `layers` 3x3 convolutions of 64
/// channels at 64x64 (one shared weight), the last with `out_stride`; written as
/// `{stem}.onnx` with a restore-64-like profile into `dir`. Many layers make an
/// artificially slow model; `out_stride` 2 a model whose output is not what its profile
/// says (its output shape is declared dynamic, so only a run shows it).
pub fn conv_model(dir: &Path, stem: &str, layers: usize, out_stride: i64) -> PathBuf {
    let mut seed = 1u64;
    let out_dims: [i64; 4] = if out_stride == 1 { [-1, 3, 64, 64] } else { [-1, 3, -1, -1] };
    let mut graph = Pb::default()
        .str(2, stem)
        .msg(5, onnx_weight("w_in", [64, 3, 3, 3], &mut seed))
        .msg(5, onnx_weight("w", [64, 64, 3, 3], &mut seed))
        .msg(5, onnx_weight("w_out", [3, 64, 3, 3], &mut seed))
        .msg(11, onnx_value("input", &[-1, 3, 64, 64]))
        .msg(12, onnx_value("output", &out_dims))
        .msg(1, onnx_conv("input", "w_in", "h0", 1));
    for i in 1..=layers {
        graph = graph.msg(1, onnx_conv(&format!("h{}", i - 1), "w", &format!("h{i}"), 1));
    }
    graph = graph.msg(1, onnx_conv(&format!("h{layers}"), "w_out", "output", out_stride));
    let profile =
        format!("name = \"{stem}\"\ninput = \"input\"\noutput = \"output\"\ninput_size = 64\noutput_size = 64\n");
    write_model(dir, stem, graph, &profile)
}

/// Models whose output is not what they declare, only a run shows it (ONNX Runtime's
/// shape inference, which the load checks see, finds nothing wrong with the channels).
#[derive(Clone, Copy, Debug)]
pub enum Misshapen {
    /// The mean over the batch (ReduceMean, keepdims): one image back whatever the batch.
    OneImage,
    /// Batch and channels swapped (Transpose): `[3, batch, 64, 64]`, so one channel back
    /// for one face.
    Transposed,
}

/// A restore-64-shaped model (input `[batch, 3, 64, 64]`, restore-64-like profile,
/// output declared `[batch, c, 64, 64]`) that gives back the wrong shape as `how` says.
pub fn misshapen_model(dir: &Path, stem: &str, how: Misshapen) -> PathBuf {
    let node = match how {
        Misshapen::OneImage => {
            onnx_node("ReduceMean", &["input"], "output", vec![onnx_ints("axes", &[0]), onnx_int("keepdims", 1)])
        }
        Misshapen::Transposed => onnx_node("Transpose", &["input"], "output", vec![onnx_ints("perm", &[1, 0, 2, 3])]),
    };
    let graph = Pb::default()
        .str(2, stem)
        .msg(11, onnx_value("input", &[-1, 3, 64, 64]))
        .msg(12, onnx_value("output", &[-1, -1, 64, 64]))
        .msg(1, node);
    let profile =
        format!("name = \"{stem}\"\ninput = \"input\"\noutput = \"output\"\ninput_size = 64\noutput_size = 64\n");
    write_model(dir, stem, graph, &profile)
}

/// Models that load but are wrong in what they compute or take, with restore-64's profile.
#[derive(Clone, Copy, Debug)]
pub enum Broken {
    /// Output (x - x) / (x - x): NaN everywhere.
    NanOutput,
    /// A float64 image input (cast to float inside): not what any profile feeds.
    DoubleInput,
}

/// A restore-64-shaped model that is broken as `how` says.
pub fn broken_model(dir: &Path, stem: &str, how: Broken) -> PathBuf {
    let (elem, nodes) = match how {
        Broken::NanOutput => (
            F32,
            vec![
                onnx_node("Sub", &["input", "input"], "zero", vec![]),
                onnx_node("Div", &["zero", "zero"], "output", vec![]),
            ],
        ),
        Broken::DoubleInput => (F64, vec![onnx_node("Cast", &["input"], "output", vec![onnx_int("to", F32)])]),
    };
    let graph = Pb::default()
        .str(2, stem)
        .msg(11, onnx_typed_value("input", elem, &[-1, 3, 64, 64]))
        .msg(12, onnx_value("output", &[-1, 3, 64, 64]));
    let graph = nodes.into_iter().fold(graph, |g, n| g.msg(1, n));
    let profile =
        format!("name = \"{stem}\"\ninput = \"input\"\noutput = \"output\"\ninput_size = 64\noutput_size = 64\n");
    write_model(dir, stem, graph, &profile)
}

/// Writes `graph` as `{stem}.onnx` (opset 17) and `profile` as `{stem}.toml` into `dir`.
fn write_model(dir: &Path, stem: &str, graph: Pb, profile: &str) -> PathBuf {
    let path = write_onnx(dir, stem, graph);
    std::fs::write(dir.join(format!("{stem}.toml")), profile).unwrap();
    path
}

/// Writes `graph` as `{stem}.onnx` (opset 17) into `dir`.
fn write_onnx(dir: &Path, stem: &str, graph: Pb) -> PathBuf {
    let model = Pb::default().int(1, 8).str(2, "faceenhance-tests").msg(7, graph).msg(8, Pb::default().int(2, 17));
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{stem}.onnx"));
    std::fs::write(&path, model.0).unwrap();
    path
}

/// DepthToSpace (DCR) by `factor`: the sub-pixel up-sampling of Real-ESRGAN-shaped models.
fn onnx_depth_to_space(input: &str, output: &str, factor: i64) -> Pb {
    let mode = Pb::default().str(1, "mode").bytes(4, b"DCR").int(20, 3);
    onnx_node("DepthToSpace", &[input], output, vec![onnx_int("blocksize", factor), mode])
}

/// The profile of a whole-frame (background) model whose tiles are `tile` px.
fn background_profile(stem: &str, tile: i64, factor: i64) -> String {
    format!(
        "kind = \"background\"\nname = \"{stem}\"\ninput = \"input\"\noutput = \"output\"\ninput_size = {tile}\n\
         output_size = {}\n",
        tile * factor
    )
}

/// A Real-ESRGAN-shaped background model: input `[batch, 3, H, W]` with dynamic H and W,
/// two 3x3 convolutions (so a receptive radius of 2 px) and DepthToSpace to `factor`x the
/// size. The first convolution copies each input channel into its `factor`^2 sub-pixel
/// channels and mixes in small random neighbours, so the output is a slightly filtered
/// nearest-neighbour enlargement: a real function of the picture, not a constant. Writes
/// `{stem}.onnx` and a `kind = "background"` profile whose tiles are `tile` px.
pub fn sr_model(dir: &Path, stem: &str, factor: i64, tile: i64) -> PathBuf {
    let mut seed = 7u64;
    let c = 3 * factor * factor;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
    };
    let weight = |name: &str, dims: [i64; 4], centre: &dyn Fn(i64, i64) -> f32, next: &mut dyn FnMut() -> f32| {
        let mut raw = Vec::new();
        for o in 0..dims[0] {
            for i in 0..dims[1] {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let v = next() + if ky == 1 && kx == 1 { centre(o, i) } else { 0.0 };
                        raw.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        dims.iter().fold(Pb::default(), |p, &d| p.int(1, d)).int(2, 1).str(8, name).bytes(9, &raw)
    };
    // DCR depth-to-space: output channel o = (sub-pixel) * 3 + colour.
    let w1 = weight("w1", [c, 3, 3, 3], &|o, i| if o % 3 == i { 0.9 } else { 0.0 }, &mut next);
    let w2 = weight("w2", [c, c, 3, 3], &|o, i| if o == i { 1.0 } else { 0.0 }, &mut next);
    let graph = Pb::default()
        .str(2, stem)
        .msg(5, w1)
        .msg(5, w2)
        .msg(11, onnx_value("input", &[-1, 3, -1, -1]))
        .msg(12, onnx_value("output", &[-1, 3, -1, -1]))
        .msg(1, onnx_conv("input", "w1", "h1", 1))
        .msg(1, onnx_conv("h1", "w2", "h2", 1))
        .msg(1, onnx_depth_to_space("h2", "output", factor));
    write_model(dir, stem, graph, &background_profile(stem, tile, factor))
}

/// Luma (BT.601) of a BGR u8 image as f64.
fn luma(bgr: &Mat) -> Mat {
    let mut y = Mat::default();
    imgproc::cvt_color_def(bgr, &mut y, imgproc::COLOR_BGR2GRAY).unwrap();
    let mut f = Mat::default();
    y.convert_to(&mut f, opencv::core::CV_64F, 1.0, 0.0).unwrap();
    f
}

/// PSNR (dB, peak 255) of two BGR u8 images on Y.
/// Largest per-byte difference between `a` and `b` outside the `regions` (x, y, w, h):
/// 0 when only those regions changed.
pub fn max_diff_outside(a: &Mat, b: &Mat, regions: &[[i32; 4]]) -> f64 {
    let mut d = Mat::default();
    opencv::core::absdiff(a, b, &mut d).unwrap();
    for r in regions {
        let full = Rect::new(0, 0, d.cols(), d.rows());
        let rect = Rect::new(r[0], r[1], r[2], r[3]) & full;
        if rect.width > 0 && rect.height > 0 {
            Mat::roi_mut(&mut d, rect).unwrap().set_to_def(&opencv::core::Scalar::all(0.0)).unwrap();
        }
    }
    let mut max = 0.0;
    opencv::core::min_max_loc(&d.reshape(1, 0).unwrap(), None, Some(&mut max), None, None, &opencv::core::no_array())
        .unwrap();
    max
}

pub fn psnr_y(a: &Mat, b: &Mat) -> f64 {
    let mut d = Mat::default();
    opencv::core::subtract_def(&luma(a), &luma(b), &mut d).unwrap();
    let mse = d.dot(&d).unwrap() / (d.rows() * d.cols()) as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// SSIM on Y with the usual 11x11 Gaussian window (sigma 1.5), mean over the image.
pub fn ssim_y(a: &Mat, b: &Mat) -> f64 {
    use opencv::core::{multiply_def, BORDER_REFLECT};
    let (x, y) = (luma(a), luma(b));
    let blur = |m: &Mat| {
        let mut o = Mat::default();
        imgproc::gaussian_blur(m, &mut o, Size::new(11, 11), 1.5, 1.5, BORDER_REFLECT).unwrap();
        o
    };
    let mul = |p: &Mat, q: &Mat| {
        let mut o = Mat::default();
        multiply_def(p, q, &mut o).unwrap();
        o
    };
    let (mx, my) = (blur(&x), blur(&y));
    let (sxx, syy, sxy) = (blur(&mul(&x, &x)), blur(&mul(&y, &y)), blur(&mul(&x, &y)));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (n, w) = (x.rows() as usize * x.cols() as usize, x.cols());
    let mut total = 0.0;
    for i in 0..n as i32 {
        let at = |m: &Mat| *m.at_2d::<f64>(i / w, i % w).unwrap();
        let (ux, uy) = (at(&mx), at(&my));
        let (vx, vy, cxy) = (at(&sxx) - ux * ux, at(&syy) - uy * uy, at(&sxy) - ux * uy);
        total += ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    }
    total / n as f64
}

/// A model with the cost of Real-ESRGAN's compact generator (SRVGGNetCompact, as in
/// realesr-general-x4v3: `convs` 3x3 convolutions of `feats` channels with ReLU, then
/// DepthToSpace), random weights: for timing the tiled background path, not for pictures.
pub fn compact_sr_model(dir: &Path, stem: &str, factor: i64, tile: i64, feats: i64, convs: usize) -> PathBuf {
    let mut seed = 11u64;
    let c = 3 * factor * factor;
    let mut graph = Pb::default()
        .str(2, stem)
        .msg(5, onnx_weight("w_in", [feats, 3, 3, 3], &mut seed))
        .msg(5, onnx_weight("w", [feats, feats, 3, 3], &mut seed))
        .msg(5, onnx_weight("w_out", [c, feats, 3, 3], &mut seed))
        .msg(11, onnx_value("input", &[-1, 3, -1, -1]))
        .msg(12, onnx_value("output", &[-1, 3, -1, -1]))
        .msg(1, onnx_conv("input", "w_in", "h0", 1));
    for i in 1..=convs {
        graph = graph
            .msg(1, onnx_conv(&format!("h{}", i - 1), "w", &format!("c{i}"), 1))
            .msg(1, onnx_node("Relu", &[&format!("c{i}")], &format!("h{i}"), vec![]));
    }
    graph = graph
        .msg(1, onnx_conv(&format!("h{convs}"), "w_out", "up", 1))
        .msg(1, onnx_depth_to_space("up", "output", factor));
    write_model(dir, stem, graph, &background_profile(stem, tile, factor))
}

/// A timing stand-in for a 512 px restorer of GFPGAN's class (random weights, not for
/// pictures): a U-Net of 3x3 convolutions with ReLU, 32-64-128-256-256 channels down to
/// 32x32 (stride 2), two convolutions there, and back up by DepthToSpace, about 21 GFLOPs
/// per face. Input/output `[batch, 3, 512, 512]`; `f16` writes a half-precision copy (all
/// weights and tensors float16), as an fp16 export would be. Writes a GFPGAN-like profile.
pub fn unet512_model(dir: &Path, stem: &str, f16: bool) -> PathBuf {
    let mut seed = 5u64;
    let elem = if f16 { F16 } else { F32 };
    let mut weight = |name: &str, o: i64, i: i64| onnx_typed_weight(name, [o, i, 3, 3], elem, &mut seed);
    let relu = |x: &str, y: &str| onnx_node("Relu", &[x], y, vec![]);
    let mut graph = Pb::default().str(2, stem).msg(11, onnx_typed_value("input", elem, &[-1, 3, 512, 512]));
    let mut x = "input".to_string();
    let mut layer = 0;
    let mut conv = |graph: Pb, x: &str, o: i64, i: i64, stride: i64, act: bool| -> (Pb, String) {
        layer += 1;
        let (w, c, y) = (format!("w{layer}"), format!("c{layer}"), format!("h{layer}"));
        let g = graph.msg(5, weight(&w, o, i)).msg(1, onnx_conv(x, &w, &c, stride));
        if act {
            (g.msg(1, relu(&c, &y)), y)
        } else {
            (g, c)
        }
    };
    let down = [(32, 3, 1), (64, 32, 2), (128, 64, 2), (256, 128, 2), (256, 256, 2), (256, 256, 1), (256, 256, 1)];
    for (o, i, stride) in down {
        (graph, x) = conv(graph, &x, o, i, stride, true);
    }
    // Up: 256@32 -> 128@64 -> 64@128 -> 32@256 -> 16@512, each a convolution to 4x the
    // channels and DepthToSpace by 2.
    for (i, o) in [(256, 128), (128, 64), (64, 32), (32, 16)] {
        let (g, c) = conv(graph, &x, 4 * o, i, 1, true);
        let y = format!("{c}_up");
        graph = g.msg(1, onnx_depth_to_space(&c, &y, 2));
        x = y;
    }
    let (g, c) = conv(graph, &x, 3, 16, 1, false);
    graph = g
        .msg(1, onnx_node("Identity", &[&c], "output", vec![]))
        .msg(12, onnx_typed_value("output", elem, &[-1, 3, 512, 512]));
    let profile =
        format!("name = \"{stem}\"\ninput_size = 512\noutput_size = 512\nrange = [-1.0, 1.0]\ntemplate = \"ffhq5\"\n");
    write_model(dir, stem, graph, &profile)
}
