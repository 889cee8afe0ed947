//! The work folder as files, below everything else in the job: what each file is called,
//! the rule that a folder is ours (`.faceenhance-work`) or refused, JSON written so no
//! reader ever sees half a file, and the cleanup that removes only what the job made.
//! Nothing here knows what a segment's state is (that is `job`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// Marks a faceenhance work folder. Its text starts with "created" when faceenhance (or
/// its Slurm script) made the folder, "adopted" when the user gave an empty one: only a
/// created folder is ever removed.
const CREATED_MARKER: &str = ".faceenhance-work";

/// `plan.json`: how the video is cut (see `plan`).
pub fn plan_path(work: &Path) -> PathBuf {
    work.join("plan.json")
}

/// `seg-NNNN.json`: what the segment's last worker recorded (see `job::Record`).
pub fn record_path(work: &Path, index: usize) -> PathBuf {
    work.join(format!("seg-{index:04}.json"))
}

/// `seg-NNNN.mp4`: the finished segment.
pub fn video_path(work: &Path, index: usize) -> PathBuf {
    work.join(format!("seg-{index:04}.mp4"))
}

/// `seg-NNNN.part.mp4`: the segment while it is encoded, renamed to `seg-NNNN.mp4` when
/// finished, so a killed worker leaves nothing that looks finished.
pub fn part_path(work: &Path, index: usize) -> PathBuf {
    work.join(format!("seg-{index:04}.part.mp4"))
}

/// `seg-NNNN.lease`: who works on the segment now (see `job::Lease`).
pub fn lease_path(work: &Path, index: usize) -> PathBuf {
    work.join(format!("seg-{index:04}.lease"))
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

/// Writes JSON through a temporary file and a rename: readers (other workers, `status`)
/// never see half a file, and a killed writer leaves the old one.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not a faceenhance work file", path.display()))
}

/// A work folder is ours or refused: one that does not exist is created and marked; an
/// existing one must be empty or hold a faceenhance plan (or our marker). Any other folder
/// (`--work ~/Videos`) is the user's, and nothing is written into it.
pub fn claim_work_folder(work: &Path) -> Result<()> {
    match std::fs::create_dir(work) {
        Ok(()) => {
            std::fs::write(work.join(CREATED_MARKER), b"created by faceenhance; removed with the folder\n")
                .with_context(|| format!("writing into {}", work.display()))?;
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // a missing parent: make the parents, then the folder itself as ours
            let parent = work.parent().filter(|p| !p.as_os_str().is_empty()).context("--work has no parent")?;
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            return claim_work_folder(work);
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", work.display())),
    }
    ensure!(work.is_dir(), "{} exists and is not a folder: use another --work", work.display());
    if plan_path(work).is_file() || work.join(CREATED_MARKER).is_file() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(work).with_context(|| format!("reading {}", work.display()))?;
    ensure!(
        entries.next().is_none(),
        "{} is not a faceenhance work folder (it has files and no plan.json): refusing to use it; \
         give --work a new or empty folder",
        work.display()
    );
    // the user's empty folder: ours to work in, not to remove
    std::fs::write(work.join(CREATED_MARKER), b"adopted by faceenhance: the user's folder, never removed\n")
        .with_context(|| format!("writing into {}", work.display()))?;
    Ok(())
}

/// After a job that planned nothing (its input refused): a folder holding only our marker
/// is left as it was found: removed when faceenhance created it, emptied of the marker
/// when it was the user's empty folder. Anything else in it stays.
pub fn release_unused(work: &Path) {
    let only_marker = std::fs::read_dir(work)
        .map(|entries| entries.filter_map(|e| e.ok()).all(|e| e.file_name() == CREATED_MARKER))
        .unwrap_or(false);
    if !only_marker {
        return;
    }
    let created = std::fs::read(work.join(CREATED_MARKER)).is_ok_and(|t| t.starts_with(b"created"));
    let _ = std::fs::remove_file(work.join(CREATED_MARKER));
    if created {
        let _ = std::fs::remove_dir(work);
    }
}

/// Removes what a job wrote into its work folder (plan, segments, records, leases,
/// temporaries), and the folder itself only when faceenhance created it and nothing else
/// is left in it. Never recursive: a file the job did not make stays.
pub fn remove_work(work: &Path) -> Result<()> {
    let ours = |name: &str| {
        name == "plan.json"
            || name == CREATED_MARKER
            || (name.starts_with("seg-")
                && (name.ends_with(".mp4") || name.ends_with(".json") || name.ends_with(".lease")))
            || name.contains(".json.tmp")
    };
    let created = std::fs::read(work.join(CREATED_MARKER)).is_ok_and(|t| t.starts_with(b"created"));
    for e in std::fs::read_dir(work).with_context(|| format!("reading {}", work.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type()?.is_file() && ours(&name) && name != CREATED_MARKER {
            std::fs::remove_file(e.path()).with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    if created {
        let left: Vec<String> = std::fs::read_dir(work)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != CREATED_MARKER)
            .collect();
        if left.is_empty() {
            std::fs::remove_file(work.join(CREATED_MARKER))?;
            std::fs::remove_dir(work).with_context(|| format!("removing {}", work.display()))?;
        } else {
            eprintln!("{}: kept, it holds files faceenhance did not make: {}", work.display(), left.join(", "));
        }
    } else {
        let _ = std::fs::remove_file(work.join(CREATED_MARKER));
    }
    Ok(())
}
