//! The networks. Generators: [`restore`] (1x and up-scaling restorers), [`sr`] and the
//! attribute-guided [`aga`], one [`generator`] enum for a run; the attribute editor
//! ([`edit`]) and the learned high-to-low degradation ([`degrade`]). Discriminators: the
//! patch discriminator ([`patch_d`]) and the face discriminators on the frozen face net
//! ([`face_d`]). Frozen nets others build on: the attribute predictor ([`attributes`]) and
//! dlib's face-recognition net ([`facerec`]). Shared layers: [`blocks`].

pub mod aga;
pub mod attributes;
pub mod blocks;
pub mod degrade;
pub mod edit;
pub mod face_d;
pub mod facerec;
pub mod generator;
pub mod patch_d;
pub mod restore;
pub mod sr;
