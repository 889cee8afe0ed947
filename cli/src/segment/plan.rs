//! The plan: how a video is cut into key-frame-aligned segments (`plan.json`, written
//! once by whichever worker comes first, checked by every other against its input,
//! segment count and settings), and which file an input is (path, size, time).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::probe::{probe_with_start, variable_rate, Packet};
use super::work::{claim_work_folder, mtime_of, plan_path, read_json, write_json};
use crate::video::VideoArgs;

/// The options that change the pixels or the encoding: segments made with other settings
/// must not be joined, so the plan keeps them and every worker compares. How a worker
/// runs (its thread count, GPU number, engine cache) may differ from node to node.
pub fn settings(args: &VideoArgs) -> Result<String> {
    Ok(format!(
        "{} quality={} chroma={:?} compare={:?}",
        args.opts.settings()?,
        args.quality,
        args.chroma,
        args.compare
    ))
}

/// How a new plan cuts the video.
#[derive(Clone, Copy, Debug)]
pub enum Parts {
    /// Into this many segments (`--segment K/N`: every worker must agree on N).
    Count(usize),
    /// Into segments of about this many seconds (`--resume`).
    Seconds(f64),
}

/// One segment of the plan: frames with `start_ns <= pts < end_ns` (`None`: open end).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Span {
    pub index: usize,
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    /// Video packets with a timestamp in the span (the frames the segment must write).
    pub frames: u64,
}

/// How a video is cut: written once into the work folder, read by every worker and `join`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub version: u32,
    pub input: PathBuf,
    pub input_bytes: u64,
    /// The input's modification time (seconds since 1970) when the plan was made: a file
    /// replaced by another of the same size is not the same input.
    #[serde(default)]
    pub input_mtime: Option<u64>,
    pub settings: String,
    pub frames: u64,
    pub key_frames: u64,
    pub first_pts_ns: u64,
    pub last_pts_ns: u64,
    /// The stream's frame rate as its container first states it: every segment's encoder
    /// is given this one, so all segments share their stream headers.
    pub framerate: [i32; 2],
    /// Where the source's shown time starts on its timestamps (its video segment's start,
    /// e.g. an MP4 edit list hiding B-frame delay): the join starts there too, so the joined
    /// video keeps the source's place against its audio.
    #[serde(default)]
    pub shown_from_ns: u64,
    /// The frame interval changes (see `variable_rate`): encoded without B-frames.
    pub variable_rate: bool,
    pub segments: Vec<Span>,
}

impl Plan {
    /// The work folder's plan, as the first worker wrote it (for `join` and `status`).
    pub fn read(work: &Path) -> Result<Plan> {
        read_json(&plan_path(work))
    }

    /// The work folder's plan, checked against this input, segment count and settings;
    /// or a new one (the same for every worker that makes it: written atomically, so two
    /// workers starting at once agree). `parts`: a fixed count, or segments of about this
    /// many seconds (then an existing plan's count is taken as it is).
    pub fn open_or_make(work: &Path, input: &Path, parts: Parts, settings: &str) -> Result<Plan> {
        let InputIdentity { path: input, bytes, mtime } = InputIdentity::of(input)?;
        let path = plan_path(work);
        claim_work_folder(work)?;
        if path.is_file() {
            let plan: Plan = read_json(&path)?;
            ensure!(
                plan.input == input
                    && plan.input_bytes == bytes
                    && (plan.input_mtime.is_none() || plan.input_mtime == mtime),
                "{} belongs to {} ({} bytes), not {} ({bytes} bytes): use another --work",
                work.display(),
                plan.input.display(),
                plan.input_bytes,
                input.display()
            );
            if let Parts::Count(n) = parts {
                ensure!(
                    plan.segments.len() == n,
                    "{} is cut into {} segments, not {n}",
                    work.display(),
                    plan.segments.len()
                );
            }
            ensure!(
                plan.settings == settings,
                "{} was made with other settings:\n  {}\nnot\n  {settings}\n(use the same options, or another --work)",
                work.display(),
                plan.settings
            );
            return Ok(plan);
        }
        let (packets, framerate, shown_from) = probe_with_start(&input)?;
        let n = match parts {
            Parts::Count(n) => n,
            Parts::Seconds(secs) => {
                let first = packets.iter().map(|p| p.pts).min().unwrap_or(0);
                let last = packets.iter().map(|p| p.pts).max().unwrap_or(0);
                (((last - first) as f64 / 1e9 / secs).ceil() as usize).max(1)
            }
        };
        let mut plan = Plan::cut(&input, bytes, settings, &packets, framerate, n)?;
        plan.input_mtime = mtime;
        plan.shown_from_ns = shown_from;
        write_json(&path, &plan)?;
        Ok(plan)
    }

    /// Cuts at the key frames nearest to N equal parts of the video's time span; with
    /// fewer key frames than cuts, the last segments are empty.
    pub fn cut(
        input: &Path,
        bytes: u64,
        settings: &str,
        packets: &[Packet],
        framerate: [i32; 2],
        n: usize,
    ) -> Result<Plan> {
        ensure!(!packets.is_empty(), "{}: no video frames", input.display());
        let first = packets.iter().map(|p| p.pts).min().unwrap();
        let last = packets.iter().map(|p| p.pts).max().unwrap();
        let mut keys: Vec<u64> = packets.iter().filter(|p| p.key && p.pts > first).map(|p| p.pts).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut cuts: Vec<u64> = Vec::new();
        let span = (last - first) as f64;
        for i in 1..n {
            let target = first as f64 + span * i as f64 / n as f64;
            let after = cuts.last().copied().unwrap_or(first);
            let best = keys
                .iter()
                .copied()
                .filter(|&k| k > after)
                .min_by(|a, b| (*a as f64 - target).abs().total_cmp(&(*b as f64 - target).abs()));
            match best {
                Some(k) => cuts.push(k),
                None => break,
            }
        }
        let mut segments = Vec::with_capacity(n);
        for index in 0..n {
            let start = if index == 0 { None } else { cuts.get(index - 1).copied() };
            let end = cuts.get(index).copied();
            // a segment past the last cut (too few key frames) is empty
            let empty = index > 0 && start.is_none();
            let frames = if empty {
                0
            } else {
                packets.iter().filter(|p| start.is_none_or(|s| p.pts >= s) && end.is_none_or(|e| p.pts < e)).count()
                    as u64
            };
            let (start_ns, end_ns) = if empty { (Some(last + 1), Some(last + 1)) } else { (start, end) };
            segments.push(Span { index, start_ns, end_ns, frames });
        }
        Ok(Plan {
            version: 1,
            input: input.to_path_buf(),
            input_bytes: bytes,
            input_mtime: None,
            shown_from_ns: 0,
            settings: settings.to_string(),
            frames: packets.len() as u64,
            key_frames: packets.iter().filter(|p| p.key).count() as u64,
            first_pts_ns: first,
            last_pts_ns: last,
            framerate,
            variable_rate: variable_rate(packets),
            segments,
        })
    }
}

/// Which file an input is: its canonical path, size and modification time.
pub struct InputIdentity {
    pub path: PathBuf,
    pub bytes: u64,
    pub mtime: Option<u64>,
}

impl InputIdentity {
    pub fn of(input: &Path) -> Result<Self> {
        let path = std::fs::canonicalize(input).with_context(|| format!("{}: no such file", input.display()))?;
        let meta = std::fs::metadata(&path)?;
        Ok(Self { path, bytes: meta.len(), mtime: mtime_of(&meta) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(pts_key: &[(u64, bool)]) -> Vec<Packet> {
        pts_key.iter().map(|&(pts, key)| Packet { pts, key }).collect()
    }

    #[test]
    fn cuts_fall_on_key_frames_and_every_frame_is_in_one_segment() {
        // 40 frames at 10 ms, B-frame order (pts not monotonic), key frames every 10
        let mut list = Vec::new();
        for i in 0..40u64 {
            let pts = if i % 10 == 1 {
                (i + 1) * 10
            } else if i % 10 == 2 {
                (i - 1) * 10
            } else {
                i * 10
            };
            list.push((pts, i % 10 == 0));
        }
        let p = packets(&list);
        let plan = Plan::cut(Path::new("x"), 0, "", &p, [25, 1], 3).unwrap();
        let starts: Vec<Option<u64>> = plan.segments.iter().map(|s| s.start_ns).collect();
        assert_eq!(starts, vec![None, Some(100), Some(300)]);
        assert_eq!(plan.segments.iter().map(|s| s.frames).sum::<u64>(), 40);
        assert_eq!(plan.segments[0].end_ns, Some(100));
        assert_eq!(plan.segments[2].end_ns, None);
        // more segments than key frames: the last ones are empty, none is lost
        let plan = Plan::cut(Path::new("x"), 0, "", &p, [25, 1], 6).unwrap();
        assert_eq!(plan.segments.iter().map(|s| s.frames).sum::<u64>(), 40);
        assert_eq!(plan.segments.iter().filter(|s| s.frames == 0).count(), 2);
    }
}
