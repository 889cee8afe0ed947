//! `faceenhance video --manifest LIST [--shard K/N]`: many inputs, each line to its own
//! output (and with `--work`, its own work folder `DIR/NNNN-NAME/`), two lines writing one
//! output refused before any work, and `OUTPUT.json` beside each output so a rerun skips
//! only what is done, of this very input.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::job::Recorded;
use super::plan::{settings, InputIdentity};
use super::resume;
use super::work::{hostname, now_unix, read_json, write_json};
use crate::video::{transcode, VideoArgs};

/// What was done for one line of a manifest, written beside its output as OUTPUT.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    pub input: PathBuf,
    /// The input's size and modification time when it was done: a rerun skips the line
    /// only when the record is of this very file.
    #[serde(default)]
    pub input_bytes: Option<u64>,
    #[serde(default)]
    pub input_mtime: Option<u64>,
    pub output: PathBuf,
    pub state: Recorded,
    pub host: String,
    pub finished_unix: Option<u64>,
    pub frames: u64,
    pub faces: u64,
    pub seconds: f64,
    pub settings: String,
    pub error: Option<String>,
}

impl OutputRecord {
    fn is_of(&self, id: &InputIdentity) -> bool {
        self.input == id.path && self.input_bytes == Some(id.bytes) && self.input_mtime == id.mtime
    }
}

/// The (input, output) pairs of a manifest, in order.
pub fn read_manifest(path: &Path, out_dir: Option<&Path>) -> Result<Vec<(PathBuf, PathBuf)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut cols = line.split('\t').map(str::trim).filter(|c| !c.is_empty());
        let input = base.join(cols.next().unwrap());
        let output = match (cols.next(), out_dir) {
            (Some(o), _) => base.join(o),
            (None, Some(dir)) => {
                let stem = input.file_stem().with_context(|| format!("{}:{}: no file name", path.display(), no + 1))?;
                dir.join(format!("{}.mp4", stem.to_string_lossy()))
            }
            (None, None) => bail!("{}:{}: no output and no --out-dir", path.display(), no + 1),
        };
        items.push((input, output));
    }
    Ok(items)
}

/// An output path as the file system sees it (its folder made canonical where it exists),
/// so `out/a.mp4` and `./out/a.mp4` are one output.
fn output_key(output: &Path) -> PathBuf {
    let name = output.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).join(name)
}

pub fn run(args: &VideoArgs, manifest: &Path, stop: &AtomicBool) -> Result<()> {
    let s = &args.segments;
    let items = read_manifest(manifest, s.out_dir.as_deref())?;
    // two lines writing one output: the second would overwrite the first, or be skipped
    // as "done already" with the first's file
    let mut seen: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    for (i, (_, output)) in items.iter().enumerate() {
        let key = output_key(output);
        if let Some(j) = seen.insert(key, i) {
            bail!(
                "{}: inputs {j} and {i} (0-based) both write {}: give one of them its own output",
                manifest.display(),
                output.display()
            );
        }
    }
    let (k, n) = s.shard.map_or((0, 1), |p| (p.k, p.n));
    let mut failed = Vec::new();
    for (i, (input, output)) in items.iter().enumerate() {
        if i % n != k {
            continue;
        }
        let record_path = output.with_extension(format!(
            "{}.json",
            output.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default()
        ));
        let identity = InputIdentity::of(input)?;
        match read_json::<OutputRecord>(&record_path) {
            Ok(r) if r.state == Recorded::Done && output.is_file() && r.is_of(&identity) => {
                println!("{}: done already ({})", output.display(), record_path.display());
                continue;
            }
            Ok(r) if r.state == Recorded::Done && output.is_file() => {
                println!(
                    "{}: its record is of another input ({}) or an older version of it: doing it again",
                    output.display(),
                    r.input.display()
                );
            }
            _ => {}
        }
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let started = Instant::now();
        let result = if s.resume || s.work.is_some() {
            // each line its own work folder under --work (one plan per input)
            let mut line_args = args.clone();
            if let Some(w) = &s.work {
                let stem = output.file_stem().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                line_args.segments.work = Some(w.join(format!("{i:04}-{stem}")));
            }
            resume::run(&line_args, input, output, stop).map(|o| (o.frames, o.faces, false))
        } else {
            transcode(args, input, output, stop).map(|o| (o.frames, o.faces, o.stopped))
        };
        let mut record = OutputRecord {
            input: identity.path.clone(),
            input_bytes: Some(identity.bytes),
            input_mtime: identity.mtime,
            output: output.clone(),
            state: Recorded::Done,
            host: hostname(),
            finished_unix: Some(now_unix()),
            frames: 0,
            faces: 0,
            seconds: started.elapsed().as_secs_f64(),
            settings: settings(args)?,
            error: None,
        };
        match result {
            Ok((frames, faces, stopped)) => {
                (record.frames, record.faces) = (frames, faces);
                if stopped {
                    // a playable but partial file: the next run of the shard does it again
                    record.state = Recorded::Stopped;
                }
            }
            Err(e) => {
                eprintln!("{}: {e:#}", input.display());
                record.state = if stop.load(Ordering::SeqCst) { Recorded::Stopped } else { Recorded::Failed };
                record.error = Some(format!("{e:#}"));
                failed.push(input.display().to_string());
            }
        }
        write_json(&record_path, &record)?;
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    ensure!(failed.is_empty(), "{} of the shard's inputs failed: {}", failed.len(), failed.join(", "));
    Ok(())
}
