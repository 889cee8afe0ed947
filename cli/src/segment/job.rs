//! A segment's state machine, in one type. [`State::read`] says where a segment stands
//! from its files in the work folder; [`State::take`], [`Claim::finish`] and
//! [`Claim::fail`] are the only ways it moves. The worker, the join, `status` and
//! `--resume` all ask this module: none of them reads a record or a lease itself.
//!
//! ```text
//!   Planned ──┐
//!   Failed  ──┤  take: the lease (`seg-NNNN.lease`) created, or taken over
//!   Stopped ──┼──────  from a holder that is gone; the record says running  ──► Running
//!   Lost    ──┤
//!   Running ──┘ (only when its worker is gone: a live holder's lease refuses)
//!
//!   Running ── finish ──► Done ── (its video removed or changed) ──► Lost
//!           ── fail ────► Failed, or Stopped (Ctrl-C)
//! ```
//!
//! A worker killed outright (SIGKILL, a node lost) leaves its segment Running with its
//! lease behind: the lease is refreshed while the holder lives, so the next worker sees
//! the holder gone (a dead pid on this host, or no refresh for `FACEENHANCE_LEASE_STALE_S`
//! from another host) and takes it over.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::work::{hostname, lease_path, now_unix, part_path, read_json, record_path, video_path, write_json};

/// Where one segment of a job stands. Every state but `Planned` has the record its last
/// worker wrote (`seg-NNNN.json`: host, pid, start, frames, faces, timing, error).
#[derive(Clone, Debug)]
pub enum State {
    /// In the plan, no worker has recorded anything (`status` says "waiting").
    Planned,
    /// A worker took the lease and recorded that it runs: `host`, `pid`, `started_unix`.
    /// Left behind by a worker that was killed; its lease tells whether it still lives.
    Running(Record),
    /// Finished, and its video (`seg-NNNN.mp4`) is there with the size recorded (none
    /// when the segment has no frames).
    Done(Record),
    /// The worker met an error: `error` is the reason. Done again by the next worker.
    Failed(Record),
    /// The worker was stopped (Ctrl-C) before it finished: done again by the next worker.
    Stopped(Record),
    /// Recorded done, but its video is gone or not the size recorded: done again.
    Lost(Record),
}

impl State {
    /// What the segment's files say: its record, and for a done one its video.
    pub fn read(work: &Path, index: usize) -> State {
        let Ok(record) = read_json::<Record>(&record_path(work, index)) else {
            return State::Planned;
        };
        match record.state {
            Recorded::Running => State::Running(record),
            Recorded::Failed => State::Failed(record),
            Recorded::Stopped => State::Stopped(record),
            Recorded::Done => {
                let whole = record.frames == 0
                    || std::fs::metadata(video_path(work, index)).is_ok_and(|m| m.len() == record.bytes);
                if whole {
                    State::Done(record)
                } else {
                    State::Lost(record)
                }
            }
        }
    }

    /// The word `status` prints.
    pub fn name(&self) -> &'static str {
        match self {
            State::Planned => "waiting",
            State::Running(_) => "running",
            State::Done(_) => "done",
            State::Failed(_) => "failed",
            State::Stopped(_) => "stopped",
            State::Lost(_) => "lost",
        }
    }

    /// Its last worker's record (`None`: planned).
    pub fn record(&self) -> Option<&Record> {
        match self {
            State::Planned => None,
            State::Running(r) | State::Done(r) | State::Failed(r) | State::Stopped(r) | State::Lost(r) => Some(r),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, State::Done(_))
    }

    /// Any state but Done -> Running, for this process: takes the segment's lease
    /// (refused while another worker that lives holds it, taken over from one that is
    /// gone) and records it running, expecting `expected_frames`. A segment that is done,
    /// before or once the lease is taken (its holder finished while this one waited),
    /// stays done: its record is returned instead.
    pub fn take(work: &Path, index: usize, expected_frames: u64) -> Result<Taken> {
        if let State::Done(record) = State::read(work, index) {
            return Ok(Taken::Done(record));
        }
        let lease = Lease::take(work, index)?;
        if let State::Done(record) = State::read(work, index) {
            return Ok(Taken::Done(record));
        }
        let record = Record {
            index,
            state: Recorded::Running,
            host: hostname(),
            pid: std::process::id(),
            started_unix: now_unix(),
            finished_unix: None,
            seconds: 0.0,
            frames: 0,
            expected_frames,
            faces: 0,
            first_pts_ns: None,
            last_pts_ns: None,
            bytes: 0,
            error: None,
        };
        write_json(&record_path(work, index), &record)?;
        Ok(Taken::Claimed(Claim { work: work.to_path_buf(), record, started: Instant::now(), _lease: lease }))
    }
}

/// What [`State::take`] found.
pub enum Taken {
    /// The segment is done already (kept, not done again).
    Done(Record),
    /// This process now runs it.
    Claimed(Claim),
}

/// A segment this process runs (the Running state from the inside): its lease held and
/// refreshed, its record "running" until `finish` or `fail` writes the outcome; the lease
/// is released after that.
pub struct Claim {
    work: PathBuf,
    record: Record,
    started: Instant,
    _lease: Lease,
}

impl Claim {
    /// Where the worker encodes (`seg-NNNN.part.mp4`).
    pub fn part(&self) -> PathBuf {
        part_path(&self.work, self.record.index)
    }

    /// The record the worker fills in as it goes (frames, faces, first and last frame).
    pub fn record_mut(&mut self) -> &mut Record {
        &mut self.record
    }

    /// Running -> Done: the part file (if the segment has frames) becomes `seg-NNNN.mp4`,
    /// and the record says done with its size.
    pub fn finish(mut self) -> Result<Record> {
        self.close();
        let index = self.record.index;
        if self.record.expected_frames > 0 {
            std::fs::rename(part_path(&self.work, index), video_path(&self.work, index))?;
            self.record.bytes = std::fs::metadata(video_path(&self.work, index))?.len();
        }
        self.record.state = Recorded::Done;
        write_json(&record_path(&self.work, index), &self.record)?;
        Ok(self.record)
    }

    /// Running -> Failed, or Stopped when the run was stopped (Ctrl-C): the part file is
    /// removed, the record keeps the reason.
    pub fn fail(mut self, reason: &anyhow::Error, stopped: bool) -> Result<Record> {
        self.close();
        let index = self.record.index;
        self.record.state = if stopped { Recorded::Stopped } else { Recorded::Failed };
        self.record.error = Some(format!("{reason:#}"));
        let _ = std::fs::remove_file(part_path(&self.work, index));
        write_json(&record_path(&self.work, index), &self.record)?;
        Ok(self.record)
    }

    fn close(&mut self) {
        self.record.seconds = self.started.elapsed().as_secs_f64();
        self.record.finished_unix = Some(now_unix());
    }
}

/// The state word a record file holds: what its worker last wrote. What the segment is
/// also depends on its video (see [`State::read`]). A manifest's `OUTPUT.json` uses the
/// same words for a whole output.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Recorded {
    Running,
    Done,
    Failed,
    Stopped,
}

/// What one worker did with one segment (`seg-NNNN.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub index: usize,
    pub state: Recorded,
    pub host: String,
    pub pid: u32,
    pub started_unix: u64,
    pub finished_unix: Option<u64>,
    pub seconds: f64,
    pub frames: u64,
    pub expected_frames: u64,
    pub faces: u64,
    pub first_pts_ns: Option<u64>,
    pub last_pts_ns: Option<u64>,
    pub bytes: u64,
    pub error: Option<String>,
}

impl Record {
    pub fn summary(&self) -> String {
        format!(
            "segment {}: {:?}, {} of {} frames, {} faces, {:.1} s ({:.1} fps) on {}",
            self.index,
            self.state,
            self.frames,
            self.expected_frames,
            self.faces,
            self.seconds,
            self.frames as f64 / self.seconds.max(1e-3),
            self.host
        )
    }
}

/// Who works on a segment: `seg-NNNN.lease` (host, pid, time), made with create-new so two
/// workers cannot both take it, refreshed every `LEASE_BEAT` while the worker lives and
/// removed when it is done. A lease whose holder is gone (a dead pid on this host, or no
/// refresh for `LEASE_STALE` from another host) is taken over.
struct Lease {
    path: PathBuf,
    beat: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

#[derive(Serialize, Deserialize)]
struct LeaseHolder {
    host: String,
    pid: u32,
    since_unix: u64,
}

const LEASE_BEAT: std::time::Duration = std::time::Duration::from_secs(20);
/// A lease not refreshed for this long is stale (a worker on another host died or lost
/// the shared storage). `FACEENHANCE_LEASE_STALE_S` overrides it (tests).
fn lease_stale() -> std::time::Duration {
    let s = std::env::var("FACEENHANCE_LEASE_STALE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    std::time::Duration::from_secs(s)
}

impl Lease {
    fn take(work: &Path, index: usize) -> Result<Lease> {
        let path = lease_path(work, index);
        let me = LeaseHolder { host: hostname(), pid: std::process::id(), since_unix: now_unix() };
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => {
                    serde_json::to_writer(f, &me)?;
                    let (alive, p) = (Arc::new(AtomicBool::new(true)), path.clone());
                    let flag = alive.clone();
                    let beat = std::thread::spawn(move || {
                        let mut last = Instant::now();
                        while flag.load(Ordering::SeqCst) {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                            if last.elapsed() >= LEASE_BEAT {
                                // a new modification time says the holder lives
                                let _ = std::fs::File::options()
                                    .append(true)
                                    .open(&p)
                                    .and_then(|f| f.set_modified(SystemTime::now()));
                                last = Instant::now();
                            }
                        }
                    });
                    return Ok(Lease { path, beat: Some((alive, beat)) });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder: Option<LeaseHolder> =
                        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    let gone = match &holder {
                        Some(h) if h.host == me.host => !Path::new(&format!("/proc/{}", h.pid)).exists(),
                        _ => age > lease_stale(),
                    };
                    if !gone {
                        let who = holder.map_or("an unreadable lease".to_string(), |h| {
                            format!(
                                "{} (pid {}) since {} s ago",
                                h.host,
                                h.pid,
                                now_unix().saturating_sub(h.since_unix)
                            )
                        });
                        bail!(
                            "segment {index} is being done by {who}; its lease {} was refreshed {} s ago",
                            path.display(),
                            age.as_secs()
                        );
                    }
                    tracing::warn!(segment = index, "taking over a stale lease ({})", path.display());
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("segment {index}: another worker took {} at the same moment", path.display())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((alive, beat)) = self.beat.take() {
            alive.store(false, Ordering::SeqCst);
            let _ = beat.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("faceenhance-job-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn claimed(work: &Path, index: usize, frames: u64) -> Claim {
        match State::take(work, index, frames).unwrap() {
            Taken::Claimed(c) => c,
            Taken::Done(_) => panic!("segment {index} is done already"),
        }
    }

    #[test]
    fn a_segment_moves_through_its_states_by_its_files() {
        let work = folder("states");
        assert!(matches!(State::read(&work, 0), State::Planned));
        let mut claim = claimed(&work, 0, 3);
        assert!(matches!(State::read(&work, 0), State::Running(_)));
        assert!(lease_path(&work, 0).is_file());
        // a second worker (this process again, alive) is refused while the lease is held
        let e = State::take(&work, 0, 3).err().expect("the lease is held");
        assert!(e.to_string().contains("segment 0 is being done by"), "{e}");
        std::fs::write(claim.part(), b"three frames").unwrap();
        claim.record_mut().frames = 3;
        let rec = claim.finish().unwrap();
        assert_eq!((rec.state, rec.bytes), (Recorded::Done, 12));
        assert!(!lease_path(&work, 0).exists() && !part_path(&work, 0).exists());
        assert!(State::read(&work, 0).is_done());
        assert!(matches!(State::take(&work, 0, 3).unwrap(), Taken::Done(_)));
        // a done segment whose video is gone is lost, and taken again
        std::fs::remove_file(video_path(&work, 0)).unwrap();
        assert_eq!(State::read(&work, 0).name(), "lost");
        let claim = claimed(&work, 0, 3);
        let rec = claim.fail(&anyhow::anyhow!("broken"), false).unwrap();
        assert_eq!(rec.error.as_deref(), Some("broken"));
        assert_eq!(State::read(&work, 0).name(), "failed");
        let rec = claimed(&work, 0, 3).fail(&anyhow::anyhow!("Ctrl-C"), true).unwrap();
        assert_eq!(rec.state, Recorded::Stopped);
        // an empty segment is done without a video
        assert!(claimed(&work, 1, 0).finish().is_ok());
        assert!(State::read(&work, 1).is_done());
        std::fs::remove_dir_all(&work).unwrap();
    }

    #[test]
    fn a_lease_whose_holder_is_gone_is_taken_over() {
        let work = folder("lease");
        // a pid that is not running on this host
        let dead = (1_000_000..u32::MAX).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
        let lease = format!("{{\"host\":\"{}\",\"pid\":{dead},\"since_unix\":0}}", hostname());
        std::fs::write(lease_path(&work, 0), lease).unwrap();
        let claim = claimed(&work, 0, 0);
        let held: serde_json::Value = serde_json::from_slice(&std::fs::read(lease_path(&work, 0)).unwrap()).unwrap();
        assert_eq!(held["pid"], std::process::id());
        claim.finish().unwrap();
        assert!(!lease_path(&work, 0).exists());
        std::fs::remove_dir_all(&work).unwrap();
    }
}
