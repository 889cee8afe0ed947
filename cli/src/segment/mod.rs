//! Archives at scale: a video is cut into key-frame-aligned segments in a work folder, each
//! segment is enhanced and encoded on its own (one process, or one task of a cluster array
//! job), and `join` puts the encoded segments together without encoding them again, with
//! the source's audio.
//!
//! Frame-exact by construction: the plan lists the presentation times of the video's key
//! frames, and segment `k` owns exactly the decoded frames whose timestamp lies in
//! `[start_k, start_k+1)`. Its worker seeks to the key frame at `start_k` (or before it),
//! drops what comes earlier (an open GOP's leading B-frames belong to the segment before),
//! and stops at the first frame of the next segment, in presentation order, so B-frames
//! and variable frame rates need nothing special. The work folder holds `plan.json`, one
//! `seg-NNNN.mp4` per finished segment (written as `.part` and renamed, so a killed worker
//! leaves nothing that looks finished), `seg-NNNN.json`, the segment's record (state,
//! host, frames, faces, timing) that `faceenhance status` prints, and `seg-NNNN.lease`
//! while a worker holds the segment.
//!
//! This file holds the options and the dispatch; the rest, each building only on those
//! listed above it:
//!
//! - `work`: the work folder's files, ours or refused, cleanup of only what the job made
//! - `job`: a segment's state (planned, running, done, failed, stopped, lost) and its
//!   transitions, the lease
//! - `probe`: the demux-only pass (timestamps, key frames, frame rate)
//! - `plan`: how the video is cut, `plan.json`, which file an input is
//! - `worker`: one segment enhanced and encoded
//! - `join`: the finished segments into one file, with the source's audio
//! - `status`: the table of `faceenhance status`
//! - `resume`: `--resume` on one machine (plan, segments, join, cleanup)
//! - `manifest`: many inputs, sharded, each with its `OUTPUT.json`

mod job;
pub mod join;
mod manifest;
mod plan;
pub mod probe;
mod resume;
pub mod status;
mod work;
mod worker;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;

use anyhow::{ensure, Context, Result};
use clap::Args;

use crate::video::{transcode, VideoArgs};
use plan::{settings, Parts, Plan};

/// The options of `faceenhance video` that split the work.
#[derive(Args, Clone, Debug)]
pub struct SegmentArgs {
    /// Work in key-frame-aligned segments in a work folder (OUTPUT.work/, or --work) and
    /// pick up where an earlier run stopped: finished segments are kept, only unfinished
    /// ones are done again. Once the output is written, the files the job made are removed,
    /// and the folder too if faceenhance created it. An existing --work must be empty or
    /// a faceenhance work folder: any other folder is refused.
    #[arg(long)]
    pub resume: bool,
    /// Work folder of a segmented run (shared storage for a cluster).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Enhance only segment K (0-based) of N into --work, e.g. one task of an array job;
    /// `faceenhance join DIR -o OUT` puts the segments together.
    #[arg(long, value_name = "K/N", requires = "work", conflicts_with = "output")]
    pub segment: Option<Part>,
    /// With --resume: keep the work folder (segments and records) after the output is written.
    #[arg(long)]
    pub keep_work: bool,
    /// Length of a segment with --resume, in seconds of video (cut at the nearest key frame).
    #[arg(long, default_value_t = 60.0)]
    pub segment_seconds: f64,
    /// A list of inputs, one per line: `INPUT` or `INPUT<TAB>OUTPUT` (`#` starts a comment).
    /// Each output gets OUTPUT.json beside it: what was done. Outputs with a finished record
    /// are skipped, so a shard can be run again after a failure.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "output", "segment"])]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only the lines whose index (0-based, counting inputs) is K modulo N.
    #[arg(long, value_name = "K/N", requires = "manifest")]
    pub shard: Option<Part>,
    /// With --manifest: folder for the outputs of lines that name none (INPUT's stem + .mp4).
    #[arg(long, value_name = "DIR", requires = "manifest")]
    pub out_dir: Option<PathBuf>,
}

/// `K/N`: the K-th (0-based) of N parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub k: usize,
    pub n: usize,
}

impl FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("'{s}' is not K/N"))?;
        let k: usize = k.trim().parse().map_err(|_| format!("'{s}': K is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| format!("'{s}': N is not a number"))?;
        if n == 0 || k >= n {
            return Err(format!("'{s}': K must be in 0..N (0-based) and N at least 1"));
        }
        Ok(Part { k, n })
    }
}

/// `faceenhance video` by its options: a manifest shard, one segment, a resumable run or
/// a plain one-pipeline transcode.
pub fn dispatch(args: &VideoArgs, stop: &AtomicBool) -> Result<()> {
    let s = &args.segments;
    if let Some(manifest) = &s.manifest {
        return manifest::run(args, manifest, stop);
    }
    let input = args.input.as_deref().context("an input is required")?;
    if let Some(part) = s.segment {
        let work = s.work.as_deref().context("--segment needs --work")?;
        ensure!(args.faces.is_none(), "--faces needs the whole video in one run (not --segment)");
        let plan = Plan::open_or_make(work, input, Parts::Count(part.n), &settings(args)?)?;
        let rec = worker::run_segment(args, work, &plan, part.k, stop)?;
        println!("{}", rec.summary());
        return Ok(());
    }
    let output = args.output.as_deref().context("--output is required")?;
    if s.resume || s.work.is_some() {
        resume::run(args, input, output, stop)?;
    } else {
        transcode(args, input, output, stop)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_and_refuse_nonsense() {
        assert_eq!("2/5".parse::<Part>().unwrap(), Part { k: 2, n: 5 });
        for bad in ["5/5", "1/0", "a/3", "3", "-1/2"] {
            assert!(bad.parse::<Part>().is_err(), "{bad}");
        }
    }
}
