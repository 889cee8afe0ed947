//! `prepare`: detect and align every image of a folder into a crop cache.

use std::path::PathBuf;

use anyhow::Result;
use faceenhance_train::data::prepare;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> Result<()> {
    let Args {
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
    } = a;
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
    Ok(())
}
