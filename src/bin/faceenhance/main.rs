//! The `faceenhance` command line: enhance still images, and put two pictures side by side
//! (the demo script uses it for the before/after frame).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use faceenhance::detect::{DetectorConfig, DetectorKind};
use faceenhance::frame::frame_from_mat;
use faceenhance::model::{Provider, ProviderOptions};
use faceenhance::pipeline::{Enhancer, RestoreConfig};
use opencv::core::{Mat, Point, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{core, imgcodecs, imgproc};

#[derive(Parser)]
#[command(version, about = "Find, restore and blend back faces")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

#[derive(Args)]
struct EnhanceOpts {
    /// Restoration model (ONNX with a profile TOML beside it).
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

fn read(path: &Path) -> Result<Mat> {
    let m = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR)?;
    if m.empty() {
        bail!("{}: not an image OpenCV can read", path.display());
    }
    Ok(m)
}

fn write(path: &Path, m: &Mat) -> Result<()> {
    if !imgcodecs::imwrite(path, m, &Vector::new())? {
        bail!("{}: could not write", path.display());
    }
    Ok(())
}

fn side_by_side(left: &Mat, right: &Mat, scale: i32) -> Result<Mat> {
    let mut r = Mat::default();
    let h = left.rows();
    let w = (right.cols() as f64 * h as f64 / right.rows() as f64).round() as i32;
    imgproc::resize(right, &mut r, Size::new(w.max(1), h), 0.0, 0.0, imgproc::INTER_CUBIC)?;
    let mut both = Mat::default();
    let pair: Vector<Mat> = Vector::from_iter([left.clone(), r]);
    core::hconcat(&pair, &mut both)?;
    let mut out = Mat::default();
    let s = scale.max(1);
    imgproc::resize(&both, &mut out, Size::new(both.cols() * s, both.rows() * s), 0.0, 0.0, imgproc::INTER_NEAREST)?;
    for (text, x) in [("input", 4), ("faceenhance", left.cols() * s + 4)] {
        let org = Point::new(x, 14);
        imgproc::put_text(
            &mut out,
            text,
            org,
            imgproc::FONT_HERSHEY_SIMPLEX,
            0.45,
            Scalar::all(0.0),
            3,
            imgproc::LINE_AA,
            false,
        )?;
        imgproc::put_text(
            &mut out,
            text,
            org,
            imgproc::FONT_HERSHEY_SIMPLEX,
            0.45,
            Scalar::all(255.0),
            1,
            imgproc::LINE_AA,
            false,
        )?;
    }
    Ok(out)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Image { inputs, output, opts } => {
            std::fs::create_dir_all(&output).with_context(|| format!("{}", output.display()))?;
            let mut enhancer = opts.enhancer()?;
            for input in inputs {
                let original = read(&input)?;
                let mut img = original.try_clone()?;
                let (faces, stats) = enhancer.process(&mut frame_from_mat(&mut img)?)?;
                let stem = input.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into());
                write(&output.join(format!("{stem}.png")), &img)?;
                write(&output.join(format!("{stem}-side-by-side.png")), &side_by_side(&original, &img, 1)?)?;
                println!(
                    "{}: {} faces, {} restored, {:.1} ms",
                    input.display(),
                    faces.len(),
                    stats.restored,
                    stats.total_ms
                );
            }
        }
        Command::SideBySide { left, right, output, scale } => {
            write(&output, &side_by_side(&read(&left)?, &read(&right)?, scale)?)?;
        }
    }
    Ok(())
}
