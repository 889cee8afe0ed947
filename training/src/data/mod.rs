//! The data: what training and evaluation feed the nets. Faces are detected and aligned
//! once into a cache ([`prepare`]; [`align_error`] measures how loosely the detector frames
//! them) and read back ([`cache`], with their attribute [`labels`]). A clean crop is
//! augmented ([`augment`]) and degraded, by the synthetic pipeline ([`degrade`]) or the
//! learned degradation model ([`learned`]), into the (input, target) pairs a generator
//! learns from ([`pairs`]).

#[cfg(feature = "core")]
pub mod align_error;
pub mod augment;
pub mod cache;
pub mod degrade;
pub mod labels;
pub mod learned;
pub mod pairs;
#[cfg(feature = "core")]
pub mod prepare;
