//! Training. [`generator`] is the generators' loop ([`config`]: its TOML; [`batches`]: where
//! its clean crops come from; [`face_phase`]: the face prior's discriminators, stepped beside
//! it); [`attributes`], [`edit`] and [`degrade_gan`] train the attribute predictor, the
//! attribute editor and the learned degradation. Every loop is seeded per step and resumable
//! ([`run`]), keeps its nets and optimizers in a checkpoint ([`checkpoint`]) and an EMA of its
//! generator ([`ema`]), and logs CSV files and a loss-curve PNG ([`plot`]).

pub mod attributes;
pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod degrade_gan;
pub mod edit;
pub mod ema;
pub mod face_phase;
pub mod generator;
pub mod plot;
pub mod run;
