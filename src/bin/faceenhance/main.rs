//! The `faceenhance` command line: transcode videos through the same GStreamer elements
//! `gst-launch-1.0` users get, enhance still images through the core, and put two
//! pictures side by side.

mod image;
mod video;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use faceenhance::detect::{DetectorConfig, DetectorKind};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::{Provider, ProviderOptions};
use faceenhance::pipeline::{Enhancer, RestoreConfig};
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
#[derive(Args, Clone)]
pub struct EnhanceOpts {
    /// Restoration model (ONNX with a profile TOML beside it); default: the shipped one.
    #[arg(long)]
    model: Option<PathBuf>,
    /// auto, cpu, cuda, tensorrt.
    #[arg(long, default_value = "auto")]
    provider: Provider,
    /// auto, yunet, centerface, haar.
    #[arg(long, default_value = "auto")]
    detector: DetectorKind,
    /// YuNet or CenterFace ONNX file.
    #[arg(long)]
    detector_model: Option<PathBuf>,
    /// 0: faces untouched .. 1: restored faces replace the originals.
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
}

impl EnhanceOpts {
    fn enhancer(&self) -> Result<Enhancer> {
        let detect = DetectorConfig { kind: self.detector, model: self.detector_model.clone(), ..Default::default() };
        let mut restore = RestoreConfig {
            provider: ProviderOptions { provider: self.provider, ..Default::default() },
            strength: self.strength,
            ..Default::default()
        };
        if let Some(m) = &self.model {
            restore.model = m.clone();
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
        Command::Image { inputs, output, opts } => {
            std::fs::create_dir_all(&output).with_context(|| format!("{}", output.display()))?;
            let mut enhancer = opts.enhancer()?;
            for input in inputs {
                let original = image::read(&input)?;
                let mut img = original.try_clone()?;
                let (faces, stats) = enhancer.process_image(&mut frame_from_mat(&mut img)?)?;
                let stem = input.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into());
                image::write(&output.join(format!("{stem}.png")), &img)?;
                image::write(
                    &output.join(format!("{stem}-side-by-side.png")),
                    &image::side_by_side(&original, &img, 1)?,
                )?;
                println!(
                    "{}: {} faces, {} restored, {:.1} ms",
                    input.display(),
                    faces.len(),
                    stats.restored,
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
