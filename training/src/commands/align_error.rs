//! `align-error`: the detector's framing error against full resolution at each crop size.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::data::align_error::{self, AlignErrorArgs};

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Result<()> {
    let Args { input, sizes, detector, detector_model, limit } = a;
    let r = align_error::run(&AlignErrorArgs { input, sizes, detector, detector_model, limit })?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
