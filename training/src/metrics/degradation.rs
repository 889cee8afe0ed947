//! Statistics that tell real low-resolution crops from plain down-scales: high-frequency
//! energy of luma and chroma, a noise estimate, and distances between their distributions.
//! The degradation GAN's validation and `degrade-eval` report them.

use serde::Serialize;

use crate::image::Img;

/// RMS of the 4-neighbour Laplacian of BT.601 luma (0..255) over interior pixels: the
/// high-frequency energy (noise, blocking, aliasing raise it; blur lowers it).
pub fn lap_rms(img: &Img) -> f32 {
    let y = img.luma();
    let (w, h) = (img.w, img.h);
    let mut s = 0.0f64;
    let mut n = 0usize;
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let l = 4.0 * y[r * w + c] - y[(r - 1) * w + c] - y[(r + 1) * w + c] - y[r * w + c - 1] - y[r * w + c + 1];
            s += (l as f64).powi(2);
            n += 1;
        }
    }
    (s / n.max(1) as f64).sqrt() as f32
}

/// RMS of the 4-neighbour Laplacian of the chroma planes (BT.601 Cb and Cr, 0..255 scale)
/// over interior pixels: colour detail, which 4:2:0 video coding at a coarse quantiser
/// removes (colour bleeding) while a down-scale of a sharper image keeps it.
pub fn chroma_lap_rms(img: &Img) -> f32 {
    let (w, h) = (img.w, img.h);
    let cb: Vec<f32> =
        img.data.chunks_exact(3).map(|p| 255.0 * (-0.168_736 * p[0] - 0.331_264 * p[1] + 0.5 * p[2])).collect();
    let cr: Vec<f32> =
        img.data.chunks_exact(3).map(|p| 255.0 * (0.5 * p[0] - 0.418_688 * p[1] - 0.081_312 * p[2])).collect();
    let mut s = 0.0f64;
    let mut n = 0usize;
    for plane in [&cb, &cr] {
        for r in 1..h - 1 {
            for c in 1..w - 1 {
                let l = 4.0 * plane[r * w + c]
                    - plane[(r - 1) * w + c]
                    - plane[(r + 1) * w + c]
                    - plane[r * w + c - 1]
                    - plane[r * w + c + 1];
                s += (l as f64).powi(2);
                n += 1;
            }
        }
    }
    (s / n.max(1) as f64).sqrt() as f32
}

/// Immerkær's fast noise estimate (1996) on luma (0..255):
/// `sigma = sqrt(pi / 2) / (6 (W-2)(H-2)) sum |I * N|`, `N = [[1,-2,1],[-2,4,-2],[1,-2,1]]`
/// (blind to linear ramps, sensitive to pixel-level noise).
pub fn noise_sigma(img: &Img) -> f32 {
    let y = img.luma();
    let (w, h) = (img.w, img.h);
    let k = [[1.0f32, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]];
    let mut s = 0.0f64;
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let mut v = 0.0f32;
            for (dy, row) in k.iter().enumerate() {
                for (dx, kv) in row.iter().enumerate() {
                    v += kv * y[(r + dy - 1) * w + c + dx - 1];
                }
            }
            s += v.abs() as f64;
        }
    }
    ((std::f64::consts::PI / 2.0).sqrt() * s / (6.0 * ((w - 2) * (h - 2)) as f64)) as f32
}

/// 1-D Wasserstein-1 distance between two empirical distributions (mean absolute difference
/// of 200 matched quantiles).
pub fn wasserstein1(a: &[f32], b: &[f32]) -> f32 {
    let q = |v: &[f32]| {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        move |t: f32| s[((t * (s.len() - 1) as f32).round() as usize).min(s.len() - 1)]
    };
    let (qa, qb) = (q(a), q(b));
    let n = 200;
    (0..n).map(|i| (qa((i as f32 + 0.5) / n as f32) - qb((i as f32 + 0.5) / n as f32)).abs()).sum::<f32>() / n as f32
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SetStats {
    pub n: usize,
    pub lap_rms_mean: f32,
    pub lap_rms_std: f32,
    pub noise_sigma_mean: f32,
    pub noise_sigma_std: f32,
    /// W1 distance of the per-crop Laplacian RMS to that of the real crops.
    pub lap_w1_to_real: f32,
    /// W1 distance of the per-crop noise estimate to that of the real crops.
    pub noise_w1_to_real: f32,
    pub chroma_lap_rms_mean: f32,
    pub chroma_lap_rms_std: f32,
    /// W1 distance of the per-crop chroma Laplacian RMS to that of the real crops.
    pub chroma_w1_to_real: f32,
}

fn mean_std(v: &[f32]) -> (f32, f32) {
    let m = v.iter().sum::<f32>() / v.len().max(1) as f32;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len().max(1) as f32;
    (m, var.sqrt())
}

/// Statistics of a set of crops, with distances to a reference (real) set.
pub fn set_stats(imgs: &[Img], real: &[Img]) -> SetStats {
    let lap: Vec<f32> = imgs.iter().map(lap_rms).collect();
    let noise: Vec<f32> = imgs.iter().map(noise_sigma).collect();
    let rlap: Vec<f32> = real.iter().map(lap_rms).collect();
    let rnoise: Vec<f32> = real.iter().map(noise_sigma).collect();
    let chroma: Vec<f32> = imgs.iter().map(chroma_lap_rms).collect();
    let rchroma: Vec<f32> = real.iter().map(chroma_lap_rms).collect();
    let (cm, cs) = mean_std(&chroma);
    let (lm, ls) = mean_std(&lap);
    let (nm, ns) = mean_std(&noise);
    SetStats {
        n: imgs.len(),
        lap_rms_mean: lm,
        lap_rms_std: ls,
        noise_sigma_mean: nm,
        noise_sigma_std: ns,
        lap_w1_to_real: wasserstein1(&lap, &rlap),
        noise_w1_to_real: wasserstein1(&noise, &rnoise),
        chroma_lap_rms_mean: cm,
        chroma_lap_rms_std: cs,
        chroma_w1_to_real: wasserstein1(&chroma, &rchroma),
    }
}

/// Mean |a - b| (RGB, [0, 1]) over pairs of crops.
pub fn mean_l1(a: &[Img], b: &[Img]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.data.iter().zip(&y.data).map(|(p, q)| (p - q).abs()).sum::<f32>() / x.data.len() as f32)
        .sum::<f32>()
        / a.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::degrade::gaussian_noise;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.3)
    }

    #[test]
    fn statistics_separate_noise_from_smooth_images() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let flat = Img::filled(32, 32, [0.5, 0.5, 0.5]);
        let sigma = 10.0 / 255.0;
        let noisy = gaussian_noise(&flat, sigma, true, &mut rng);
        // gray noise of sigma (in [0,1]) is luma noise of sigma * (65.481 + 128.553 + 24.966)
        let expect = 10.0 * (65.481 + 128.553 + 24.966) / 255.0;
        let est = noise_sigma(&noisy);
        assert!((est - expect).abs() < 0.15 * expect, "noise estimate {est}, expected {expect}");
        assert!(noise_sigma(&flat) < 1e-3 && lap_rms(&flat) < 1e-3);
        // gray noise has no chroma; colour noise has
        assert!(chroma_lap_rms(&noisy) < 1e-2 && chroma_lap_rms(&flat) < 1e-3);
        assert!(chroma_lap_rms(&gaussian_noise(&flat, sigma, false, &mut rng)) > 10.0);
        assert!(lap_rms(&noisy) > 10.0 * lap_rms(&smooth(32, 1)));
        // a linear ramp has no Laplacian and no noise
        let mut ramp = Img::new(16, 16);
        for (i, v) in ramp.data.iter_mut().enumerate() {
            *v = ((i / 3) % 16) as f32 / 20.0;
        }
        assert!(lap_rms(&ramp) < 1e-3 && noise_sigma(&ramp) < 1e-3);
        assert!(wasserstein1(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) < 1e-6);
        assert!((wasserstein1(&[1.0, 2.0, 3.0], &[3.0, 4.0, 5.0]) - 2.0).abs() < 1e-4);
    }
}
