//! The `faceenhance` command line: videos and still images through the same GStreamer
//! elements `gst-launch-1.0` users get (their properties are its options), segmented
//! transcodes for clusters, model speed, and two pictures side by side.

mod attributes;
mod image;
mod options;
mod segment;
mod speed;
mod video;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use options::EnhanceOpts;

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
        /// One JSON line per image instead of the sentence: faces, restorations, and per
        /// restored face how far it moved from its input's identity (measured, as with
        /// --measure-identity).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        opts: EnhanceOpts,
    },
    /// The 40 CelebA attributes (Eyeglasses, Smiling, Male, ...) of every face in still
    /// images, by the attribute predictor: those present, most certain first.
    Attributes(attributes::AttributesArgs),
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

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Video(args) => video::run(&args),
        Command::Speed(args) => speed::run(&args),
        Command::Attributes(args) => attributes::run(&args),
        Command::Join { work, output, no_progress } => {
            gst::init()?;
            let o = segment::join::join(&work, &output, no_progress)?;
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
            print!("{}", segment::status::status(&work)?);
            Ok(())
        }
        Command::Image { inputs, output, json, opts } => {
            std::fs::create_dir_all(&output).with_context(|| format!("{}", output.display()))?;
            for input in inputs {
                let original = image::read(&input)?;
                let (img, tally) =
                    image::enhance(&opts, &original, json).with_context(|| format!("{}", input.display()))?;
                let stem = input.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "image".into());
                image::write(&output.join(format!("{stem}.png")), &img)?;
                image::write(
                    &output.join(format!("{stem}-side-by-side.png")),
                    &image::side_by_side(&original, &img, 1)?,
                )?;
                if json {
                    let round = |v: f64| (v * 1000.0).round() / 1000.0;
                    let line = serde_json::json!({
                        "input": input,
                        "output": output.join(format!("{stem}.png")),
                        "faces": tally.faces,
                        "restored": tally.restored,
                        "kept": tally.skipped,
                        "identity_moved": tally.identity_moved.iter().map(|&v| round(v)).collect::<Vec<_>>(),
                        "ms": round(tally.restore_ms),
                    });
                    println!("{line}");
                    continue;
                }
                println!(
                    "{}: {} faces, {} restored, {} kept as the background has them (never worse), {:.1} ms",
                    input.display(),
                    tally.faces,
                    tally.restored,
                    tally.skipped,
                    tally.restore_ms
                );
                if let Some(line) = tally.identity_summary() {
                    println!("  {line}");
                }
            }
            Ok(())
        }
        Command::SideBySide { left, right, output, scale } => {
            image::write(&output, &image::side_by_side(&image::read(&left)?, &image::read(&right)?, scale)?)
        }
    }
}
