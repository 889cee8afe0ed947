//! `faceenhance-train`: prepare a crop cache, train, export to ONNX, evaluate. This file
//! parses the command line; each subcommand's arguments and work are in `commands/`.

mod commands;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::commands::RunArgs;

#[derive(Parser)]
#[command(version, about = "Train, export and evaluate the faceenhance generators")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[cfg(feature = "core")]
    /// Detect and align every image of a folder (core crate's YuNet + crop_face) into a cache.
    Prepare(commands::prepare::Args),
    #[cfg(feature = "core")]
    /// Measure the detector's framing error against full resolution at each crop size
    /// (the jitter a model of that size should train with); prints JSON.
    AlignError(commands::align_error::Args),
    /// Train (or resume) a generator from a TOML config.
    Train(RunArgs),
    /// Train (or resume) the face attribute predictor (40 CelebA attributes) from a TOML config.
    Attributes(RunArgs),
    /// Export the attribute predictor to ONNX and write its validation accuracy per
    /// attribute (clean and degraded crops) as a markdown table.
    AttributesReport(commands::attributes_report::Args),
    /// Train (or resume) the attribute editor (InterGAN-style, 64 px).
    Edit(RunArgs),
    /// Export the attribute editor to ONNX, measure its edits on the validation split
    /// (judged by the attribute predictor) as a markdown table, and write a grid.
    EditReport(commands::edit_report::Args),
    /// Train (or resume) the learned degradation GAN (clean crops -> real-looking LR crops).
    DegradeTrain(RunArgs),
    /// Export the EMA degradation generator to ONNX (input [batch, 4, H, W]: RGB + noise).
    DegradeExport(commands::degrade_export::Args),
    /// Statistics of real LR crops, area down-scales, the synthetic pipeline and the exported
    /// degradation generator (through ONNX Runtime); grid PNG.
    DegradeEval(commands::degrade_eval::Args),
    /// Export the EMA generator of a run's checkpoint to ONNX (input/output, dynamic batch).
    Export(commands::export::Args),
    /// Writes dlib's face-recognition net (from the set-up's face-api package) as ONNX for
    /// the core's identity measure: `input` [batch, 3, 150, 150] -> `output` [batch, 128, 1, 1].
    FaceIdExport(commands::face_id_export::Args),
    /// Evaluate an ONNX generator through ONNX Runtime on the validation split.
    Eval(commands::eval::Args),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        #[cfg(feature = "core")]
        Cmd::Prepare(a) => commands::prepare::run(a),
        #[cfg(feature = "core")]
        Cmd::AlignError(a) => commands::align_error::run(a),
        Cmd::Train(run) => commands::train::run(run),
        Cmd::Attributes(run) => commands::attributes::run(run),
        Cmd::AttributesReport(a) => commands::attributes_report::run(a),
        Cmd::Edit(run) => commands::edit::run(run),
        Cmd::EditReport(a) => commands::edit_report::run(a),
        Cmd::DegradeTrain(run) => commands::degrade_train::run(run),
        Cmd::DegradeExport(a) => commands::degrade_export::run(a),
        Cmd::DegradeEval(a) => commands::degrade_eval::run(a),
        Cmd::Export(a) => commands::export::run(a),
        Cmd::FaceIdExport(a) => commands::face_id_export::run(a),
        Cmd::Eval(a) => commands::eval::run(a),
    }
}
