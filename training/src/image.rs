//! A small RGB float image type (HWC, values nominally in [0, 1]) and conversions to
//! OpenCV matrices and burn tensors.

use anyhow::{ensure, Result};
use burn::tensor::{Device, Tensor, TensorData};
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, MatTraitManual, Scalar, CV_32FC3, CV_8UC3};

/// RGB image, row-major HWC, f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Img {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl Img {
    pub fn new(w: usize, h: usize) -> Self {
        Self { w, h, data: vec![0.0; w * h * 3] }
    }

    pub fn filled(w: usize, h: usize, v: [f32; 3]) -> Self {
        let mut img = Self::new(w, h);
        for p in img.data.chunks_exact_mut(3) {
            p.copy_from_slice(&v);
        }
        img
    }

    pub fn from_rgb8(w: usize, h: usize, rgb: &[u8]) -> Self {
        assert_eq!(rgb.len(), w * h * 3);
        Self { w, h, data: rgb.iter().map(|&v| v as f32 / 255.0).collect() }
    }

    pub fn to_rgb8(&self) -> Vec<u8> {
        self.data.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
    }

    pub fn clamp(mut self) -> Self {
        for v in &mut self.data {
            *v = v.clamp(0.0, 1.0);
        }
        self
    }

    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> f32 {
        self.data[(y * self.w + x) * 3 + c]
    }

    /// BT.601 luma in [0, 255] as used by the SR literature (16..235 range).
    pub fn luma(&self) -> Vec<f32> {
        self.data.chunks_exact(3).map(|p| 16.0 + 65.481 * p[0] + 128.553 * p[1] + 24.966 * p[2]).collect()
    }

    /// To an OpenCV `CV_32FC3` matrix in RGB channel order.
    pub fn to_mat_f32(&self) -> Result<Mat> {
        let mut m = Mat::new_rows_cols_with_default(self.h as i32, self.w as i32, CV_32FC3, Scalar::all(0.0))?;
        let bytes = m.data_bytes_mut()?;
        bytes.copy_from_slice(bytemuck_f32(&self.data));
        Ok(m)
    }

    /// From an OpenCV `CV_32FC3` matrix in RGB order.
    pub fn from_mat_f32(m: &Mat) -> Result<Self> {
        ensure!(m.typ() == CV_32FC3, "expected CV_32FC3, got type {}", m.typ());
        let m = if m.is_continuous() { m.clone() } else { m.try_clone()? };
        let bytes = m.data_bytes()?;
        let data = bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(Self { w: m.cols() as usize, h: m.rows() as usize, data })
    }

    /// To an OpenCV `CV_8UC3` matrix in BGR order (for imencode/imwrite).
    pub fn to_mat_bgr8(&self) -> Result<Mat> {
        let mut m = Mat::new_rows_cols_with_default(self.h as i32, self.w as i32, CV_8UC3, Scalar::all(0.0))?;
        let rgb = self.to_rgb8();
        let bytes = m.data_bytes_mut()?;
        for (d, s) in bytes.chunks_exact_mut(3).zip(rgb.chunks_exact(3)) {
            d[0] = s[2];
            d[1] = s[1];
            d[2] = s[0];
        }
        Ok(m)
    }

    /// From an OpenCV `CV_8UC3` BGR matrix.
    pub fn from_mat_bgr8(m: &Mat) -> Result<Self> {
        ensure!(m.typ() == CV_8UC3, "expected CV_8UC3, got type {}", m.typ());
        let m = if m.is_continuous() { m.clone() } else { m.try_clone()? };
        let bytes = m.data_bytes()?;
        let mut rgb = Vec::with_capacity(bytes.len());
        for p in bytes.chunks_exact(3) {
            rgb.extend_from_slice(&[p[2], p[1], p[0]]);
        }
        Ok(Self::from_rgb8(m.cols() as usize, m.rows() as usize, &rgb))
    }

    /// Resize with an OpenCV interpolation flag.
    pub fn resize(&self, w: usize, h: usize, interp: i32) -> Result<Self> {
        if w == self.w && h == self.h {
            return Ok(self.clone());
        }
        let src = self.to_mat_f32()?;
        let mut dst = Mat::default();
        opencv::imgproc::resize(&src, &mut dst, opencv::core::Size::new(w as i32, h as i32), 0.0, 0.0, interp)?;
        Self::from_mat_f32(&dst)
    }

    /// The `w` x `h` window at (`x0`, `y0`).
    pub fn crop(&self, x0: usize, y0: usize, w: usize, h: usize) -> Self {
        assert!(x0 + w <= self.w && y0 + h <= self.h, "crop outside the image");
        let mut out = Self::new(w, h);
        for y in 0..h {
            let src = ((y0 + y) * self.w + x0) * 3;
            out.data[y * w * 3..(y + 1) * w * 3].copy_from_slice(&self.data[src..src + w * 3]);
        }
        out
    }

    /// Bicubic resize (OpenCV `INTER_CUBIC`), the baseline up-scaler.
    pub fn bicubic(&self, w: usize, h: usize) -> Result<Self> {
        Ok(self.resize(w, h, opencv::imgproc::INTER_CUBIC)?.clamp())
    }

    pub fn save_png(&self, path: &std::path::Path) -> Result<()> {
        let m = self.to_mat_bgr8()?;
        let ok = opencv::imgcodecs::imwrite(path, &m, &opencv::core::Vector::new())?;
        ensure!(ok, "could not write {}", path.display());
        Ok(())
    }
}

fn bytemuck_f32(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no invalid bit patterns and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// Stack images (all the same size) into an NCHW tensor.
pub fn to_tensor(imgs: &[Img], device: &Device) -> Tensor<4> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    Tensor::from_data(TensorData::new(to_nchw(imgs), [imgs.len(), 3, h, w]), device)
}

/// Stack images (all the same size) into an NCHW buffer.
pub fn to_nchw(imgs: &[Img]) -> Vec<f32> {
    let (w, h) = (imgs[0].w, imgs[0].h);
    let mut out = vec![0.0f32; imgs.len() * 3 * h * w];
    for (n, img) in imgs.iter().enumerate() {
        assert_eq!((img.w, img.h), (w, h));
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    out[((n * 3 + c) * h + y) * w + x] = img.data[(y * w + x) * 3 + c];
                }
            }
        }
    }
    out
}

/// Split an NCHW buffer into images.
pub fn from_nchw(data: &[f32], n: usize, h: usize, w: usize) -> Vec<Img> {
    (0..n)
        .map(|i| {
            let mut img = Img::new(w, h);
            for y in 0..h {
                for x in 0..w {
                    for c in 0..3 {
                        img.data[(y * w + x) * 3 + c] = data[((i * 3 + c) * h + y) * w + x];
                    }
                }
            }
            img
        })
        .collect()
}

/// Tensor (NCHW) back to images.
pub fn from_tensor(t: Tensor<4>) -> Vec<Img> {
    let [n, _c, h, w] = t.dims();
    let data = t.into_data().try_to_vec::<f32>().expect("f32 tensor");
    from_nchw(&data, n, h, w)
}

/// Paste images side by side into rows (one row per entry of `rows`).
pub fn grid(rows: &[Vec<Img>], cell: usize, pad: usize) -> Img {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let (w, h) = (cols * (cell + pad) + pad, rows.len() * (cell + pad) + pad);
    let mut out = Img::filled(w, h, [1.0, 1.0, 1.0]);
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let img = if img.w != cell || img.h != cell {
                img.resize(cell, cell, opencv::imgproc::INTER_NEAREST).expect("resize")
            } else {
                img.clone()
            };
            let (x0, y0) = (pad + c * (cell + pad), pad + r * (cell + pad));
            for y in 0..cell {
                for x in 0..cell {
                    for ch in 0..3 {
                        out.data[((y0 + y) * w + x0 + x) * 3 + ch] = img.at(x, y, ch);
                    }
                }
            }
        }
    }
    out
}

/// A smooth RGB test image (waves of frequency `k` with amplitude about `amp`), for tests
/// that need distinct, natural-ish clean images.
#[cfg(test)]
pub(crate) fn test_pattern(n: usize, k: usize, amp: f32) -> Img {
    let mut img = Img::new(n, n);
    for y in 0..n {
        for x in 0..n {
            let (fx, fy) = (x as f32 / n as f32, y as f32 / n as f32);
            img.data[(y * n + x) * 3] = 0.5 + amp * ((fx * (k + 2) as f32).sin() * fy);
            img.data[(y * n + x) * 3 + 1] = 0.3 + (amp + 0.1) * fx * fy;
            img.data[(y * n + x) * 3 + 2] = 0.6 - amp * ((fy * (k + 1) as f32 * 2.0).cos()).abs();
        }
    }
    img
}
