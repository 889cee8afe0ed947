//! `faceenhance speed`: faces per second of each model on the chosen provider and batch
//! sizes, with the provider that really ran and why others did not: the figures a GPU
//! session writes into BENCHMARKS.md (`scripts/gpu-check.sh`), and a quick check on a
//! user's own machine.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use faceenhance::model::{Provider, ProviderOptions, Restorer};
use faceenhance::restore::expand_models;
use opencv::core::{Mat, Scalar, CV_8UC3};

#[derive(Args)]
pub struct SpeedArgs {
    /// Model files or folders (default: the shipped models).
    models: Vec<PathBuf>,
    /// auto, cpu, cuda, tensorrt.
    #[arg(long, default_value = "auto")]
    provider: Provider,
    /// Half precision (TensorRT engines).
    #[arg(long)]
    fp16: bool,
    /// Batch sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    batch: Vec<usize>,
    /// Timed runs per model and batch size (after two warm-up runs).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Profile for a single model (as `image --profile`).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// TensorRT engine cache folder.
    #[arg(long)]
    trt_cache_dir: Option<PathBuf>,
    /// CPU threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Prints one markdown row per model and batch size.
pub fn run(args: &SpeedArgs) -> Result<()> {
    let given = if args.models.is_empty() { vec![faceenhance::paths::default_models()] } else { args.models.clone() };
    let opts = ProviderOptions {
        provider: args.provider,
        fp16: args.fp16,
        trt_cache_dir: args.trt_cache_dir.clone(),
        threads: args.threads,
        ..Default::default()
    };
    println!("| model | asked | ran on | batch | ms per batch | faces/s | providers skipped |");
    println!("| --- | --- | --- | ---: | ---: | ---: | --- |");
    for path in expand_models(&given)? {
        let mut r = Restorer::load(&path, args.profile.as_deref(), &opts)?;
        let size = r.profile().input_size;
        let skipped: Vec<String> = r.report().skipped.iter().map(|(p, why)| format!("{}: {why}", p.name())).collect();
        for &batch in &args.batch {
            let crops = vec![Mat::new_rows_cols_with_default(size, size, CV_8UC3, Scalar::all(128.0))?; batch.max(1)];
            for _ in 0..2 {
                r.infer(&crops)?;
            }
            let t = Instant::now();
            for _ in 0..args.runs.max(1) {
                r.infer(&crops)?;
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / args.runs.max(1) as f64;
            println!(
                "| {} | {}{} | {} | {batch} | {ms:.2} | {:.1} | {} |",
                r.profile().name,
                args.provider.name(),
                if args.fp16 { " fp16" } else { "" },
                r.report().active.name(),
                batch as f64 * 1e3 / ms,
                if skipped.is_empty() { "-".to_string() } else { skipped.join("; ").replace('|', "/") }
            );
        }
    }
    Ok(())
}
