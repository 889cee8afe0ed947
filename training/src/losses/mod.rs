//! What training minimises: pixel and edge losses ([`pixel`]), the adversarial losses
//! ([`adversarial`]), the frequency split the degradation GAN's content loss and the
//! discriminators' inputs use ([`frequency`]), and what frozen nets know: the face prior's
//! perceptual and identity terms and what its discriminators see ([`face`]), the attribute
//! predictor's features and its classification loss ([`attributes`]).

pub mod adversarial;
pub mod attributes;
pub mod face;
pub mod frequency;
pub mod pixel;
