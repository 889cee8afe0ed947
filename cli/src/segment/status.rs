//! `faceenhance status DIR`: the plan and, per segment, its state (see `job::State`),
//! frames, faces, time and host, as a table.

use std::path::Path;

use anyhow::Result;

use super::job::State;
use super::plan::Plan;

/// `faceenhance status DIR`: every segment's state, frames, faces and timing.
pub fn status(work: &Path) -> Result<String> {
    let plan = Plan::read(work)?;
    let mut out = format!(
        "{}: {} ({} frames, {} key frames) in {} segments\n",
        work.display(),
        plan.input.display(),
        plan.frames,
        plan.key_frames,
        plan.segments.len()
    );
    out += &format!(
        "{:>4}  {:>9}  {:>9}  {:>8}  {:>13}  {:>7}  {:>8}  {:>6}  host\n",
        "seg", "start s", "end s", "state", "frames", "faces", "seconds", "fps"
    );
    let (mut done, mut frames, mut seconds) = (0usize, 0u64, 0.0f64);
    let secs = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{:.3}", t as f64 / 1e9));
    for span in &plan.segments {
        let state = State::read(work, span.index);
        let r = state.record();
        if state.is_done() {
            done += 1;
        }
        frames += r.map_or(0, |r| r.frames);
        seconds += r.map_or(0.0, |r| r.seconds);
        out += &format!(
            "{:>4}  {:>9}  {:>9}  {:>8}  {:>13}  {:>7}  {:>8}  {:>6}  {}{}\n",
            span.index,
            secs(span.start_ns.or(Some(plan.first_pts_ns))),
            secs(span.end_ns),
            state.name(),
            format!("{}/{}", r.map_or(0, |r| r.frames), span.frames),
            r.map_or("-".into(), |r| r.faces.to_string()),
            r.map_or("-".into(), |r| format!("{:.1}", r.seconds)),
            r.filter(|r| r.seconds > 0.0).map_or("-".into(), |r| format!("{:.1}", r.frames as f64 / r.seconds)),
            r.map_or("-", |r| r.host.as_str()),
            r.and_then(|r| r.error.as_ref()).map_or(String::new(), |e| format!("  ({e})")),
        );
    }
    out += &format!(
        "{done} of {} segments done, {frames} of {} frames, {seconds:.1} s of work\n",
        plan.segments.len(),
        plan.frames
    );
    Ok(out)
}
