//! The `faceenhance` command line: transcode videos through the same GStreamer elements
//! `gst-launch-1.0` users get, enhance still images through the core, and put two
//! pictures side by side.

mod image;
mod segment;
mod speed;
mod video;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use faceenhance::detect::{DetectorConfig, DetectorKind};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::{Provider, ProviderOptions};
use faceenhance::pipeline::{Enhancer, RestoreConfig};
use faceenhance::upscale::{BackgroundConfig, Interpolation};
use opencv::core::Mat;
use opencv::prelude::MatTraitConst;

#[derive(Parser)]
#[command(version, about = "Find, restore and blend back faces in videos and pictures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enhance a video: anything GStreamer reads in; H.264 in MP4 or MKV (by the output's
    /// extension) out, audio kept. Ctrl-C stops early and still leaves a playable file.
    Video(video::VideoArgs),
    /// Enhance still images; writes NAME.png and NAME-side-by-side.png into the output folder.
    Image {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long, default_value = "out")]
        output: PathBuf,
        #[command(flatten)]
        opts: EnhanceOpts,
    },
    /// Faces per second of each model on a provider and batch sizes (and which provider
    /// really ran): a markdown table.
    Speed(speed::SpeedArgs),
    /// Put the finished segments of a work folder (`video --segment K/N --work DIR`)
    /// together into one file, with the source's audio, without encoding them again.
    Join {
        work: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        no_progress: bool,
    },
    /// Where a segmented run stands: each segment's state, frames, faces, time and host.
    Status { work: PathBuf },
    /// Put two images side by side (the second scaled to the first's height), labelled.
    SideBySide {
        left: PathBuf,
        right: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Enlarge the result (nearest neighbour) so small frames can be seen.
        #[arg(long, default_value_t = 1)]
        scale: i32,
    },
}

/// The options every enhancing command shares (the elements' main properties).
#[derive(Args, Clone, Debug)]
pub struct EnhanceOpts {
    /// Restoration model(s): ONNX files (profile: the TOML beside each, else recognised),
    /// or folders of models with profiles beside them (repeat or separate with commas: the
    /// model ladder); default: the shipped models.
    #[arg(long, value_delimiter = ',')]
    model: Vec<PathBuf>,
    /// Profile of a single model: a TOML file, a published family (gfpgan-1.4, codeformer,
    /// gpen-bfr-256, ...: see models/profiles) or auto.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// CodeFormer's w: 0 = strongest restoration .. 1 = closest to the input.
    #[arg(long, default_value_t = RestoreConfig::default().fidelity)]
    fidelity: f32,
    /// auto, cpu, cuda, tensorrt.
    #[arg(long, default_value = "auto")]
    provider: Provider,
    /// CUDA / TensorRT device.
    #[arg(long, default_value_t = 0)]
    device_id: i32,
    /// TensorRT: build half-precision engines.
    #[arg(long)]
    fp16: bool,
    /// TensorRT: engine cache folder (the next start reuses the engines).
    #[arg(long)]
    trt_cache_dir: Option<PathBuf>,
    /// auto, yunet, centerface, haar.
    #[arg(long, default_value = "auto")]
    detector: DetectorKind,
    /// YuNet or CenterFace ONNX file.
    #[arg(long)]
    detector_model: Option<PathBuf>,
    /// 0: faces untouched .. 1: restored faces replace the originals.
    #[arg(long, default_value_t = RestoreConfig::default().strength)]
    strength: f32,
    /// Output = input x this factor; faces are restored at their size in the output.
    #[arg(long, default_value_t = RestoreConfig::default().upscale, value_parser = clap::value_parser!(u32).range(1..=8))]
    upscale: u32,
    /// How the frame around the faces is enlarged: bicubic or lanczos.
    #[arg(long, default_value = "bicubic")]
    background: Interpolation,
    /// ONNX super-resolution model for the frame around the faces (scale = --upscale).
    #[arg(long)]
    background_model: Option<PathBuf>,
    /// Never worse: faces whose output is more than this many times the model's output
    /// keep the background's pixels.
    #[arg(long, default_value_t = RestoreConfig::default().max_stretch)]
    max_stretch: f32,
    /// Restore every face, however much its model's output must be stretched.
    #[arg(long)]
    force: bool,
    /// Run the model on a tracked face every N frames and carry its restoration onto the
    /// frames between (1: every frame).
    #[arg(long, default_value_t = RestoreConfig::default().refresh, value_parser = clap::value_parser!(u32).range(1..=1000))]
    restore_interval: u32,
    /// CPU threads for detection and restoration (ONNX Runtime, OpenCV); 0: all cores.
    #[arg(long, default_value_t = 0)]
    threads: u32,
}

impl EnhanceOpts {
    fn enhancer(&self) -> Result<Enhancer> {
        let detect = DetectorConfig {
            kind: self.detector,
            model: self.detector_model.clone(),
            threads: self.threads as usize,
            ..Default::default()
        };
        if self.threads > 0 {
            opencv::core::set_num_threads(self.threads as i32)?;
        }
        let mut restore = RestoreConfig {
            profile: self.profile.clone(),
            fidelity: self.fidelity,
            provider: ProviderOptions {
                provider: self.provider,
                device_id: self.device_id,
                fp16: self.fp16,
                trt_cache_dir: self.trt_cache_dir.clone(),
                threads: self.threads as usize,
            },
            strength: self.strength,
            upscale: self.upscale,
            background: BackgroundConfig {
                interpolation: self.background,
                model: self.background_model.clone(),
                ..Default::default()
            },
            max_stretch: self.max_stretch,
            force: self.force,
            refresh: self.restore_interval,
            ..Default::default()
        };
        if !self.model.is_empty() {
            restore.models = self.model.clone();
        }
        Enhancer::new(detect, restore)
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Video(args) => video::run(&args),
        Command::Speed(args) => speed::run(&args),
        Command::Join { work, output, no_progress } => {
            gst::init()?;
            let o = segment::join(&work, &output, no_progress)?;
            println!(
                "{} -> {}: {} frames, {} faces found, {:.1} s of segment work",
                work.display(),
                output.display(),
                o.frames,
                o.faces,
                o.seconds
            );
            Ok(())
        }
        Command::Status { work } => {
            print!("{}", segment::status(&work)?);
            Ok(())
        }
        Command::Image { inputs, output, opts } => {
            std::fs::create_dir_all(&output).with_context(|| format!("{}", output.display()))?;
            let mut enhancer = opts.enhancer()?;
            for input in inputs {
                let mut original = image::read(&input)?;
                let k = opts.upscale as i32;
                let mut img = Mat::new_rows_cols_with_default(
                    original.rows() * k,
                    original.cols() * k,
                    original.typ(),
                    opencv::core::Scalar::all(0.0),
                )?;
                let (faces, stats) =
                    enhancer.process_image_into(&frame_from_mat(&mut original)?, &mut frame_from_mat(&mut img)?)?;
                let stem = input.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into());
                image::write(&output.join(format!("{stem}.png")), &img)?;
                image::write(
                    &output.join(format!("{stem}-side-by-side.png")),
                    &image::side_by_side(&original, &img, 1)?,
                )?;
                println!(
                    "{}: {} faces, {} restored, {} kept as the background has them (never worse), {:.1} ms",
                    input.display(),
                    faces.len(),
                    stats.restored,
                    stats.skipped,
                    stats.total_ms
                );
            }
            Ok(())
        }
        Command::SideBySide { left, right, output, scale } => {
            image::write(&output, &image::side_by_side(&image::read(&left)?, &image::read(&right)?, scale)?)
        }
    }
}
