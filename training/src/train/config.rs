//! A generator run's configuration, read from a TOML file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::augment::Jitter;
use crate::data::degrade::DegradeConfig;
use crate::nets::generator::GeneratorConfig;
use crate::nets::restore::RestoreConfig;
use crate::train::run::warmup_cosine;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvKind {
    None,
    Lsgan,
    Relativistic,
}

/// One source of training crops in patch mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    /// Cache written by `prepare`.
    pub cache: PathBuf,
    /// Relative share of the batch drawn from this source.
    #[serde(default = "one")]
    pub weight: f64,
    /// Each crop is area-resized by a factor drawn log-uniformly from this range before the
    /// patch is cut (never below the patch size): faces at many pixel scales.
    #[serde(default = "unit_range")]
    pub scale: [f64; 2],
}

fn one() -> f64 {
    1.0
}

fn unit_range() -> [f64; 2] {
    [1.0, 1.0]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Model name (also the shipped file stem), e.g. "restore-64".
    pub name: String,
    /// Cache of aligned crops written by `prepare`.
    pub cache: PathBuf,
    /// Run folder: checkpoints, CSV logs, plots.
    pub out_dir: PathBuf,
    pub seed: u64,
    pub generator: GeneratorConfig,
    /// Output size (px) the model trains at: the crop size of the cache, or the patch size
    /// when `sources` are given.
    pub output_size: usize,
    /// Patch mode (fully convolutional models): when non-empty, training batches are
    /// `output_size` px patches cut from these caches at random scales; `cache` then only
    /// gives the validation split, run at its own crop size.
    pub sources: Vec<Source>,
    pub jitter: Jitter,
    pub batch_size: usize,
    pub steps: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub warmup_steps: usize,
    pub d_lr: f64,
    pub pixel_weight: f64,
    pub charbonnier_eps: f64,
    /// Weight of the L1 loss between Laplacians of output and target (`losses::pixel::laplacian_l1`).
    pub hf_weight: f64,
    /// Weight of the high-frequency energy gap (`losses::pixel::hf_energy_gap`).
    pub hf_energy_weight: f64,
    pub adv: AdvKind,
    pub adv_weight: f64,
    pub fm_weight: f64,
    /// Step at which the discriminator and the adversarial losses come in.
    pub gan_start: usize,
    pub d_channels: usize,
    /// The discriminator sees the image and its high-pass part (the image minus a
    /// Gaussian blur of sigma 1 px), so that texture, the thing a pixel loss gives up,
    /// is what it judges first.
    #[serde(default)]
    pub d_detail: bool,
    /// Start a fresh run from another run's checkpoint directory: its EMA generator becomes
    /// the generator and the EMA here (discriminator and optimizers start fresh). How a
    /// GAN phase begins from a converged fidelity model.
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    /// The stem of the restoration generator in `init_from` where it is finer than this
    /// config's (2 for restore-fc, into a `stem = 4` net): loaded at its own stem, then
    /// `RestoreNet::restem`.
    #[serde(default)]
    pub init_stem: Option<usize>,
    /// Weight of a feature (perceptual) loss: L1 between the frozen face attribute
    /// predictor's feature maps of output and target (`losses::attributes::Features`), a face
    /// network's view of texture that a pixel loss averages away.
    #[serde(default)]
    pub perceptual_weight: f64,
    /// Folder with the predictor's `net.bpk` and its run `config.toml`.
    #[serde(default)]
    pub perceptual_net: Option<PathBuf>,
    /// The face prior (issue 29, `losses::face`, `train::face_phase`): the frozen dlib face network's files (default:
    /// the set-up's cache, `nets::facerec::default_dir`).
    #[serde(default)]
    pub face_net: Option<PathBuf>,
    /// Side (px) of the tight face view the face network sees (its own input is 150).
    #[serde(default = "face_view")]
    pub face_view: usize,
    /// Side (px) of the face view the perceptual loss and the projected heads see (0: the
    /// same as `face_view`). The face box of a 128 px crop is 72 px: enlarged to 150 it
    /// holds no detail finer than 2 px for the early stages to judge; at its own 72 px the
    /// stem sees the lashes and lip lines (identity keeps the 150 px view it was trained at).
    #[serde(default)]
    pub face_detail_view: usize,
    /// Weight of the relative L1 between the face network's first three stages of output
    /// and truth (perceptual loss).
    #[serde(default)]
    pub face_perceptual_weight: f64,
    /// Weight of the descriptor distance between output and truth (identity loss).
    #[serde(default)]
    pub identity_weight: f64,
    /// Weight of the projected discriminator (light heads on the frozen stages, hinge loss).
    #[serde(default)]
    pub face_d_weight: f64,
    /// Weight of the eye and mouth discriminators (hinge loss).
    #[serde(default)]
    pub component_d_weight: f64,
    /// Learning rate of the face discriminators.
    #[serde(default = "face_d_lr")]
    pub face_d_lr: f64,
    /// Channels of each projected head and of the component discriminators.
    #[serde(default = "face_d_channels")]
    pub face_d_channels: usize,
    /// Layers of each projected head (1: a 3x3 and a 1x1 conv; each more adds a strided 3x3).
    #[serde(default = "one_layer")]
    pub face_d_depth: usize,
    /// DiffAugment's largest shift, as a fraction of the side.
    #[serde(default = "augment_shift")]
    pub augment_shift: f32,
    pub ema_decay: f64,
    pub checkpoint_every: usize,
    pub log_every: usize,
    /// Validation every this many steps (and at the end).
    pub val_every: usize,
    /// How many validation crops the in-training validation uses.
    pub val_count: usize,
    /// Seed of the fixed validation degradations.
    pub val_seed: u64,
    pub degrade: DegradeConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            name: "restore-64".into(),
            cache: PathBuf::from("cache/celeba-64"),
            out_dir: PathBuf::from("runs/restore-64"),
            seed: 1,
            generator: GeneratorConfig::Restore(RestoreConfig::default()),
            output_size: 64,
            sources: Vec::new(),
            jitter: Jitter::default(),
            batch_size: 16,
            steps: 4000,
            lr: 2e-3,
            lr_min: 1e-4,
            warmup_steps: 100,
            d_lr: 1e-4,
            pixel_weight: 1.0,
            charbonnier_eps: 1e-3,
            hf_weight: 0.0,
            hf_energy_weight: 0.0,
            adv: AdvKind::Lsgan,
            adv_weight: 0.003,
            fm_weight: 0.01,
            gan_start: 3000,
            d_channels: 32,
            d_detail: false,
            init_from: None,
            init_stem: None,
            perceptual_weight: 0.0,
            perceptual_net: None,
            face_net: None,
            face_view: face_view(),
            face_detail_view: 0,
            face_perceptual_weight: 0.0,
            identity_weight: 0.0,
            face_d_weight: 0.0,
            component_d_weight: 0.0,
            face_d_lr: face_d_lr(),
            face_d_channels: face_d_channels(),
            face_d_depth: one_layer(),
            augment_shift: augment_shift(),
            ema_decay: 0.995,
            checkpoint_every: 200,
            log_every: 10,
            val_every: 500,
            val_count: 200,
            val_seed: 12345,
            degrade: DegradeConfig::default(),
        }
    }
}

fn face_view() -> usize {
    150
}

fn face_d_lr() -> f64 {
    2e-4
}

fn one_layer() -> usize {
    1
}

fn face_d_channels() -> usize {
    64
}

fn augment_shift() -> f32 {
    0.0625
}

impl TrainConfig {
    /// Whether any loss of the face prior is on.
    pub fn uses_face_prior(&self) -> bool {
        self.face_perceptual_weight > 0.0
            || self.identity_weight > 0.0
            || self.face_d_weight > 0.0
            || self.component_d_weight > 0.0
    }

    pub fn load(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&s).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn input_size(&self) -> usize {
        self.output_size / self.generator.scale()
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to `lr_min`.
    pub fn lr_at(&self, step: usize) -> f64 {
        warmup_cosine(self.lr, self.lr_min, self.warmup_steps, self.steps, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_file_and_schedules() {
        let cfg: TrainConfig = toml::from_str(
            r#"
            name = "sr-x4-64"
            steps = 1000
            [generator]
            kind = "sr"
            scale = 4
            channels = 32
            blocks = 4
            [degrade]
            jpeg_quality = [40, 90]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.input_size(), 16);
        assert_eq!(cfg.degrade.jpeg_quality, [40, 90]);
        assert!(cfg.lr_at(0) < cfg.lr);
        assert!((cfg.lr_at(cfg.warmup_steps) - cfg.lr).abs() < 1e-9);
        assert!((cfg.lr_at(1000) - cfg.lr_min).abs() < 1e-9);
    }
}
