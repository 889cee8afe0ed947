//! `faceenhance video IN -o OUT --resume` on one machine: the plan, every segment not done
//! yet, the join, then the work folder's files removed (unless `--keep-work`).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{ensure, Context, Result};

use super::job::State;
use super::join::{join, JoinOutcome};
use super::plan::{settings, Parts, Plan};
use super::work::{release_unused, remove_work};
use super::worker::run_segment;
use crate::video::VideoArgs;

/// `faceenhance video IN -o OUT --resume`: every unfinished segment, then the join; the
/// work folder is removed once OUT is written.
pub fn run(args: &VideoArgs, input: &Path, output: &Path, stop: &AtomicBool) -> Result<JoinOutcome> {
    let work = match &args.segments.work {
        Some(w) => w.clone(),
        None => {
            let mut name = output.file_name().context("--output has no file name")?.to_os_string();
            name.push(".work");
            output.with_file_name(name)
        }
    };
    ensure!(args.segments.segment_seconds > 0.0, "--segment-seconds must be positive");
    let plan = match Plan::open_or_make(&work, input, Parts::Seconds(args.segments.segment_seconds), &settings(args)?) {
        Ok(plan) => plan,
        Err(e) => {
            // nothing planned (an input that cannot be cut): no folder left behind for it
            release_unused(&work);
            return Err(e);
        }
    };
    let n = plan.segments.len();
    let kept = (0..n).filter(|&i| State::read(&work, i).is_done()).count();
    if kept > 0 {
        println!("{}: {kept} of {n} segments already done, resuming", work.display());
    }
    for i in 0..n {
        let rec = run_segment(args, &work, &plan, i, stop)?;
        tracing::info!("{}", rec.summary());
    }
    let outcome = join(&work, output, args.no_progress)?;
    if !args.segments.keep_work {
        remove_work(&work)?;
    }
    println!(
        "{} -> {}: {} frames in {} segments, {} faces found, {:.1} s of work",
        input.display(),
        output.display(),
        outcome.frames,
        n,
        outcome.faces,
        outcome.seconds
    );
    Ok(outcome)
}
