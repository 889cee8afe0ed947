//! Archives at scale: `faceenhance video --segment K/N`, `join`, `--resume` after SIGKILL,
//! `--manifest --shard` and `status`, measured against a single-process run of the same
//! clip frame by frame.

#[path = "common/mod.rs"]
mod common;
#[path = "common/cli.rs"]
mod common_cli;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use common_cli::*;
use gst::prelude::*;

fn temp(name: &str) -> PathBuf {
    temp_in("seg", name)
}

fn gst_launch(desc: &str) {
    let out = Command::new("gst-launch-1.0").args(["-q", "-e"]).args(desc.split(' ')).output().unwrap();
    assert!(out.status.success(), "{desc}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The street clip with people (real faces for the detector) re-encoded with B-frames, an
/// open GOP and scene-cut key frames, and a ticking AAC track: 250 frames, 10 s.
fn street_clip() -> PathBuf {
    static CLIP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let path = temp("street-av.mp4");
        gst_launch(&format!(
            "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! x264enc bframes=3 \
             key-int-max=40 option-string=open-gop=1 speed-preset=veryfast ! h264parse ! mp4mux name=m \
             ! filesink location={} audiotestsrc num-buffers=470 wave=ticks ! audio/x-raw,rate=48000 \
             ! avenc_aac ! aacparse ! m.",
            cached("data/bikes.mp4").display(),
            path.display()
        ));
        path
    })
    .clone()
}

/// Variable frame rate: 30 frames 40 ms apart, then 30 frames 100 ms apart (one caps,
/// the timestamps say it), a moving pattern, H.264 with B-frames.
fn vfr_clip() -> PathBuf {
    static CLIP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        gst::init().unwrap();
        let path = temp("vfr.mp4");
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time ! videoconvert ! x264enc bframes=2 key-int-max=15 speed-preset=ultrafast \
             ! h264parse ! mp4mux ! filesink location={}",
            path.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
        let (w, h) = (320usize, 240usize);
        src.set_caps(Some(
            &gst::Caps::builder("video/x-raw")
                .field("format", "GRAY8")
                .field("width", w as i32)
                .field("height", h as i32)
                .field("framerate", gst::Fraction::new(25, 1))
                .build(),
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut t = 0u64;
        for i in 0..60usize {
            let step = if i < 30 { 40_000_000 } else { 100_000_000 };
            let pixels: Vec<u8> = (0..w * h)
                .map(|p| {
                    let (x, y) = (p % w, p / w);
                    let inside = (x + 400 - i * 9) % 320 < 60 && (y + i * 4) % 240 < 60;
                    if inside {
                        230
                    } else {
                        ((x + y * 2 + i * 7) % 200) as u8
                    }
                })
                .collect();
            let mut buf = gst::Buffer::from_mut_slice(pixels);
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(t));
                b.set_duration(gst::ClockTime::from_nseconds(step));
            }
            src.push_buffer(buf).unwrap();
            t += step;
        }
        src.end_of_stream().unwrap();
        for msg in pipeline.bus().unwrap().iter_timed(gst::ClockTime::from_seconds(60)) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => panic!("making the VFR clip: {}", e.error()),
                _ => {}
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        path
    })
    .clone()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The joined file against the single run: the same frames at the same times, every one
/// close to its single-run twin, and the check is one that a lost or doubled frame fails
/// (neighbouring frames are much further apart than twins).
fn assert_same_frames(joined: &Decoded, single: &Decoded, input: &Decoded) {
    // relative to the first frame: a file without audio starts where its video starts
    let times = |d: &Decoded| d.frames.iter().map(|(t, _)| *t - d.frames[0].0).collect::<Vec<_>>();
    assert_eq!(joined.frames.len(), input.frames.len(), "every input frame is in the joined file, once");
    assert_eq!(times(joined), times(input), "at the input's timestamps");
    assert_eq!(times(single), times(input));
    let twins: Vec<f64> = joined.frames.iter().zip(&single.frames).map(|(j, s)| psnr(&j.1, &s.1)).collect();
    let worst = twins.iter().cloned().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = joined.frames.iter().skip(1).zip(&single.frames).map(|(j, s)| psnr(&j.1, &s.1)).collect();
    let shifted_mean = shifted.iter().sum::<f64>() / shifted.len() as f64;
    eprintln!(
        "joined vs single run: worst frame {worst:.1} dB; joined vs single shifted by one frame: {shifted_mean:.1} dB"
    );
    assert!(worst > 30.0, "a joined frame differs from the single run's: {worst:.1} dB");
    assert!(shifted_mean < worst - 5.0, "the frames move enough that a shift would be seen: {shifted_mean:.1} dB");
}

#[test]
fn segments_joined_equal_one_run_frame_by_frame_with_the_audio() {
    let clip = street_clip();
    let work = temp("street-work");
    let _ = std::fs::remove_dir_all(&work);
    // three workers, finishing out of order
    for k in [2, 0, 1] {
        let out = cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--segment", &format!("{k}/3"), "--work"])
            .arg(&work)
            .output()
            .unwrap();
        let text = ok(out);
        assert!(text.contains(&format!("segment {k}: Done")), "{text}");
    }
    let status = ok(cli().arg("status").arg(&work).output().unwrap());
    assert!(status.contains("3 of 3 segments done, 250 of 250 frames"), "{status}");
    let joined = temp("street-joined.mp4");
    let text = ok(cli().arg("join").arg(&work).arg("-o").arg(&joined).arg("--no-progress").output().unwrap());
    assert!(text.contains("250 frames"), "{text}");
    let single = temp("street-single.mp4");
    ok(cli().args(["video", clip.to_str().unwrap(), "--no-progress", "-o"]).arg(&single).output().unwrap());

    let (j, s, i) = (decode(&joined, true), decode(&single, true), decode(&clip, true));
    assert_same_frames(&j, &s, &i);
    // on the audio's timeline where the input has it, and the source's audio, once, whole
    assert_eq!(j.frames[0].0, i.frames[0].0);
    assert!(i.audio_ns > 9_000_000_000, "the test clip has its audio: {}", i.audio_ns);
    let gap = j.audio_ns.abs_diff(i.audio_ns);
    assert!(gap < 25_000_000, "audio: {} ns joined, {} ns in the input", j.audio_ns, i.audio_ns);
}

/// Issue 27's clip as a new user made it: H.264 Constrained Baseline at 29.97 fps with AAC,
/// 275 frames (no B-frames in the input; the output has them).
fn baseline_aac_clip() -> PathBuf {
    static CLIP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let path = temp("baseline-aac.mp4");
        gst_launch(&format!(
            "videotestsrc num-buffers=275 pattern=ball ! video/x-raw,framerate=30000/1001,width=320,height=240 \
             ! x264enc speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline \
             ! h264parse ! mp4mux name=m ! filesink location={} audiotestsrc num-buffers=430 \
             ! audio/x-raw,rate=44100 ! avenc_aac ! aacparse ! m.",
            path.display()
        ));
        path
    })
    .clone()
}

/// Issue 27: the probe of a file whose first packet is audio no longer waits for ever (a
/// discarded stream's sink held parsebin's one streaming thread in preroll), and the join
/// keeps the first segment's first frames (their decoding times lie before zero; clamped,
/// the muxer dropped two of them): every frame at the input's time, first and last.
#[test]
fn a_baseline_clip_with_audio_keeps_every_frame_and_time_resumed_and_joined() {
    let clip = baseline_aac_clip();
    let input = decode(&clip, false);
    assert_eq!(input.frames.len(), 275);
    // shown times to the millisecond (MP4 stores them at the track's timescale)
    let times = |d: &Decoded| d.frames.iter().map(|f| (f.0 + 500_000) / 1_000_000).collect::<Vec<_>>();
    let out = temp("baseline-resumed.mp4");
    let _ = std::fs::remove_file(&out);
    let text = ok(cli()
        .args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "--segment-seconds", "2", "-o"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(text.contains("275 frames"), "{text}");
    assert_eq!(times(&decode(&out, false)), times(&input), "resumed: the input's frames at the input's times");
    let work = temp("baseline-work");
    let _ = std::fs::remove_dir_all(&work);
    for k in 0..3 {
        ok(cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--segment", &format!("{k}/3"), "--work"])
            .arg(&work)
            .output()
            .unwrap());
    }
    let joined = temp("baseline-joined.mp4");
    ok(cli().arg("join").arg(&work).arg("-o").arg(&joined).arg("--no-progress").output().unwrap());
    let j = decode(&joined, false);
    assert_eq!(times(&j), times(&input), "joined: the input's frames at the input's times");
    assert!(j.audio_ns.abs_diff(input.audio_ns) < 25_000_000, "audio {} vs {}", j.audio_ns, input.audio_ns);
}

#[test]
fn variable_frame_rate_survives_the_seams() {
    let clip = vfr_clip();
    let work = temp("vfr-work");
    let _ = std::fs::remove_dir_all(&work);
    for k in 0..4 {
        ok(cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--segment", &format!("{k}/4"), "--work"])
            .arg(&work)
            .output()
            .unwrap());
    }
    let joined = temp("vfr-joined.mp4");
    ok(cli().arg("join").arg(&work).arg("-o").arg(&joined).arg("--no-progress").output().unwrap());
    let single = temp("vfr-single.mp4");
    ok(cli().args(["video", clip.to_str().unwrap(), "--no-progress", "-o"]).arg(&single).output().unwrap());
    let (j, s, i) = (decode(&joined, true), decode(&single, true), decode(&clip, true));
    assert!(i.frames.len() >= 55, "{} frames", i.frames.len());
    let steps: Vec<u64> = i.frames.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(steps.contains(&40_000_000) && steps.contains(&100_000_000), "the clip is VFR: {steps:?}");
    assert_same_frames(&j, &s, &i);
}

#[test]
fn resume_after_sigkill_redoes_only_the_unfinished_segment() {
    let clip = street_clip();
    let out = temp("resumed.mp4");
    let work = temp("resumed.mp4.work");
    let _ = std::fs::remove_dir_all(&work);
    let args = |c: &mut Command| {
        c.args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "--keep-work", "--segment-seconds", "2"])
            .arg("-o")
            .arg(&out);
    };
    let mut first = cli();
    args(&mut first);
    let mut child = first.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    // kill it while segment 1 is being made (segment 0 finished)
    let deadline = Instant::now() + Duration::from_secs(120);
    let record = |i: usize| std::fs::read_to_string(work.join(format!("seg-{i:04}.json"))).unwrap_or_default();
    while !(record(0).contains("\"done\"") && record(1).contains("\"running\"")) {
        assert!(Instant::now() < deadline, "segment 0 never finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!out.exists(), "no output from a killed run");
    let lease = std::fs::read_to_string(work.join("seg-0001.lease")).expect("the killed worker's lease is left");
    assert!(lease.contains(&format!("\"pid\":{pid}")), "{lease}");
    let status = ok(cli().arg("status").arg(&work).output().unwrap());
    assert!(status.contains("running"), "{status}");

    let mut again = cli();
    args(&mut again);
    let text = ok(again.output().unwrap());
    assert!(text.contains("already done, resuming"), "{text}");
    let rec0: serde_json::Value = serde_json::from_str(&record(0)).unwrap();
    let rec1: serde_json::Value = serde_json::from_str(&record(1)).unwrap();
    assert_eq!(rec0["pid"], pid, "segment 0 was kept from the killed run");
    assert_ne!(rec1["pid"], pid, "segment 1 was done again");
    assert!(!work.join("seg-0001.part.mp4").exists());
    assert!(!work.join("seg-0001.lease").exists(), "the dead worker's lease was taken over, then released");
    let (o, i) = (decode(&out, false), decode(&clip, false));
    assert_eq!(o.frames.iter().map(|f| f.0).collect::<Vec<_>>(), i.frames.iter().map(|f| f.0).collect::<Vec<_>>());
    assert!(o.audio_ns.abs_diff(i.audio_ns) < 25_000_000);
}

#[test]
fn a_manifest_is_sharded_and_each_output_gets_its_record() {
    let a = vfr_clip();
    let dir = temp("shards");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let b = dir.join("b.mp4");
    std::fs::copy(&a, &b).unwrap();
    let manifest = dir.join("list.tsv");
    std::fs::write(&manifest, format!("# two clips\n{}\nb.mp4\tout/b-enhanced.mkv\n", a.display())).unwrap();
    let run = |shard: &str| {
        ok(cli()
            .args(["video", "--no-progress", "--manifest", manifest.to_str().unwrap(), "--shard", shard, "--out-dir"])
            .arg(dir.join("out"))
            .output()
            .unwrap())
    };
    run("1/2");
    assert!(dir.join("out/b-enhanced.mkv").is_file());
    assert!(!dir.join("out/vfr.mp4").exists(), "shard 1/2 holds only the second line");
    run("0/2");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/vfr.mp4.json")).unwrap()).unwrap();
    assert_eq!(rec["state"], "done");
    assert_eq!(rec["frames"], decode(&a, false).frames.len());
    assert!(dir.join("out/b-enhanced.mkv.json").is_file());
    let again = run("0/2");
    assert!(again.contains("done already"), "{again}");
}

#[test]
fn segment_mistakes_fail_with_reasons() {
    let clip = vfr_clip();
    let work = temp("mistakes-work");
    let _ = std::fs::remove_dir_all(&work);
    let seg = |extra: &[&str], part: &str| {
        cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--segment", part, "--work"])
            .arg(&work)
            .args(extra)
            .output()
            .unwrap()
    };
    ok(seg(&[], "0/2"));
    let err = |o: Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    assert!(err(seg(&["--strength", "0.5"], "1/2")).contains("other settings"));
    assert!(err(seg(&[], "1/3")).contains("cut into 2 segments, not 3"));
    assert!(err(seg(&[], "2/2")).contains("0..N"));
    let joined = temp("mistakes.mp4");
    let e = err(cli().arg("join").arg(&work).arg("-o").arg(&joined).output().unwrap());
    assert!(e.contains("segments not done: 1 (not started)"), "{e}");
    assert!(!joined.exists());
    // how a worker runs (threads, GPU number) may differ from node to node
    ok(seg(&["--threads", "1"], "1/2"));
    // a file with sound and no picture: a reason, not a wait for ever, in both paths
    let audio = temp("sound-only.mp4");
    gst_launch(&format!("audiotestsrc num-buffers=50 ! avenc_aac ! mp4mux ! filesink location={}", audio.display()));
    let out = temp("sound-only-out.mp4");
    let e = err(cli().args(["video", audio.to_str().unwrap(), "--no-progress", "-o"]).arg(&out).output().unwrap());
    assert!(e.contains("sound-only.mp4") && e.contains("no video stream"), "{e}");
    assert!(!out.exists());
    let e = err(cli()
        .args(["video", audio.to_str().unwrap(), "--no-progress", "--segment", "0/2", "--work"])
        .arg(temp("sound-only-work"))
        .output()
        .unwrap());
    assert!(e.contains("no video stream"), "{e}");
}

/// The array job and its dependent join on a real Slurm (started by scripts/slurm-test.sh,
/// which runs this test): the same frames as one run, every segment's record from a task.
#[test]
#[ignore = "needs a running Slurm cluster: scripts/slurm-test.sh starts one and runs this"]
fn slurm_array_and_join() {
    let clip = street_clip();
    let work = temp("slurm-work");
    let _ = std::fs::remove_dir_all(&work);
    let out = temp("slurm-joined.mp4");
    let submitted = ok(Command::new("bash")
        .arg(repo().join("deploy/slurm/faceenhance-segments.sh"))
        .arg(&clip)
        .arg(&out)
        .arg("3")
        .arg(&work)
        .env("FACEENHANCE", env!("CARGO_BIN_EXE_faceenhance"))
        .output()
        .unwrap());
    let ids: Vec<String> = submitted.split_whitespace().map(String::from).collect();
    assert_eq!(ids.len(), 2, "{submitted}");
    let state = |id: &str| {
        let o = Command::new("scontrol").args(["show", "job", id]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        text.split_whitespace().find_map(|w| w.strip_prefix("JobState=")).unwrap_or("?").to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = state(&ids[1]);
        if s == "COMPLETED" {
            break;
        }
        assert!(
            !["FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(&s.as_str()),
            "join job {s}; logs in {}",
            work.display()
        );
        assert!(Instant::now() < deadline, "the jobs did not finish in 10 minutes (join: {s})");
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = ok(cli().arg("status").arg(&work).output().unwrap());
    eprintln!("{status}");
    assert!(status.contains("3 of 3 segments done, 250 of 250 frames"), "{status}");
    for k in 0..3 {
        let log = std::fs::read_to_string(work.join(format!("slurm-{}_{k}.log", ids[0]))).unwrap();
        assert!(log.contains(&format!("segment {k}: Done")), "task {k}: {log}");
    }
    let single = temp("slurm-single.mp4");
    ok(cli().args(["video", clip.to_str().unwrap(), "--no-progress", "-o"]).arg(&single).output().unwrap());
    let (j, s, i) = (decode(&out, true), decode(&single, true), decode(&clip, true));
    assert_same_frames(&j, &s, &i);
    assert!(j.audio_ns.abs_diff(i.audio_ns) < 25_000_000);
}

/// Issue 27: a work folder is ours or refused, and cleaning up removes only what the job
/// made. `--work ~/Videos --resume` must never erase the user's folder.
#[test]
fn the_work_folder_is_ours_or_refused_and_cleanup_removes_only_our_files() {
    let clip = vfr_clip();
    let err = |o: Output| {
        assert!(!o.status.success(), "should have failed: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let run = |work: &std::path::Path, out: &std::path::Path| {
        cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "--segment-seconds", "2", "--work"])
            .arg(work)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    // a user's folder with their files: refused, untouched
    let videos = temp("users-videos");
    let _ = std::fs::remove_dir_all(&videos);
    std::fs::create_dir_all(videos.join("holiday")).unwrap();
    std::fs::write(videos.join("a.mp4"), b"the user's video").unwrap();
    std::fs::write(videos.join("holiday/b.mp4"), b"another").unwrap();
    let out = temp("work-refused.mp4");
    let _ = std::fs::remove_file(&out);
    let e = err(run(&videos, &out));
    assert!(e.contains("not a faceenhance work folder") && e.contains("refusing"), "{e}");
    assert_eq!(std::fs::read(videos.join("a.mp4")).unwrap(), b"the user's video");
    assert_eq!(std::fs::read(videos.join("holiday/b.mp4")).unwrap(), b"another");
    assert_eq!(std::fs::read_dir(&videos).unwrap().count(), 2, "nothing written into the user's folder");
    assert!(!out.exists());

    // an empty folder the user made: used, emptied of our files, kept (not ours to remove)
    let empty = temp("users-empty-work");
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).unwrap();
    ok(run(&empty, &out));
    assert_eq!(decode(&out, false).frames.len(), decode(&clip, false).frames.len());
    assert!(empty.is_dir(), "a folder faceenhance did not create is never removed");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "the job's files are gone");

    // a folder faceenhance creates: removed, unless a file of the user's landed in it
    let ours = temp("created-work");
    let _ = std::fs::remove_dir_all(&ours);
    std::fs::remove_file(&out).unwrap();
    ok(run(&ours, &out));
    assert!(!ours.exists(), "the created work folder is removed after the join");
    let _ = std::fs::remove_file(&out);
    let keep = temp("created-work-kept");
    let _ = std::fs::remove_dir_all(&keep);
    let mut child = cli()
        .args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "--segment-seconds", "2", "--work"])
        .arg(&keep)
        .arg("-o")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !keep.join("plan.json").is_file() {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "no plan written");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(keep.join("notes.txt"), b"mine").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read(keep.join("notes.txt")).unwrap(), b"mine", "a user's file in the work folder stays");
    let left: Vec<String> =
        std::fs::read_dir(&keep).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(left.iter().all(|n| n == "notes.txt" || n == ".faceenhance-work"), "{left:?}");
}

/// Issue 27: two manifest lines writing one output are refused before any work; a record
/// of another input does not make a line "done already".
#[test]
fn manifest_outputs_must_differ_and_done_means_this_input() {
    let a = vfr_clip();
    let dir = temp("manifest-dupes");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("x")).unwrap();
    std::fs::create_dir_all(dir.join("y")).unwrap();
    std::fs::copy(&a, dir.join("x/clip.mp4")).unwrap();
    std::fs::copy(&a, dir.join("y/clip.mp4")).unwrap();
    let manifest = dir.join("list.tsv");
    std::fs::write(&manifest, "x/clip.mp4\ny/clip.mp4\n").unwrap();
    let o = cli()
        .args(["video", "--no-progress", "--manifest", manifest.to_str().unwrap(), "--out-dir"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("inputs 0 and 1") && e.contains("clip.mp4"), "{e}");
    assert!(!dir.join("out/clip.mp4").exists(), "nothing done before the check");
    // one line; its record then names another input: done again, not skipped
    std::fs::write(&manifest, "x/clip.mp4\n").unwrap();
    let run = || {
        ok(cli()
            .args(["video", "--no-progress", "--manifest", manifest.to_str().unwrap(), "--out-dir"])
            .arg(dir.join("out"))
            .output()
            .unwrap())
    };
    run();
    assert!(run().contains("done already"));
    std::fs::write(&manifest, "y/clip.mp4\tout/clip.mp4\n").unwrap();
    let text = run();
    assert!(!text.contains("done already") && text.contains("another input"), "{text}");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/clip.mp4.json")).unwrap()).unwrap();
    assert!(rec["input"].as_str().unwrap().ends_with("y/clip.mp4"), "{rec}");
}

/// Issue 27: two workers cannot take one segment: a live holder's lease refuses the second
/// worker with who holds it; a lease from another host that nobody refreshes is taken over.
#[test]
fn a_segment_has_one_worker_at_a_time() {
    let clip = vfr_clip();
    let work = temp("lease-work");
    let _ = std::fs::remove_dir_all(&work);
    let seg = |k: usize| {
        cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--segment", &format!("{k}/2"), "--work"])
            .arg(&work)
            .env("FACEENHANCE_LEASE_STALE_S", "2")
            .output()
            .unwrap()
    };
    ok(seg(1)); // makes the plan
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    // this test process is alive: its lease holds
    let lease = work.join("seg-0000.lease");
    std::fs::write(&lease, format!("{{\"host\":\"{host}\",\"pid\":{},\"since_unix\":0}}", std::process::id())).unwrap();
    let o = seg(0);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("segment 0 is being done by") && e.contains(&host), "{e}");
    assert!(!work.join("seg-0000.mp4").exists());
    // another host's lease, not refreshed for longer than the stale time: taken over
    std::fs::write(&lease, "{\"host\":\"elsewhere\",\"pid\":1,\"since_unix\":0}").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let text = ok(seg(0));
    assert!(text.contains("segment 0: Done"), "{text}");
    assert!(!lease.exists());
}

/// Issue 27: an MPEG-4 Part 2 AVI, whose packets carry no timestamps, is transcoded whole
/// (every frame, counted by decoding), and `--resume` says why it cannot cut it.
#[test]
fn an_mpeg4_part2_avi_without_timestamps_is_transcoded_whole_and_not_cut() {
    let clip = temp("mpeg4-part2.avi");
    gst_launch(&format!(
        "videotestsrc num-buffers=90 pattern=ball ! video/x-raw,framerate=25/1,width=320,height=240,format=I420 \
         ! avenc_mpeg4 ! avimux ! filesink location={}",
        clip.display()
    ));
    assert_eq!(decode(&clip, false).frames.len(), 90);
    let out = temp("mpeg4-part2-out.mp4");
    let _ = std::fs::remove_file(&out);
    ok(cli().args(["video", clip.to_str().unwrap(), "--no-progress", "-o"]).arg(&out).output().unwrap());
    assert_eq!(decode(&out, false).frames.len(), 90);
    let resumed = temp("mpeg4-part2-resumed.mp4");
    let o = cli()
        .args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "-o"])
        .arg(&resumed)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("has no timestamp") && e.contains("without --resume"), "{e}");
    assert!(!resumed.exists());
    assert!(!temp("mpeg4-part2-resumed.mp4.work").exists(), "the refused run left its work folder");
}

/// Issue 27, item 0: every file decodebin plays is transcoded. A 40-frame clip is made in
/// each codec and container GStreamer encodes here (some with audio), then `faceenhance
/// video` writes it plain and with `--resume`: both outputs decode to all its frames, or
/// `--resume` refuses with its reason (a file it cannot cut exactly) and writes nothing.
#[test]
fn every_codec_decodebin_plays_is_transcoded_plain_and_resumed() {
    let clips: [(&str, &str, &str, bool); 8] = [
        ("mjpeg", "jpegenc ! avimux name=m", "avi", false),
        ("vp8-opus", "vp8enc deadline=1 ! webmmux name=m", "webm", true),
        ("vp9", "vp9enc deadline=1 cpu-used=8 ! webmmux name=m", "webm", false),
        ("h265-aac", "x265enc speed-preset=ultrafast ! h265parse ! mp4mux name=m", "mp4", true),
        ("mpeg2-ts", "mpeg2enc ! mpegvideoparse ! mpegtsmux name=m", "ts", false),
        (
            "h264-interlaced",
            "interlace field-pattern=1:1 ! x264enc interlaced=true speed-preset=ultrafast ! h264parse ! mp4mux name=m",
            "mp4",
            false,
        ),
        ("dv", "avenc_dvvideo ! avimux name=m", "avi", false),
        ("theora", "theoraenc ! oggmux name=m", "ogg", false),
    ];
    let mut summary = Vec::new();
    for (name, chain, ext, audio) in clips {
        let clip = temp(&format!("codec-{name}.{ext}"));
        let size = if name == "dv" { "width=720,height=576" } else { "width=320,height=240" };
        let sound = match (audio, ext) {
            (false, _) => String::new(),
            (true, "webm") => " audiotestsrc num-buffers=75 ! audioconvert ! opusenc ! m.".into(),
            (true, _) => " audiotestsrc num-buffers=75 ! audioconvert ! avenc_aac ! aacparse ! m.".into(),
        };
        gst_launch(&format!(
            "videotestsrc num-buffers=40 pattern=ball ! video/x-raw,framerate=25/1,{size},format=I420 ! {chain} \
             ! filesink location={}{sound}",
            clip.display()
        ));
        // two fields a frame: the 40 pictures interlaced are 20 frames
        let n = if name == "h264-interlaced" { 20 } else { 40 };
        assert_eq!(decode(&clip, false).frames.len(), n, "{name}: the clip itself");
        let plain = temp(&format!("codec-{name}-plain.mp4"));
        let _ = std::fs::remove_file(&plain);
        ok(cli().args(["video", clip.to_str().unwrap(), "--no-progress", "-o"]).arg(&plain).output().unwrap());
        assert_eq!(decode(&plain, false).frames.len(), n, "{name}: plain");
        let resumed = temp(&format!("codec-{name}-resumed.mp4"));
        let _ = std::fs::remove_file(&resumed);
        let o = cli()
            .args(["video", clip.to_str().unwrap(), "--no-progress", "--resume", "-o"])
            .arg(&resumed)
            .output()
            .unwrap();
        let how = if o.status.success() {
            assert_eq!(decode(&resumed, false).frames.len(), n, "{name}: resumed");
            "resumed"
        } else {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains("without --resume"), "{name}: --resume failed without its reason: {e}");
            assert!(!resumed.exists(), "{name}: a refused --resume wrote an output");
            let work = resumed.with_file_name(format!("codec-{name}-resumed.mp4.work"));
            assert!(!work.exists(), "{name}: a refused --resume left its work folder");
            "--resume refused"
        };
        summary.push(format!("{name}: {n}/{n} plain, {how}"));
    }
    println!("{}", summary.join("; "));
}
