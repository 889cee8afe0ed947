//! Image quality metrics on the BT.601 luma channel (Y in [16, 235] scaled to [0, 255]):
//! PSNR, SSIM with an 11x11 Gaussian window (sigma 1.5), and the universal quality index
//! (UQI, Wang & Bovik 2002; SSIM with C1 = C2 = 0 over 8x8 windows).

use crate::image::Img;

/// PSNR in dB on Y (peak 255). `border` pixels are cropped on each side.
pub fn psnr_y(a: &Img, b: &Img, border: usize) -> f64 {
    let (ya, yb) = (a.clone().clamp().luma(), b.clone().clamp().luma());
    let mut se = 0.0f64;
    let mut n = 0usize;
    for y in border..a.h - border {
        for x in border..a.w - border {
            let d = (ya[y * a.w + x] - yb[y * a.w + x]) as f64;
            se += d * d;
            n += 1;
        }
    }
    let mse = se / n as f64;
    if mse <= 1e-12 {
        return 100.0;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

fn gaussian_window(size: usize, sigma: f64) -> Vec<f64> {
    let r = (size / 2) as isize;
    let g: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = g.iter().sum();
    let mut w = vec![0.0; size * size];
    for y in 0..size {
        for x in 0..size {
            w[y * size + x] = g[y] * g[x] / (s * s);
        }
    }
    w
}

/// A square weighting window and the SSIM stabilising constants.
struct Window {
    weights: Vec<f64>,
    size: usize,
    c1: f64,
    c2: f64,
}

/// Mean of the windowed SSIM map ("valid" windows only, as in the reference code).
fn windowed(a: &[f32], b: &[f32], w: usize, h: usize, win: &Window) -> f64 {
    let Window { weights: ref win, size, c1, c2 } = *win;
    let mut total = 0.0;
    let mut count = 0usize;
    for y0 in 0..=h.saturating_sub(size) {
        for x0 in 0..=w.saturating_sub(size) {
            let (mut ma, mut mb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in 0..size {
                for x in 0..size {
                    let k = win[y * size + x];
                    let (va, vb) = (a[(y0 + y) * w + x0 + x] as f64, b[(y0 + y) * w + x0 + x] as f64);
                    ma += k * va;
                    mb += k * vb;
                    saa += k * va * va;
                    sbb += k * vb * vb;
                    sab += k * va * vb;
                }
            }
            let (va, vb, cov) = (saa - ma * ma, sbb - mb * mb, sab - ma * mb);
            let num = (2.0 * ma * mb + c1) * (2.0 * cov + c2);
            let den = (ma * ma + mb * mb + c1) * (va + vb + c2);
            total += if den.abs() < 1e-12 { 1.0 } else { num / den };
            count += 1;
        }
    }
    total / count.max(1) as f64
}

/// SSIM on Y, Gaussian 11x11 window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255.
pub fn ssim_y(a: &Img, b: &Img) -> f64 {
    let (ya, yb) = (a.clone().clamp().luma(), b.clone().clamp().luma());
    let win = Window {
        weights: gaussian_window(11, 1.5),
        size: 11,
        c1: (0.01f64 * 255.0).powi(2),
        c2: (0.03f64 * 255.0).powi(2),
    };
    windowed(&ya, &yb, a.w, a.h, &win)
}

/// Universal quality index on Y with 8x8 uniform windows.
pub fn uqi_y(a: &Img, b: &Img) -> f64 {
    let (ya, yb) = (a.clone().clamp().luma(), b.clone().clamp().luma());
    let win = Window { weights: vec![1.0 / 64.0; 64], size: 8, c1: 0.0, c2: 0.0 };
    windowed(&ya, &yb, a.w, a.h, &win)
}

/// High-frequency energy of `out` over that of `gt`: the sums of squared 4-neighbour
/// Laplacians of their luma. Near 1 means as much fine detail as the ground truth; a blur
/// that scores well in PSNR sits well below 1, invented noise above it.
pub fn hf_ratio(out: &Img, gt: &Img) -> f64 {
    fn energy(img: &Img) -> f64 {
        let y = img.clone().clamp().luma();
        let (w, h) = (img.w, img.h);
        let mut e = 0.0f64;
        for r in 1..h.saturating_sub(1) {
            for c in 1..w.saturating_sub(1) {
                let i = r * w + c;
                let l = 4.0 * y[i] - y[i - 1] - y[i + 1] - y[i - w] - y[i + w];
                e += (l as f64) * (l as f64);
            }
        }
        e
    }
    energy(out) / energy(gt).max(1e-9)
}

/// Running means of the metrics.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Scores {
    pub psnr: f64,
    pub ssim: f64,
    pub uqi: f64,
    /// Mean of `hf_ratio` (output over ground truth; 0.85-1.15 is the target band).
    pub hf: f64,
    pub n: usize,
}

impl Scores {
    pub fn add(&mut self, out: &Img, gt: &Img) {
        self.add_fast(out, gt);
        self.uqi += uqi_y(out, gt);
    }
    /// PSNR and SSIM only (UQI left out, for in-training validation).
    pub fn add_fast(&mut self, out: &Img, gt: &Img) {
        self.psnr += psnr_y(out, gt, 0);
        self.ssim += ssim_y(out, gt);
        self.hf += hf_ratio(out, gt);
        self.n += 1;
    }
    pub fn mean(&self) -> Scores {
        let n = self.n.max(1) as f64;
        Scores { psnr: self.psnr / n, ssim: self.ssim / n, uqi: self.uqi / n, hf: self.hf / n, n: self.n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Img {
        let mut img = Img::new(n, n);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i / 3) % n) as f32 / n as f32 * 0.8 + 0.1;
        }
        img
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = ramp(32);
        assert_eq!(psnr_y(&a, &a, 0), 100.0);
        assert!((ssim_y(&a, &a) - 1.0).abs() < 1e-9);
        assert!((uqi_y(&a, &a) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn psnr_of_known_error() {
        let a = Img::filled(16, 16, [0.5; 3]);
        let b = Img::filled(16, 16, [0.5 + 10.0 / 219.0; 3]);
        // Y differs by (65.481 + 128.553 + 24.966) * 10 / 219 = 10.0
        let p = psnr_y(&a, &b, 0);
        assert!((p - 20.0 * (255.0f64 / 10.0).log10()).abs() < 1e-3, "{p}");
    }

    #[test]
    fn hf_ratio_falls_with_blur_and_rises_with_noise() {
        let mut a = Img::new(48, 48);
        for (i, v) in a.data.iter_mut().enumerate() {
            let (x, y) = ((i / 3 % 48) as f32, (i / 3 / 48) as f32);
            *v = 0.5 + 0.1 * (0.7 * x).sin() * (0.7 * y).cos();
        }
        assert!((hf_ratio(&a, &a) - 1.0).abs() < 1e-9);
        let blurred = crate::data::degrade::gaussian_blur(&a, 1.5, 1.5, 0.0).unwrap();
        assert!(hf_ratio(&blurred, &a) < 0.5, "{}", hf_ratio(&blurred, &a));
        let mut noisy = a.clone();
        for (i, v) in noisy.data.iter_mut().enumerate() {
            *v += if (i / 3 + i / 144) % 2 == 0 { 0.05 } else { -0.05 };
        }
        assert!(hf_ratio(&noisy, &a) > 1.5, "{}", hf_ratio(&noisy, &a));
    }

    #[test]
    fn ssim_drops_with_noise() {
        let a = ramp(32);
        let mut b = a.clone();
        for (i, v) in b.data.iter_mut().enumerate() {
            *v += if (i / 3 + i / 96) % 2 == 0 { 0.05 } else { -0.05 };
        }
        let s = ssim_y(&a, &b);
        assert!(s < 0.95 && s > 0.0, "{s}");
        assert!(uqi_y(&a, &b) < 0.99);
    }
}
