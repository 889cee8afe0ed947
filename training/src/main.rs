//! `faceenhance-train`: prepare a crop cache, train, export to ONNX, evaluate.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use faceenhance_train::config::TrainConfig;
use faceenhance_train::learned::{self, DegradeGanConfig};
#[cfg(feature = "core")]
use faceenhance_train::prepare;
use faceenhance_train::{eval, export, train};

#[derive(Parser)]
#[command(version, about = "Train, export and evaluate the faceenhance generators")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// One training invocation (a chunk of a possibly longer run); both trainers take these.
#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    resume: bool,
    /// Stop after this many minutes (with a checkpoint); resume later with --resume.
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Stop at this step (the LR schedule still runs to the config's `steps`).
    #[arg(long)]
    stop_at: Option<usize>,
    #[arg(long)]
    no_progress: bool,
}

impl RunArgs {
    fn options(&self) -> train::RunOptions {
        train::RunOptions {
            resume: self.resume,
            max_minutes: self.max_minutes,
            stop_at: self.stop_at,
            progress: !self.no_progress,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    #[cfg(feature = "core")]
    /// Detect and align every image of a folder (core crate's YuNet + crop_face) into a cache.
    Prepare {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        size: i32,
        #[arg(long, default_value = "/work/shared/models/face_detection_yunet_2022mar.onnx")]
        detector_model: PathBuf,
        /// Files numbered up to this go to train, the rest to validation (CelebA: 9000).
        #[arg(long)]
        train_max_index: Option<u64>,
        /// Without --train-max-index: the last fraction of the sorted files is validation.
        #[arg(long, default_value_t = 0.1)]
        val_fraction: f64,
        #[arg(long)]
        limit: Option<usize>,
        /// Paired mode: degraded twins of the input images (same file names), cropped with
        /// the faces detected on the clean ones into --paired-out at --paired-size.
        #[arg(long, requires = "paired_out")]
        paired_input: Option<PathBuf>,
        #[arg(long)]
        paired_out: Option<PathBuf>,
        #[arg(long, default_value_t = 16)]
        paired_size: i32,
        /// The images are already aligned faces (UTKFace): resize each whole image to
        /// --size instead of detecting and cropping.
        #[arg(long, conflicts_with = "paired_input")]
        whole: bool,
        /// Leave out images whose luma Laplacian variance (at --size) is below this: soft,
        /// up-sampled photos teach a model to paint blur.
        #[arg(long, default_value_t = 0.0)]
        min_sharpness: f64,
    },
    #[cfg(feature = "core")]
    /// Measure the detector's framing error against full resolution at each crop size
    /// (the jitter a model of that size should train with); prints JSON.
    AlignError {
        /// Folder of large, clean face photos (e.g. london-faces).
        #[arg(long)]
        input: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "16,24,32,48,64,96,128,192,256,512")]
        sizes: Vec<i32>,
        #[arg(long, default_value = "yunet")]
        detector: faceenhance::detect::DetectorKind,
        #[arg(long)]
        detector_model: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Train (or resume) a generator from a TOML config.
    Train {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Train (or resume) the face attribute predictor (40 CelebA attributes) from a TOML config.
    Attributes {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Export the attribute predictor to ONNX and write its validation accuracy per
    /// attribute (clean and degraded crops) as a markdown table.
    AttributesReport {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        table: PathBuf,
    },
    /// Train (or resume) the attribute editor (InterGAN-style, 64 px).
    Edit {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Export the attribute editor to ONNX, measure its edits on the validation split
    /// (judged by the attribute predictor) as a markdown table, and write a grid.
    EditReport {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        table: PathBuf,
        #[arg(long)]
        grid: PathBuf,
        /// Faces (columns) in the grid.
        #[arg(long, default_value_t = 8)]
        grid_faces: usize,
        /// Take the grid's faces from this cache's validation split instead.
        #[arg(long)]
        grid_cache: Option<PathBuf>,
    },
    /// Train (or resume) the learned degradation GAN (clean crops -> real-looking LR crops).
    DegradeTrain {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Export the EMA degradation generator to ONNX (input [batch, 4, H, W]: RGB + noise).
    DegradeExport {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Statistics of real LR crops, area down-scales, the synthetic pipeline and the exported
    /// degradation generator (through ONNX Runtime); grid PNG.
    DegradeEval {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// An SR training config whose `degrade` section is the synthetic pipeline to compare.
        #[arg(long)]
        sr_config: Option<PathBuf>,
        #[arg(long)]
        grid: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        grid_rows: usize,
        /// Write every real crop into this PNG too.
        #[arg(long)]
        real_grid: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Export the EMA generator of a run's checkpoint to ONNX (input/output, dynamic batch).
    Export {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Output size of the exported graph (default: the config's `output_size`); a fully
        /// convolutional generator exports one rung per size from the same weights.
        #[arg(long)]
        size: Option<usize>,
        /// Network interpolation (ESRGAN): export `(1 - alpha) * base + alpha * this run`,
        /// where `base` is another checkpoint directory of the same generator (the fidelity
        /// model a GAN phase started from).
        #[arg(long, requires = "alpha")]
        base: Option<PathBuf>,
        /// Share of this run's weights when interpolating with `--base` (0..=1).
        #[arg(long)]
        alpha: Option<f64>,
        /// Export the raw generator instead of its EMA.
        #[arg(long)]
        raw: bool,
    },
    /// Evaluate an ONNX generator through ONNX Runtime on the validation split.
    /// Writes dlib's face-recognition net (from the set-up's face-api package) as ONNX for
    /// the core's identity measure: `input` [batch, 3, 150, 150] -> `output` [batch, 128, 1, 1].
    FaceIdExport {
        #[arg(long)]
        out: PathBuf,
        /// Folder of face_recognition_model.bin and its manifest (default: the set-up's cache).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    Eval {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long)]
        grid: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        grid_rows: usize,
        #[arg(long, default_value_t = 10)]
        drift_runs: usize,
        #[arg(long, default_value_t = 200)]
        drift_count: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Inputs from this learned degradation model (degrade-export) instead of the
        /// synthetic pipeline.
        #[arg(long)]
        learned_model: Option<PathBuf>,
        /// Targets from this cache instead of the config's.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Real pairs: inputs from the validation split of this cache (prepare --paired-out).
        #[arg(long, conflicts_with = "learned_model")]
        paired_inputs: Option<PathBuf>,
        /// Write the report as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long, default_value_t = 128)]
        grid_cell: usize,
        /// Real pictures without ground truth (a folder) ...
        #[arg(long, requires = "real_grid")]
        real: Option<PathBuf>,
        /// ... and the PNG their (input, output) rows go to.
        #[arg(long)]
        real_grid: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        #[cfg(feature = "core")]
        Cmd::Prepare {
            input,
            out,
            size,
            detector_model,
            train_max_index,
            val_fraction,
            limit,
            paired_input,
            paired_out,
            paired_size,
            whole,
            min_sharpness,
        } => {
            let m = prepare::run(&prepare::PrepareArgs {
                input,
                out: out.clone(),
                size,
                detector_model,
                train_max_index,
                val_fraction,
                limit,
                paired: paired_input.zip(paired_out).map(|(i, o)| (i, o, paired_size)),
                whole,
                min_sharpness,
            })?;
            tracing::info!(
                train = m.train.files.len(),
                train_no_face = m.train.no_face.len(),
                val = m.val.files.len(),
                val_no_face = m.val.no_face.len(),
                too_soft = m.train.too_soft.len() + m.val.too_soft.len(),
                "cache written to {}",
                out.display()
            );
        }
        #[cfg(feature = "core")]
        Cmd::AlignError { input, sizes, detector, detector_model, limit } => {
            let r = faceenhance_train::align_error::run(&faceenhance_train::align_error::AlignErrorArgs {
                input,
                sizes,
                detector,
                detector_model,
                limit,
            })?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        Cmd::Train { run } => {
            let cfg = TrainConfig::load(&run.config)?;
            let st = train::train(&cfg, &run.options())?;
            tracing::info!(
                step = st.step,
                elapsed_min = st.elapsed_s / 60.0,
                best_val_psnr = st.best_val_psnr,
                "stopped"
            );
        }
        Cmd::Attributes { run } => {
            let cfg = faceenhance_train::attributes::AttrConfig::load(&run.config)?;
            let st = faceenhance_train::attributes::train(&cfg, run.resume, run.max_minutes, run.stop_at)?;
            tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
        }
        Cmd::AttributesReport { config, out, table } => {
            let cfg = faceenhance_train::attributes::AttrConfig::load(&config)?;
            let md = faceenhance_train::attributes::export_and_report(&cfg, &out)?;
            std::fs::write(&table, &md)?;
            print!("{md}");
        }
        Cmd::Edit { run } => {
            let cfg = faceenhance_train::edit::EditConfig::load(&run.config)?;
            let st = faceenhance_train::edit::train(&cfg, &run.options())?;
            tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
        }
        Cmd::EditReport { config, out, table, grid, grid_faces, grid_cache } => {
            let cfg = faceenhance_train::edit::EditConfig::load(&config)?;
            let md = faceenhance_train::edit::export_and_report(&cfg, &out, &grid, grid_faces, grid_cache.as_deref())?;
            std::fs::write(&table, &md)?;
            print!("{md}");
        }
        Cmd::DegradeTrain { run } => {
            let cfg = DegradeGanConfig::load(&run.config)?;
            let st = learned::train_gan(&cfg, &run.options())?;
            tracing::info!(step = st.step, elapsed_min = st.elapsed_s / 60.0, "stopped");
        }
        Cmd::DegradeExport { config, out } => {
            let cfg = DegradeGanConfig::load(&config)?;
            let g = learned::load_ema(&cfg, &Device::flex())?;
            learned::export(&g, cfg.clean_size, &out)?;
            tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
        }
        Cmd::DegradeEval { config, model, count, sr_config, grid, grid_rows, real_grid, json } => {
            let cfg = DegradeGanConfig::load(&config)?;
            let synthetic = match sr_config {
                Some(p) => Some(TrainConfig::load(&p)?.degrade),
                None => None,
            };
            let r = learned::evaluate_gan(
                &cfg,
                &learned::GanEvalArgs { model, count, seed: cfg.val_seed, synthetic, grid, grid_rows, real_grid },
            )?;
            let s = serde_json::to_string_pretty(&r)?;
            println!("{s}");
            if let Some(p) = json {
                std::fs::write(p, s)?;
            }
        }
        Cmd::Export { config, out, size, base, alpha, raw } => {
            let cfg = TrainConfig::load(&config)?;
            let device = Device::flex();
            let mut g = train::load_generator(&cfg, &device, raw)?;
            if let (Some(base), Some(alpha)) = (base, alpha) {
                anyhow::ensure!((0.0..=1.0).contains(&alpha), "--alpha {alpha} is not in 0..=1");
                let p = base.join("ema.bpk");
                anyhow::ensure!(p.is_file(), "--base: no EMA generator at {}", p.display());
                let b = cfg.generator.init(&device).load_file(p);
                g = train::interpolate(b, &g, alpha);
                tracing::info!(alpha, "interpolated with {}", base.display());
            }
            let size = size.unwrap_or(cfg.output_size);
            anyhow::ensure!(size % cfg.generator.scale() == 0, "size {size} is not a multiple of the scale");
            export::export_generator(&g, size / cfg.generator.scale(), &out)?;
            tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
        }
        Cmd::FaceIdExport { out, dir } => {
            let net = faceenhance_train::facerec::FaceRecNet::load(
                &dir.unwrap_or_else(faceenhance_train::facerec::default_dir),
                &Device::flex(),
            )?;
            faceenhance_train::facerec::export(&net, &out)?;
            tracing::info!(bytes = std::fs::metadata(&out)?.len(), "wrote {}", out.display());
        }
        Cmd::Eval {
            config,
            model,
            count,
            grid,
            grid_rows,
            drift_runs,
            drift_count,
            threads,
            learned_model,
            cache,
            paired_inputs,
            json,
            grid_cell,
            real,
            real_grid,
        } => {
            let cfg = TrainConfig::load(&config)?;
            let r = eval::evaluate(&eval::EvalArgs {
                model,
                cache: cache.unwrap_or_else(|| cfg.cache.clone()),
                scale: cfg.generator.scale(),
                count,
                seed: cfg.val_seed,
                degrade: cfg.degrade.clone(),
                grid,
                grid_rows,
                drift_runs,
                drift_count,
                threads,
                learned: learned_model,
                paired_inputs,
                grid_cell,
                real: real.zip(real_grid),
            })?;
            let s = serde_json::to_string_pretty(&r)?;
            println!("{s}");
            if let Some(p) = json {
                std::fs::write(p, s)?;
            }
        }
    }
    Ok(())
}
