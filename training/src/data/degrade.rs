//! Synthetic degradations in the Real-ESRGAN / GFPGAN line: blur (Gaussian, anisotropic,
//! motion), down-scaling with random kernels, Gaussian and Poisson noise, real JPEG
//! (OpenCV), H.264-like block-transform quantisation, colour jitter, grayscale, and a
//! second-order pass. Everything is driven by a caller-supplied RNG, so a seed fixes the
//! result.

use anyhow::Result;
use opencv::core::{Mat, Point, Scalar, Vector, BORDER_REFLECT_101, CV_32F};
use opencv::imgproc;
use opencv::prelude::*;
use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson};
use serde::{Deserialize, Serialize};

use crate::image::Img;

/// Interpolation flags used for random down/up-scaling.
const INTERPS: [i32; 3] = [imgproc::INTER_AREA, imgproc::INTER_LINEAR, imgproc::INTER_CUBIC];

/// Parameters of the degradation model (all probabilities in [0, 1]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct DegradeConfig {
    pub blur_prob: f32,
    /// Gaussian sigma range in pixels of the 64 px crop.
    pub blur_sigma: [f32; 2],
    pub motion_prob: f32,
    /// Motion-blur length range (pixels).
    pub motion_len: [usize; 2],
    /// Down-scale factor range (1 = none); sampled log-uniformly; the image is brought back
    /// to its size with a random interpolation.
    pub down_range: [f32; 2],
    pub down_prob: f32,
    pub gauss_noise_prob: f32,
    /// Gaussian noise sigma range, in 1/255 units.
    pub noise_sigma: [f32; 2],
    pub poisson_prob: f32,
    /// Poisson scale: photons at full white, log-uniform.
    pub poisson_peak: [f32; 2],
    pub gray_noise_prob: f32,
    pub jpeg_prob: f32,
    pub jpeg_quality: [i32; 2],
    pub block_prob: f32,
    /// Quantiser step range for the block transform (in 1/255 units of DC).
    pub block_qstep: [f32; 2],
    pub second_order_prob: f32,
    pub color_jitter_prob: f32,
    pub gray_prob: f32,
    /// SR only: probability that the low-resolution input is the learned degradation
    /// generator's output (`learned_model`, an ONNX file exported by `degrade-export`)
    /// instead of the synthetic pipeline. 0 (the default) draws nothing from the RNG, so
    /// configs without it see exactly the batches they saw before.
    pub learned_prob: f32,
    pub learned_model: Option<std::path::PathBuf>,
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self {
            blur_prob: 0.7,
            blur_sigma: [0.3, 2.0],
            motion_prob: 0.1,
            motion_len: [3, 9],
            down_range: [1.0, 4.0],
            down_prob: 0.7,
            gauss_noise_prob: 0.5,
            noise_sigma: [1.0, 12.0],
            poisson_prob: 0.2,
            poisson_peak: [30.0, 500.0],
            gray_noise_prob: 0.3,
            jpeg_prob: 0.8,
            jpeg_quality: [30, 90],
            block_prob: 0.2,
            block_qstep: [4.0, 24.0],
            second_order_prob: 0.4,
            color_jitter_prob: 0.1,
            gray_prob: 0.03,
            learned_prob: 0.0,
            learned_model: None,
        }
    }
}

fn uniform<R: Rng>(rng: &mut R, r: [f32; 2]) -> f32 {
    if r[1] <= r[0] {
        r[0]
    } else {
        rng.gen_range(r[0]..r[1])
    }
}

fn log_uniform<R: Rng>(rng: &mut R, r: [f32; 2]) -> f32 {
    uniform(rng, [r[0].ln(), r[1].ln()]).exp()
}

/// Convolve every channel with `kernel` (reflect-101 border), via OpenCV `filter2D`.
pub fn convolve(img: &Img, kernel: &[f32], kw: usize, kh: usize) -> Result<Img> {
    let src = img.to_mat_f32()?;
    let mut k = Mat::new_rows_cols_with_default(kh as i32, kw as i32, CV_32F, Scalar::all(0.0))?;
    k.data_typed_mut::<f32>()?.copy_from_slice(kernel);
    let mut dst = Mat::default();
    imgproc::filter_2d(&src, &mut dst, -1, &k, Point::new(-1, -1), 0.0, BORDER_REFLECT_101)?;
    Img::from_mat_f32(&dst)
}

/// Anisotropic Gaussian kernel (sigma_x, sigma_y, rotation theta), normalised, odd size.
pub fn gaussian_kernel(sx: f32, sy: f32, theta: f32) -> (Vec<f32>, usize) {
    let r = (3.0 * sx.max(sy)).ceil().max(1.0) as i32;
    let size = (2 * r + 1) as usize;
    let (c, s) = (theta.cos(), theta.sin());
    let mut k = Vec::with_capacity(size * size);
    for y in -r..=r {
        for x in -r..=r {
            let (xf, yf) = (x as f32, y as f32);
            let u = c * xf + s * yf;
            let v = -s * xf + c * yf;
            k.push((-(u * u) / (2.0 * sx * sx) - (v * v) / (2.0 * sy * sy)).exp());
        }
    }
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    (k, size)
}

/// Linear motion-blur kernel of `len` pixels at angle `theta`, normalised.
pub fn motion_kernel(len: usize, theta: f32) -> (Vec<f32>, usize) {
    let size = len | 1;
    let c = (size / 2) as f32;
    let mut k = vec![0.0f32; size * size];
    let steps = 4 * size;
    for i in 0..=steps {
        let t = i as f32 / steps as f32 - 0.5;
        let x = (c + t * (len as f32 - 1.0) * theta.cos()).round() as usize;
        let y = (c + t * (len as f32 - 1.0) * theta.sin()).round() as usize;
        k[y.min(size - 1) * size + x.min(size - 1)] = 1.0;
    }
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    (k, size)
}

pub fn gaussian_blur(img: &Img, sx: f32, sy: f32, theta: f32) -> Result<Img> {
    let (k, n) = gaussian_kernel(sx, sy, theta);
    convolve(img, &k, n, n)
}

pub fn motion_blur(img: &Img, len: usize, theta: f32) -> Result<Img> {
    let (k, n) = motion_kernel(len, theta);
    convolve(img, &k, n, n)
}

/// Additive Gaussian noise with standard deviation `sigma` (in [0,1] units); `gray` uses one
/// noise field for all channels. Not clamped.
pub fn gaussian_noise<R: Rng>(img: &Img, sigma: f32, gray: bool, rng: &mut R) -> Img {
    let normal = Normal::new(0.0f32, sigma.max(1e-8)).expect("sigma");
    let mut out = img.clone();
    for p in out.data.chunks_exact_mut(3) {
        if gray {
            let n = normal.sample(rng);
            p.iter_mut().for_each(|v| *v += n);
        } else {
            p.iter_mut().for_each(|v| *v += normal.sample(rng));
        }
    }
    out
}

/// Poisson (shot) noise: `peak` photons at full white.
pub fn poisson_noise<R: Rng>(img: &Img, peak: f32, gray: bool, rng: &mut R) -> Img {
    let sample = |v: f32, rng: &mut R| -> f32 {
        let lambda = (v.clamp(0.0, 1.0) * peak) as f64;
        if lambda <= 0.0 {
            return 0.0;
        }
        Poisson::new(lambda).map(|d| d.sample(rng) as f32 / peak).unwrap_or(v)
    };
    let mut out = img.clone();
    for p in out.data.chunks_exact_mut(3) {
        if gray {
            let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
            let d = sample(y, rng) - y;
            p.iter_mut().for_each(|v| *v += d);
        } else {
            for v in p.iter_mut() {
                *v = sample(*v, rng);
            }
        }
    }
    out
}

/// Real JPEG round trip through OpenCV's encoder at `quality` (1..100).
pub fn jpeg(img: &Img, quality: i32) -> Result<Img> {
    let m = img.to_mat_bgr8()?;
    let mut buf = Vector::<u8>::new();
    let params = Vector::from_slice(&[opencv::imgcodecs::IMWRITE_JPEG_QUALITY, quality.clamp(1, 100)]);
    opencv::imgcodecs::imencode(".jpg", &m, &mut buf, &params)?;
    let dec = opencv::imgcodecs::imdecode(&buf, opencv::imgcodecs::IMREAD_COLOR)?;
    Img::from_mat_bgr8(&dec)
}

fn dct_matrix(n: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; n * n];
    for k in 0..n {
        let a = if k == 0 { (1.0 / n as f32).sqrt() } else { (2.0 / n as f32).sqrt() };
        for i in 0..n {
            m[k * n + i] = a * (std::f32::consts::PI * (2 * i + 1) as f32 * k as f32 / (2 * n) as f32).cos();
        }
    }
    m
}

/// H.264-like blocking: each `block` x `block` tile of each YCbCr plane is transformed with
/// an orthonormal DCT, its coefficients quantised with step `qstep` (in [0,1] units; higher
/// frequencies and chroma get coarser steps, as codecs do), and transformed back.
pub fn block_quantize(img: &Img, block: usize, qstep: f32) -> Img {
    let (w, h) = (img.w, img.h);
    // RGB -> YCbCr (BT.601, full range)
    let mut planes = vec![vec![0.0f32; w * h]; 3];
    for (i, p) in img.data.chunks_exact(3).enumerate() {
        let (r, g, b) = (p[0], p[1], p[2]);
        planes[0][i] = 0.299 * r + 0.587 * g + 0.114 * b;
        planes[1][i] = -0.168_736 * r - 0.331_264 * g + 0.5 * b;
        planes[2][i] = 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    }
    let n = block;
    let d = dct_matrix(n);
    let mut tile = vec![0.0f32; n * n];
    let mut tmp = vec![0.0f32; n * n];
    for (pi, plane) in planes.iter_mut().enumerate() {
        let chroma = if pi == 0 { 1.0 } else { 2.0 };
        for by in (0..h).step_by(n) {
            for bx in (0..w).step_by(n) {
                // gather with edge replication
                for y in 0..n {
                    for x in 0..n {
                        tile[y * n + x] = plane[(by + y).min(h - 1) * w + (bx + x).min(w - 1)];
                    }
                }
                // forward: C = D X D^T
                matmul(&d, &tile, &mut tmp, n, false, false);
                matmul(&tmp, &d, &mut tile, n, false, true);
                for v in 0..n {
                    for u in 0..n {
                        let f = 1.0 + (u + v) as f32 * 8.0 / n as f32 * 0.35;
                        let q = qstep * chroma * f * n as f32 / 8.0;
                        let c = &mut tile[v * n + u];
                        *c = (*c / q).round() * q;
                    }
                }
                // inverse: X = D^T C D
                matmul(&d, &tile, &mut tmp, n, true, false);
                matmul(&tmp, &d, &mut tile, n, false, false);
                for y in 0..n.min(h - by) {
                    for x in 0..n.min(w - bx) {
                        plane[(by + y) * w + bx + x] = tile[y * n + x];
                    }
                }
            }
        }
    }
    let mut out = img.clone();
    for (i, p) in out.data.chunks_exact_mut(3).enumerate() {
        let (y, cb, cr) = (planes[0][i], planes[1][i], planes[2][i]);
        p[0] = y + 1.402 * cr;
        p[1] = y - 0.344_136 * cb - 0.714_136 * cr;
        p[2] = y + 1.772 * cb;
    }
    out
}

/// out = op(a) * op(b) for n x n matrices; `ta`/`tb` transpose the operand.
fn matmul(a: &[f32], b: &[f32], out: &mut [f32], n: usize, ta: bool, tb: bool) {
    for i in 0..n {
        for j in 0..n {
            let mut s = 0.0;
            for k in 0..n {
                let av = if ta { a[k * n + i] } else { a[i * n + k] };
                let bv = if tb { b[j * n + k] } else { b[k * n + j] };
                s += av * bv;
            }
            out[i * n + j] = s;
        }
    }
}

/// Brightness, contrast and saturation jitter.
pub fn color_jitter(img: &Img, brightness: f32, contrast: f32, saturation: f32) -> Img {
    let mean: f32 = img.data.iter().sum::<f32>() / img.data.len() as f32;
    let mut out = img.clone();
    for p in out.data.chunks_exact_mut(3) {
        let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        for v in p.iter_mut() {
            let s = y + (*v - y) * saturation;
            *v = (s - mean) * contrast + mean + brightness;
        }
    }
    out
}

pub fn grayscale(img: &Img) -> Img {
    let mut out = img.clone();
    for p in out.data.chunks_exact_mut(3) {
        let y = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
        p.iter_mut().for_each(|v| *v = y);
    }
    out
}

/// Down-scale by `factor` with a random anti-alias kernel and interpolation, then (when
/// `back` is true) up-scale to the original size with a random interpolation.
pub fn down_up<R: Rng>(img: &Img, factor: f32, back: bool, rng: &mut R) -> Result<Img> {
    if factor <= 1.01 {
        return Ok(img.clone());
    }
    let (w, h) = (img.w, img.h);
    let lw = ((w as f32 / factor).round() as usize).max(2);
    let lh = ((h as f32 / factor).round() as usize).max(2);
    // random kernel: a Gaussian pre-filter of random width (sometimes none: aliasing)
    let pre = if rng.gen_bool(0.7) {
        let s = factor * rng.gen_range(0.25..0.6);
        gaussian_blur(img, s, s * rng.gen_range(0.8..1.25), rng.gen_range(0.0..std::f32::consts::PI))?
    } else {
        img.clone()
    };
    let small = pre.resize(lw, lh, INTERPS[rng.gen_range(0..INTERPS.len())])?;
    if !back {
        return Ok(small);
    }
    let up = [imgproc::INTER_LINEAR, imgproc::INTER_CUBIC, imgproc::INTER_NEAREST];
    let i = if rng.gen_bool(0.1) { 2 } else { rng.gen_range(0..2) };
    small.resize(w, h, up[i])
}

fn blur_stage<R: Rng>(img: Img, cfg: &DegradeConfig, weaker: f32, rng: &mut R) -> Result<Img> {
    if rng.gen::<f32>() < cfg.motion_prob * weaker {
        let len = rng.gen_range(cfg.motion_len[0]..=cfg.motion_len[1].max(cfg.motion_len[0]));
        return motion_blur(&img, len, rng.gen_range(0.0..std::f32::consts::PI));
    }
    if rng.gen::<f32>() < cfg.blur_prob * weaker {
        let s = uniform(rng, [cfg.blur_sigma[0], cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * weaker]);
        let sy = if rng.gen_bool(0.5) { s } else { s * rng.gen_range(0.5..1.5) };
        return gaussian_blur(&img, s, sy, rng.gen_range(0.0..std::f32::consts::PI));
    }
    Ok(img)
}

fn noise_stage<R: Rng>(img: Img, cfg: &DegradeConfig, weaker: f32, rng: &mut R) -> Img {
    let gray = rng.gen::<f32>() < cfg.gray_noise_prob;
    if rng.gen::<f32>() < cfg.gauss_noise_prob {
        let sigma = uniform(rng, [cfg.noise_sigma[0], cfg.noise_sigma[1] * weaker.max(0.3)]) / 255.0;
        gaussian_noise(&img, sigma, gray, rng)
    } else if rng.gen::<f32>() < cfg.poisson_prob {
        poisson_noise(&img, log_uniform(rng, cfg.poisson_peak), gray, rng)
    } else {
        img
    }
}

fn compress_stage<R: Rng>(img: Img, cfg: &DegradeConfig, rng: &mut R) -> Result<Img> {
    let img = img.clamp();
    if rng.gen::<f32>() < cfg.block_prob {
        let block = if rng.gen_bool(0.5) { 8 } else { 16 };
        return Ok(block_quantize(&img, block, uniform(rng, cfg.block_qstep) / 255.0).clamp());
    }
    if rng.gen::<f32>() < cfg.jpeg_prob {
        let q = rng.gen_range(cfg.jpeg_quality[0]..=cfg.jpeg_quality[1]);
        return jpeg(&img, q);
    }
    Ok(img)
}

/// Full (optionally second-order) degradation of a clean image; output has the same size
/// and is clamped to [0, 1]. Returns (degraded, target) because grayscale changes both.
pub fn degrade_restore<R: Rng>(clean: &Img, cfg: &DegradeConfig, rng: &mut R) -> Result<(Img, Img)> {
    let mut target = clean.clone();
    if rng.gen::<f32>() < cfg.gray_prob {
        target = grayscale(&target);
    }
    let mut x = blur_stage(target.clone(), cfg, 1.0, rng)?;
    if rng.gen::<f32>() < cfg.down_prob {
        x = down_up(&x, log_uniform(rng, cfg.down_range), true, rng)?;
    }
    x = noise_stage(x, cfg, 1.0, rng);
    x = compress_stage(x, cfg, rng)?;
    if rng.gen::<f32>() < cfg.second_order_prob {
        x = blur_stage(x, cfg, 0.5, rng)?;
        if rng.gen::<f32>() < cfg.down_prob * 0.5 {
            x = down_up(&x, log_uniform(rng, [1.0, cfg.down_range[1].sqrt().max(1.0)]), true, rng)?;
        }
        x = noise_stage(x, cfg, 0.5, rng);
        x = compress_stage(x, cfg, rng)?;
    }
    if rng.gen::<f32>() < cfg.color_jitter_prob {
        x = color_jitter(&x, rng.gen_range(-0.05..0.05), rng.gen_range(0.9..1.1), rng.gen_range(0.85..1.15));
    }
    Ok((x.clamp(), target))
}

/// Degradation for x`scale` super-resolution: blur at the high resolution, down-scale by
/// `scale` with a random kernel, then noise and compression at the low resolution (and an
/// optional second pass). Returns (low-res input, high-res target).
pub fn degrade_sr<R: Rng>(clean: &Img, scale: usize, cfg: &DegradeConfig, rng: &mut R) -> Result<(Img, Img)> {
    let mut target = clean.clone();
    if rng.gen::<f32>() < cfg.gray_prob {
        target = grayscale(&target);
    }
    let x = blur_stage(target.clone(), cfg, 0.6, rng)?;
    let mut x = down_up(&x, scale as f32, false, rng)?;
    if x.w != clean.w / scale || x.h != clean.h / scale {
        x = x.resize(clean.w / scale, clean.h / scale, imgproc::INTER_AREA)?;
    }
    x = noise_stage(x, cfg, 0.5, rng);
    x = compress_stage(x, cfg, rng)?;
    if rng.gen::<f32>() < cfg.second_order_prob * 0.5 {
        x = noise_stage(x, cfg, 0.3, rng);
        x = compress_stage(x, cfg, rng)?;
    }
    if rng.gen::<f32>() < cfg.color_jitter_prob {
        x = color_jitter(&x, rng.gen_range(-0.05..0.05), rng.gen_range(0.9..1.1), rng.gen_range(0.85..1.15));
    }
    Ok((x.clamp(), target))
}

/// Plain area down-scaling by `s` (OpenCV `INTER_AREA`, the block average for integer `s`).
pub fn area(img: &Img, s: usize) -> Result<Img> {
    img.resize(img.w / s, img.h / s, opencv::imgproc::INTER_AREA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A textured test image: smooth gradients plus a checkerboard and fine stripes.
    fn test_image(n: usize) -> Img {
        let mut img = Img::new(n, n);
        for y in 0..n {
            for x in 0..n {
                let checker = if (x / 4 + y / 4) % 2 == 0 { 0.25 } else { -0.25 };
                let stripes = if x % 2 == 0 { 0.1 } else { -0.1 };
                let base = 0.5 + 0.2 * ((x as f32) / n as f32 - 0.5);
                img.data[(y * n + x) * 3] = (base + checker).clamp(0.0, 1.0);
                img.data[(y * n + x) * 3 + 1] = (base + stripes).clamp(0.0, 1.0);
                img.data[(y * n + x) * 3 + 2] = (0.4 + checker * 0.5 + stripes).clamp(0.0, 1.0);
            }
        }
        img
    }

    /// Energy of the discrete Laplacian (a high-frequency measure).
    fn hf_energy(img: &Img) -> f32 {
        let mut e = 0.0;
        for y in 1..img.h - 1 {
            for x in 1..img.w - 1 {
                for c in 0..3 {
                    let l = 4.0 * img.at(x, y, c)
                        - img.at(x - 1, y, c)
                        - img.at(x + 1, y, c)
                        - img.at(x, y - 1, c)
                        - img.at(x, y + 1, c);
                    e += l * l;
                }
            }
        }
        e
    }

    fn variance(v: &[f32]) -> f32 {
        let m = v.iter().sum::<f32>() / v.len() as f32;
        v.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / v.len() as f32
    }

    fn mean_abs_diff(a: &Img, b: &Img) -> f32 {
        a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.data.len() as f32
    }

    #[test]
    fn gaussian_blur_lowers_high_frequencies_and_keeps_mean() {
        let img = test_image(64);
        let b = gaussian_blur(&img, 1.5, 1.5, 0.0).unwrap();
        assert!(hf_energy(&b) < 0.2 * hf_energy(&img), "{} vs {}", hf_energy(&b), hf_energy(&img));
        let (m0, m1) = (img.data.iter().sum::<f32>(), b.data.iter().sum::<f32>());
        assert!((m0 - m1).abs() / m0 < 0.01);
        let (k, n) = gaussian_kernel(2.0, 1.0, 0.3);
        assert_eq!(n % 2, 1);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn motion_blur_is_directional() {
        let img = test_image(64);
        // horizontal motion blur removes the vertical stripes of the green channel (period 2
        // in x) but leaves a pure vertical structure alone.
        let b = motion_blur(&img, 7, 0.0).unwrap();
        assert!(hf_energy(&b) < 0.5 * hf_energy(&img));
        let mut rows = Img::new(32, 32);
        for y in 0..32 {
            for x in 0..32 {
                for c in 0..3 {
                    rows.data[(y * 32 + x) * 3 + c] = if y % 2 == 0 { 0.8 } else { 0.2 };
                }
            }
        }
        let bh = motion_blur(&rows, 7, 0.0).unwrap();
        assert!(mean_abs_diff(&bh, &rows) < 1e-4, "horizontal blur of horizontal lines");
        let bv = motion_blur(&rows, 7, std::f32::consts::FRAC_PI_2).unwrap();
        assert!(mean_abs_diff(&bv, &rows) > 0.1, "vertical blur of horizontal lines");
    }

    #[test]
    fn gaussian_noise_adds_sigma_squared_variance() {
        let img = Img::filled(128, 128, [0.5, 0.5, 0.5]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let sigma = 0.05;
        let n = gaussian_noise(&img, sigma, false, &mut rng);
        let var = variance(&n.data);
        assert!((var - sigma * sigma).abs() < 0.1 * sigma * sigma, "var {var}");
        // seeded: same seed, same noise
        let n2 = gaussian_noise(&img, sigma, false, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(n, n2);
    }

    #[test]
    fn poisson_noise_variance_follows_signal() {
        let peak = 100.0;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let lo = poisson_noise(&Img::filled(128, 128, [0.1; 3]), peak, false, &mut rng);
        let hi = poisson_noise(&Img::filled(128, 128, [0.8; 3]), peak, false, &mut rng);
        // var = v / peak for Poisson counts scaled by 1/peak
        let (vl, vh) = (variance(&lo.data), variance(&hi.data));
        assert!((vl - 0.1 / peak).abs() < 0.15 * 0.1 / peak, "{vl}");
        assert!((vh - 0.8 / peak).abs() < 0.15 * 0.8 / peak, "{vh}");
        let mean = hi.data.iter().sum::<f32>() / hi.data.len() as f32;
        assert!((mean - 0.8).abs() < 0.01);
    }

    /// Mean absolute jump across 8-px block borders vs. inside blocks.
    fn blockiness(img: &Img, b: usize) -> (f32, f32) {
        let (mut edge, mut inner, mut ne, mut ni) = (0.0, 0.0, 0, 0);
        for y in 0..img.h {
            for x in 0..img.w - 1 {
                let d = (0..3).map(|c| (img.at(x + 1, y, c) - img.at(x, y, c)).abs()).sum::<f32>();
                if (x + 1) % b == 0 {
                    edge += d;
                    ne += 1;
                } else {
                    inner += d;
                    ni += 1;
                }
            }
        }
        (edge / ne as f32, inner / ni as f32)
    }

    fn smooth_image(n: usize) -> Img {
        let mut img = Img::new(n, n);
        for y in 0..n {
            for x in 0..n {
                let (fx, fy) = (x as f32 / n as f32, y as f32 / n as f32);
                img.data[(y * n + x) * 3] = 0.2 + 0.6 * fx;
                img.data[(y * n + x) * 3 + 1] = 0.3 + 0.4 * (fx * fy * 6.0).sin().abs();
                img.data[(y * n + x) * 3 + 2] = 0.7 - 0.5 * fy;
            }
        }
        img
    }

    #[test]
    fn jpeg_q10_changes_image_and_has_8x8_block_edges() {
        let img = smooth_image(64);
        let j = jpeg(&img, 10).unwrap();
        assert!(mean_abs_diff(&j, &img) > 0.005);
        let (edge, inner) = blockiness(&j, 8);
        assert!(edge > 1.5 * inner, "edge {edge} inner {inner}");
        let j95 = jpeg(&img, 95).unwrap();
        assert!(mean_abs_diff(&j95, &img) < mean_abs_diff(&j, &img));
    }

    #[test]
    fn block_quantize_makes_block_edges_and_is_identity_at_tiny_step() {
        let img = smooth_image(64);
        let q = block_quantize(&img, 16, 40.0 / 255.0);
        let (edge, inner) = blockiness(&q, 16);
        assert!(mean_abs_diff(&q, &img) > 0.003);
        assert!(edge > 1.5 * inner, "edge {edge} inner {inner}");
        let id = block_quantize(&img, 8, 1e-6);
        assert!(mean_abs_diff(&id, &img) < 1e-4);
    }

    #[test]
    fn down_up_loses_detail_and_keeps_size() {
        let img = test_image(64);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let d = down_up(&img, 4.0, true, &mut rng).unwrap();
        assert_eq!((d.w, d.h), (64, 64));
        assert!(hf_energy(&d) < 0.5 * hf_energy(&img));
        let small = down_up(&img, 8.0, false, &mut rng).unwrap();
        assert_eq!((small.w, small.h), (8, 8));
    }

    #[test]
    fn color_jitter_and_grayscale() {
        let img = test_image(32);
        let g = grayscale(&img);
        for p in g.data.chunks_exact(3) {
            assert!((p[0] - p[1]).abs() < 1e-6 && (p[1] - p[2]).abs() < 1e-6);
        }
        let bright = color_jitter(&img, 0.1, 1.0, 1.0);
        let d: f32 = bright.data.iter().zip(&img.data).map(|(a, b)| a - b).sum::<f32>() / img.data.len() as f32;
        assert!((d - 0.1).abs() < 1e-4);
        let desat = color_jitter(&img, 0.0, 1.0, 0.0);
        assert!(mean_abs_diff(&desat, &g) < 1e-5);
    }

    #[test]
    fn full_pipelines_are_seeded_and_degrade() {
        let img = test_image(64);
        let cfg = DegradeConfig { second_order_prob: 1.0, ..Default::default() };
        let a = degrade_restore(&img, &cfg, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let b = degrade_restore(&img, &cfg, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        assert_eq!(a, b);
        assert!(mean_abs_diff(&a.0, &a.1) > 0.01);
        assert!(a.0.data.iter().all(|v| (0.0..=1.0).contains(v)));
        let (lr, hr) = degrade_sr(&img, 4, &cfg, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        assert_eq!((lr.w, lr.h, hr.w, hr.h), (16, 16, 64, 64));
        let (lr8, _) = degrade_sr(&img, 8, &cfg, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
        assert_eq!((lr8.w, lr8.h), (8, 8));
    }
}
