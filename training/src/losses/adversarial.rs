//! Adversarial losses: least-squares, relativistic average and hinge GAN losses,
//! discriminator feature matching, and a discriminator's accuracy.

use burn::tensor::activation::{relu, softplus};
use burn::tensor::Tensor;

use crate::losses::pixel::l1;

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

/// Hinge loss, discriminator side: mean relu(1 - D(real)) + mean relu(1 + D(fake)).
pub fn hinge_d(real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    relu(real.neg().add_scalar(1.0)).mean() + relu(fake.add_scalar(1.0)).mean()
}

/// Hinge loss, generator side: -mean D(fake).
pub fn hinge_g(fake: Tensor<4>) -> Tensor<1> {
    fake.mean().neg()
}

/// Share of logits on the right side of zero (real > 0, fake < 0): the discriminator's
/// accuracy, logged from the first step.
pub fn accuracy(real: &Tensor<4>, fake: &Tensor<4>) -> f64 {
    let r = real.clone().greater_elem(0.0).float().mean().into_scalar::<f32>() as f64;
    let f = fake.clone().lower_equal_elem(0.0).float().mean().into_scalar::<f32>() as f64;
    (r + f) / 2.0
}
