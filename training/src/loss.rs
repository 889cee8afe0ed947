//! Losses: Charbonnier / L1 pixel loss, least-squares and relativistic adversarial losses,
//! discriminator feature matching.

use burn::tensor::activation::softplus;
use burn::tensor::Tensor;

/// Charbonnier loss, a differentiable L1: mean(sqrt((x - y)^2 + eps^2)).
pub fn charbonnier(x: Tensor<4>, y: Tensor<4>, eps: f64) -> Tensor<1> {
    let d = x - y;
    (d.clone() * d).add_scalar(eps * eps).sqrt().mean()
}

pub fn l1(x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    (x - y).abs().mean()
}

/// Least-squares GAN, discriminator side: (D(real) - 1)^2 + D(fake)^2.
pub fn lsgan_d(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let r = real.sub_scalar(1.0);
    (r.clone() * r).mean() + (fake.clone() * fake).mean()
}

/// Least-squares GAN, generator side: (D(fake) - 1)^2.
pub fn lsgan_g(fake: Tensor<4>) -> Tensor<1> {
    let f = fake.sub_scalar(1.0);
    (f.clone() * f).mean()
}

/// Binary cross-entropy with logits against a constant target (1 or 0).
fn bce_logits(x: Tensor<4>, target_one: bool) -> Tensor<1> {
    // -log(sigmoid(x)) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x)
    if target_one {
        softplus(x.neg(), 1.0).mean()
    } else {
        softplus(x, 1.0).mean()
    }
}

/// Relativistic average GAN (ESRGAN), discriminator side.
pub fn relativistic_d(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let (mr, mf) = (real.clone().mean(), fake.clone().mean());
    let rr = real - mf.reshape([1, 1, 1, 1]);
    let ff = fake - mr.reshape([1, 1, 1, 1]);
    (bce_logits(rr, true) + bce_logits(ff, false)).mul_scalar(0.5)
}

/// Relativistic average GAN, generator side (the real logits are detached by the caller).
pub fn relativistic_g(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let (mr, mf) = (real.clone().mean(), fake.clone().mean());
    let rr = real - mf.reshape([1, 1, 1, 1]);
    let ff = fake - mr.reshape([1, 1, 1, 1]);
    (bce_logits(rr, false) + bce_logits(ff, true)).mul_scalar(0.5)
}

/// Feature matching (GPEN): mean L1 between discriminator features of fake and real
/// (real features detached by the caller).
pub fn feature_matching(fake: &[Tensor<4>], real: &[Tensor<4>]) -> Tensor<1> {
    let n = fake.len() as f64;
    let mut total: Option<Tensor<1>> = None;
    for (f, r) in fake.iter().zip(real) {
        let l = l1(f.clone(), r.clone());
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    total.expect("at least one feature map").div_scalar(n)
}
