//! The `faceenhance` command line: videos in, playable H.264 out with the audio kept, a
//! clean stop on Ctrl-C, the side-by-side comparison, stills, and errors with reasons.

#[path = "common/mod.rs"]
mod common;
#[path = "common/cli.rs"]
mod common_cli;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use common_cli::*;
use gst::prelude::*;

fn temp(name: &str) -> PathBuf {
    temp_in("cli", name)
}

/// What a file decodes to: video frames, frame size, audio buffers.
#[derive(Debug, Default)]
struct Probe {
    frames: u64,
    width: i32,
    height: i32,
    audio: u64,
}

fn probe(path: &Path) -> Probe {
    let d = decode(path, false);
    Probe { frames: d.frames.len() as u64, width: d.width as i32, height: d.height as i32, audio: d.audio_buffers }
}

/// A short clip with a tone: the astronaut moving over a test pattern is not needed, only
/// streams to carry through. `audio` is the encoder element.
fn clip_with_audio(name: &str, audio: &str, mux: &str) -> PathBuf {
    let path = temp(name);
    let desc = format!(
        "videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 ! x264enc ! queue ! {mux} name=m \
         ! filesink location={} audiotestsrc num-buffers=100 ! audioconvert ! {audio} ! queue ! m.",
        path.display()
    );
    let out = Command::new("gst-launch-1.0").args(["-q", "-e"]).args(desc.split(' ')).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn video_enhances_a_real_clip_into_a_playable_mp4() {
    let out = temp("carphone.mp4");
    let text = ok(cli()
        .args(["video", cached("data/carphone_distorted.mp4").to_str().unwrap(), "--no-progress", "-o"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(text.contains("120 frames"), "{text}");
    // The face of every frame is restored by the default ladder (none kept as it was).
    let count = |what: &str| -> u64 {
        let at = text.find(&format!(" {what}")).unwrap_or_else(|| panic!("no '{what}' in {text}"));
        text[..at].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let at = text.find(" faces restored").unwrap_or_else(|| panic!("{text}"));
    let mut words = text[..at].rsplit(' ');
    let (seen, restored): (u64, u64) = (words.next().unwrap().parse().unwrap(), words.nth(1).unwrap().parse().unwrap());
    assert!(count("faces found") >= 110 && seen >= 110 && restored == seen, "{text}");
    let p = probe(&out);
    assert_eq!((p.frames, p.width, p.height), (120, 176, 144), "{p:?}");
}

/// The caps `h264parse` gives the video of an MP4: profile and chroma-format among them.
fn h264_caps(path: &Path) -> gst::Structure {
    gst::init().unwrap();
    let pipeline = gst::parse::launch("filesrc name=src ! qtdemux ! h264parse name=parse ! fakesink")
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.by_name("src").unwrap().set_property("location", path.to_str().unwrap());
    pipeline.set_state(gst::State::Paused).unwrap();
    let (done, ..) = pipeline.state(gst::ClockTime::from_seconds(30));
    let caps = pipeline.by_name("parse").unwrap().static_pad("src").unwrap().current_caps();
    pipeline.set_state(gst::State::Null).unwrap();
    done.unwrap_or_else(|e| panic!("{} does not preroll: {e:?}", path.display()));
    caps.unwrap_or_else(|| panic!("{}: no H.264 caps", path.display())).structure(0).unwrap().to_owned()
}

#[test]
fn video_writes_high_profile_420_unless_444_is_asked_for() {
    // An odd frame size: 4:2:0 needs even sides, so the last column and row are cropped.
    let input = temp("odd-444.mp4");
    let desc = format!(
        "videotestsrc num-buffers=25 ! video/x-raw,width=177,height=145,framerate=25/1 ! videoconvert \
         ! video/x-raw,format=Y444 ! x264enc ! mp4mux ! filesink location={}",
        input.display()
    );
    let out = Command::new("gst-launch-1.0").args(["-q", "-e"]).args(desc.split_whitespace()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cases = [(&[][..], "high", "4:2:0", (176, 144)), (&["--chroma", "444"][..], "high-4:4:4", "4:4:4", (177, 145))];
    for (args, profile, chroma, (width, height)) in cases {
        let out = temp(&format!("chroma-{}.mp4", chroma.replace(':', "")));
        ok(cli()
            .args(["video", input.to_str().unwrap(), "--no-progress", "-o"])
            .arg(&out)
            .args(args)
            .output()
            .unwrap());
        let caps = h264_caps(&out);
        assert_eq!(caps.get::<&str>("profile").unwrap(), profile, "{args:?}: {caps}");
        assert_eq!(caps.get::<&str>("chroma-format").unwrap(), chroma, "{args:?}: {caps}");
        let p = probe(&out);
        assert_eq!((p.frames, p.width, p.height), (25, width, height), "{args:?}");
    }
}

#[test]
fn audio_passes_through_or_is_reencoded() {
    // AAC into MP4 and Opus into MKV: the containers take them as they are.
    for (input, output) in [
        (clip_with_audio("aac.mp4", "avenc_aac", "mp4mux"), temp("aac-out.mkv")),
        (clip_with_audio("vorbis.mkv", "vorbisenc", "matroskamux"), temp("vorbis-out.mp4")),
    ] {
        let before = probe(&input);
        assert!(before.audio > 0);
        ok(cli().args(["video", input.to_str().unwrap(), "--no-progress", "-o"]).arg(&output).output().unwrap());
        let after = probe(&output);
        assert_eq!(after.frames, 50, "{}: {after:?}", output.display());
        assert!(after.audio > 0, "{}: audio lost", output.display());
    }
}

#[test]
fn side_by_side_is_twice_as_wide() {
    let out = temp("sbs.mp4");
    ok(cli()
        .args(["video", cached("data/carphone_distorted.mp4").to_str().unwrap(), "--compare", "side-by-side"])
        .args(["--no-progress", "-o"])
        .arg(&out)
        .output()
        .unwrap());
    let p = probe(&out);
    assert_eq!((p.frames, p.width, p.height), (120, 352, 144), "{p:?}");
}

#[test]
fn ctrl_c_leaves_a_playable_file() {
    let out = temp("stopped.mp4");
    let child = cli()
        .args(["video", cached("data/WolfgangLanger_Pexels.mp4").to_str().unwrap(), "--no-progress", "-o"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let result = child.wait_with_output().unwrap();
    let text = ok(result);
    assert!(text.contains("stopped early"), "{text}");
    let p = probe(&out);
    assert!(p.frames > 0, "{p:?}");
}

#[test]
fn bad_inputs_fail_with_reasons() {
    let out = cli().args(["video", "/nonexistent/in.mp4", "-o"]).arg(temp("x.mp4")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/in.mp4"));
    let clip = cached("data/carphone_distorted.mp4");
    let out = cli().args(["video", clip.to_str().unwrap(), "-o"]).arg(temp("x.avi")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported output type '.avi'"));
    let not_video = temp("not-a-video.mp4");
    std::fs::write(&not_video, b"definitely not a video").unwrap();
    let out =
        cli().args(["video", not_video.to_str().unwrap(), "--no-progress", "-o"]).arg(temp("y.mp4")).output().unwrap();
    assert!(!out.status.success(), "a text file transcoded");
    let model = cli()
        .args(["video", clip.to_str().unwrap(), "--model", "/nonexistent/m.onnx", "--no-progress", "-o"])
        .arg(temp("z.mp4"))
        .output()
        .unwrap();
    assert!(!model.status.success());
    assert!(String::from_utf8_lossy(&model.stderr).contains("/nonexistent/m.onnx"));
}

/// The enhancement options are the `faceenhance` element's properties, one for one: every
/// writable property is an option with its blurb (but the two message switches the command
/// sets itself, and the live-only max-latency), ranges are the element's, and a value
/// reaches the element.
#[test]
fn every_element_property_is_an_option() {
    gst::init().unwrap();
    let _ = gstfaceenhance::plugin_register_static();
    let bin = gst::ElementFactory::make("faceenhance").build().unwrap();
    let help = ok(cli().args(["image", "--help"]).output().unwrap());
    let mut n = 0;
    for p in bin.list_properties().iter().filter(|p| p.owner_type() == bin.type_()) {
        let flag = format!("--{} ", p.name());
        let switch = format!("--{}[=", p.name());
        if p.name().ends_with("post-messages") || p.name() == "max-latency" {
            assert!(!help.contains(&flag) && !help.contains(&switch), "{flag} is the command's own, or live only");
            continue;
        }
        assert!(help.contains(&flag) || help.contains(&switch), "{flag} missing:\n{help}");
        let blurb: String = p.blurb().unwrap_or_default().chars().take(40).collect();
        assert!(help.contains(&blurb), "{flag}: '{blurb}' missing");
        n += 1;
    }
    assert!(n >= 25, "{n} options");

    // The element's range, its choices, and a switch written --name=false.
    let e = String::from_utf8_lossy(&cli().args(["image", "x.png", "--max-stretch", "200"]).output().unwrap().stderr)
        .to_string();
    assert!(e.contains("--max-stretch") && e.contains("1..=100"), "{e}");
    let e = String::from_utf8_lossy(&cli().args(["image", "x.png", "--detector", "dlib"]).output().unwrap().stderr)
        .to_string();
    assert!(e.contains("yunet") && e.contains("centerface"), "{e}");
    // strength 0 is a pass-through: no face looked for, the picture comes back as it was.
    let dir = temp("strength0");
    let text = ok(cli()
        .args(["image", astronaut().to_str().unwrap(), "--strength", "0", "--smoothing=false", "-o"])
        .arg(&dir)
        .output()
        .unwrap());
    assert!(text.contains("astronaut.png: 0 faces, 0 restored"), "{text}");
    let (a, b) = (imread(&astronaut()), imread(&dir.join("astronaut.png")));
    use opencv::prelude::MatTraitConstManual;
    assert_eq!(a.data_bytes().unwrap(), b.data_bytes().unwrap());
}

#[test]
fn images_are_enhanced_with_a_side_by_side() {
    let dir = temp("stills");
    let text = ok(cli()
        .args([
            "image",
            astronaut().to_str().unwrap(),
            real_lq("codeformer-inputs/whole_imgs/00.jpg").to_str().unwrap(),
        ])
        .arg("-o")
        .arg(&dir)
        .output()
        .unwrap());
    // The astronaut's ~170 px face goes to the ladder's restore-192.
    assert!(text.contains("astronaut.png: 1 faces, 1 restored, 0 kept"), "{text}");
    assert!(text.contains("00.jpg: 4 faces, 4 restored"), "{text}");
    for f in ["astronaut.png", "astronaut-side-by-side.png", "00.png", "00-side-by-side.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let sbs = imread(&dir.join("astronaut-side-by-side.png"));
    assert_eq!((opencv::prelude::MatTraitConst::cols(&sbs), opencv::prelude::MatTraitConst::rows(&sbs)), (1024, 512));

    // --upscale 2 --force: twice the size, and the face restored anyway.
    let up = temp("stills-x2");
    let text = ok(cli()
        .args(["image", astronaut().to_str().unwrap(), "--upscale", "2", "--force", "-o"])
        .arg(&up)
        .output()
        .unwrap());
    assert!(text.contains("astronaut.png: 1 faces, 1 restored"), "{text}");
    let big = imread(&up.join("astronaut.png"));
    assert_eq!((opencv::prelude::MatTraitConst::cols(&big), opencv::prelude::MatTraitConst::rows(&big)), (1024, 1024));
}

/// `--edit` puts `faceedit` after the enhancement: the picture differs from the plain
/// enhancement inside the face only; an attribute the model does not edit is an error that
/// names the ones it does.
#[test]
fn image_edit_changes_the_face_and_bad_attributes_fail() {
    use opencv::prelude::*;
    let (plain, edited) = (temp("edit-plain"), temp("edit-glasses"));
    let run = |dir: &Path, extra: &[&str]| {
        ok(cli().args(["image", astronaut().to_str().unwrap(), "-o"]).arg(dir).args(extra).output().unwrap())
    };
    run(&plain, &[]);
    run(&edited, &["--edit", "Eyeglasses=1,Smiling=-1"]);
    let (a, b) = (imread(&plain.join("astronaut.png")), imread(&edited.join("astronaut.png")));
    let (da, db) = (a.data_bytes().unwrap(), b.data_bytes().unwrap());
    let changed: Vec<usize> = (0..da.len()).filter(|&i| da[i] != db[i]).map(|i| i / 3).collect();
    assert!(changed.len() > 300, "--edit changed {} pixels", changed.len());
    // outside 3x the face box (as `attributes --json` reports it) nothing moves
    let json = ok(cli().args(["attributes", astronaut().to_str().unwrap(), "--json"]).output().unwrap());
    let face: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    let b: Vec<i64> = face["box"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let near = |p: usize| {
        let (x, y) = ((p % 512) as i64, (p / 512) as i64);
        x >= b[0] - b[2] && x < b[0] + 2 * b[2] && y >= b[1] - b[3] && y < b[1] + 2 * b[3]
    };
    assert!(changed.iter().all(|&p| near(p)), "pixels far from the face box {b:?} changed");

    let out = cli()
        .args(["image", astronaut().to_str().unwrap(), "--edit", "Beard=1", "-o"])
        .arg(temp("edit-bad"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'Beard'") && err.contains("Eyeglasses"), "{err}");
}

#[test]
fn upscaled_video_with_a_face_gallery() {
    let out = temp("carphone-x2.mp4");
    let gallery = temp("gallery");
    let text = ok(cli()
        .args(["video", cached("data/carphone_distorted.mp4").to_str().unwrap(), "--upscale", "2"])
        .args(["--compare", "side-by-side", "--no-progress", "--faces"])
        .arg(&gallery)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap());
    // Input (enlarged) and output side by side, each 2x the 176x144 clip.
    let p = probe(&out);
    assert_eq!((p.frames, p.width, p.height), (120, 704, 288), "{p:?}");
    assert!(text.contains("face gallery: "), "{text}");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gallery.join("index.json")).unwrap()).unwrap();
    let faces = index["tracks"].as_array().unwrap();
    assert!(!faces.is_empty() && faces.len() <= 3, "one person on the clip, {} tracks", faces.len());
    // One person however many tracks the tracker made of them.
    assert_eq!(index["people"].as_array().unwrap().len(), 1, "{index}");
    assert!(text.contains("of 1 person,"), "{text}");
    // The longest track covers most of the 4 s clip; its best crop is a face, in output
    // coordinates.
    let main = faces.iter().max_by_key(|f| f["frames_seen"].as_u64().unwrap()).unwrap();
    assert!(main["frames_seen"].as_u64().unwrap() >= 100, "{main}");
    let (first, best, last) =
        (main["first_ns"].as_u64().unwrap(), main["best_ns"].as_u64().unwrap(), main["last_ns"].as_u64().unwrap());
    assert!(first <= best && best <= last && last - first > 3_000_000_000, "{main}");
    let bbox: Vec<f64> = main["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        bbox[0] >= 0.0 && bbox[0] + bbox[2] <= 352.5 && bbox[2] > 60.0,
        "box not in 352x288 output coordinates: {bbox:?}"
    );
    let crop = imread(&gallery.join(main["file"].as_str().unwrap()));
    let mut det = faceenhance::detect::Detector::new(faceenhance::detect::DetectorConfig {
        kind: faceenhance::detect::DetectorKind::YuNet,
        model: Some(yunet()),
        ..Default::default()
    })
    .unwrap();
    let mut c = crop.clone();
    assert_eq!(det.detect_frame(&faceenhance::frame::frame_from_mat(&mut c).unwrap()).unwrap().len(), 1);
    let sheet = imread(&gallery.join("contact-sheet.png"));
    assert_eq!(opencv::prelude::MatTraitConst::cols(&sheet), 128, "one cell: one person");
}

#[test]
fn missing_onnx_runtime_is_a_clear_error() {
    let out = cli()
        .args(["image", &astronaut().to_string_lossy(), "-o"])
        .arg(temp("noort"))
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ONNX Runtime library") && err.contains("/nonexistent/libonnxruntime.so.1"), "{err}");
}

/// `scripts/install.sh PREFIX` (what it built taken as is), then the installed plugin and
/// command line in a clean environment (PATH and HOME only: ONNX Runtime comes from the
/// cache) from a folder outside the source tree: the plugin is found through
/// GST_PLUGIN_PATH alone, and both run on the models installed beside them, not on the
/// source tree's. With the installed models gone, the default is still not the source tree.
#[test]
fn the_installed_plugin_and_command_line_run_on_the_installed_models() {
    let root = temp("install");
    std::fs::remove_dir_all(&root).ok();
    let (prefix, elsewhere) = (root.join("prefix"), root.join("elsewhere"));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_faceenhance")).parent().unwrap();
    ok(Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(["--no-build", prefix.to_str().unwrap()])
        .env("FACEENHANCE_BUILD_DIR", built)
        .output()
        .unwrap());
    let plugins = prefix.join("lib/gstreamer-1.0");
    let models = prefix.join("share/faceenhance/models");
    assert!(plugins.join("libgstfaceenhance.so").is_file() && prefix.join("bin/faceenhance").is_file());
    // Whatever models/ holds now: every .onnx and .toml, and the published profiles.
    let shipped = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "onnx" || x == "toml"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let source = repo().join("models");
    assert!(shipped(&source).iter().any(|n| n.ends_with(".onnx")));
    assert_eq!(shipped(&models), shipped(&source));
    assert_eq!(shipped(&models.join("profiles")), shipped(&source.join("profiles")));
    for name in shipped(&source) {
        let len = |d: &Path| std::fs::metadata(d.join(&name)).unwrap().len();
        assert_eq!(len(&models), len(&source), "{name} copied whole");
    }

    let clean = |program: &Path| {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", std::env::var_os("HOME").unwrap())
            .env("GST_PLUGIN_PATH", &plugins)
            .env("GST_REGISTRY", root.join("registry.bin"))
            .env("NO_COLOR", "1")
            .current_dir(&elsewhere);
        c
    };
    let inspect = |what: &str| ok(clean(Path::new("gst-inspect-1.0")).args(what.split(' ')).output().unwrap());
    // `faceenhance` alone is the bin; the plugin has the same name.
    let plugin = inspect("--plugin faceenhance");
    assert!(plugin.contains(&plugins.join("libgstfaceenhance.so").display().to_string()), "{plugin}");
    for element in ["facedetector", "facerestore", "facedraw", "faceenhance", "facegallery"] {
        assert!(plugin.contains(&format!("  {element}: ")), "{element} missing:\n{plugin}");
    }
    let installed_default = format!("Default: \"{}\"", models.display());
    assert!(inspect("facerestore").contains(&installed_default), "{}", inspect("facerestore"));
    assert!(inspect("faceenhance").contains(&installed_default));

    // The astronaut's face through the installed bin, on the installed ladder.
    let launch = ok(clean(Path::new("gst-launch-1.0"))
        .args(["-m", "filesrc", &format!("location={}", astronaut().display()), "!", "pngdec", "!", "videoconvert"])
        .args(["!", "faceenhance", "force=true", "post-messages=true", "!", "fakesink"])
        .output()
        .unwrap());
    assert!(launch.contains(&format!("model=(string){},", models.display())), "{launch}");
    let stats: Vec<&str> = launch.lines().filter(|l| l.contains("facerestore, timestamp")).collect();
    assert!(stats.len() == 1 && stats[0].contains("restored=(int)1"), "{launch}");

    // The installed command line (statically registered elements) finds them too.
    let out = elsewhere.join("stills");
    let text = ok(clean(&prefix.join("bin/faceenhance"))
        .env("RUST_LOG", "info")
        .args(["image", astronaut().to_str().unwrap(), "--force", "-o", out.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(text.contains(&format!("model={}/restore-", models.display())), "{text}");
    assert!(text.contains("1 faces, 1 restored"), "{text}");
    assert!(out.join("astronaut.png").is_file());
    // ... and the attribute predictor installed beside the models.
    let attrs = ok(clean(&prefix.join("bin/faceenhance"))
        .args(["attributes", astronaut().to_str().unwrap()])
        .output()
        .unwrap());
    assert!(attrs.contains("astronaut.png: face 0"), "{attrs}");
    // ... and the attribute editor.
    let edited = elsewhere.join("edited");
    ok(clean(&prefix.join("bin/faceenhance"))
        .args(["image", astronaut().to_str().unwrap(), "--edit", "Eyeglasses=1", "-o", edited.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(edited.join("astronaut.png").is_file());

    // A broken install: the default is not the build machine's source tree.
    std::fs::rename(&models, prefix.join("share/faceenhance/moved")).unwrap();
    let broken = inspect("facerestore");
    let default = broken.lines().find(|l| l.contains("Default: \"/")).expect("a path default").to_string();
    assert!(!default.contains(&source.display().to_string()) && !default.contains(&installed_default), "{default}");
    std::fs::remove_dir_all(&root).ok();
}

/// `speed` times a model on the asked provider and says which provider ran it.
#[test]
fn speed_reports_faces_per_second_and_the_provider_that_ran() {
    let model = faceenhance::paths::models_dir().join("restore-64.onnx");
    let out = cli().args(["speed", "--provider", "cpu", "--batch", "1,2", "--runs", "2"]).arg(&model).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| restore-64 | cpu | cpu |")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in rows {
        let faces_per_s: f64 = row.split('|').nth(6).unwrap().trim().parse().unwrap();
        assert!(faces_per_s > 1.0, "{row}");
    }
}

/// A truncated file (the first 60 % of a clip, its index missing) fails at once with the
/// input's name, and leaves no empty output behind.
#[test]
fn a_truncated_input_fails_with_its_name_and_leaves_nothing() {
    let clip = std::fs::read(cached("data/carphone_distorted.mp4")).unwrap();
    let cut = temp("truncated.mp4");
    std::fs::write(&cut, &clip[..clip.len() * 6 / 10]).unwrap();
    let out_file = temp("truncated-out.mp4");
    let t = std::time::Instant::now();
    let out = cli().args(["video", cut.to_str().unwrap(), "--no-progress", "-o"]).arg(&out_file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a truncated file transcoded");
    assert!(stderr.contains("truncated.mp4"), "{stderr}");
    assert!(t.elapsed() < std::time::Duration::from_secs(60), "took {:?}", t.elapsed());
    assert!(!out_file.exists(), "an empty output was left behind");
}

/// A clip with garbage written over a stretch of its coded frames (the index intact):
/// either a playable file with the frames the decoder could make, or an error naming the
/// input; never a hang, never an unplayable file left behind.
#[test]
fn a_corrupted_input_gives_a_playable_file_or_a_clear_error() {
    let mut clip = std::fs::read(cached("data/carphone_distorted.mp4")).unwrap();
    let n = clip.len();
    // Deterministic garbage over 10 % of the file from its middle (inside the mdat box).
    let mut x = 0x9E37_79B9u32;
    for b in &mut clip[n * 45 / 100..n * 55 / 100] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let bad = temp("corrupted.mp4");
    std::fs::write(&bad, &clip).unwrap();
    let out_file = temp("corrupted-out.mp4");
    let t = std::time::Instant::now();
    let out = cli().args(["video", bad.to_str().unwrap(), "--no-progress", "-o"]).arg(&out_file).output().unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(60), "took {:?}", t.elapsed());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        let p = probe(&out_file);
        assert!(p.frames > 0 && (p.width, p.height) == (176, 144), "{p:?}: {text}");
        println!("corrupted clip: {} frames written", p.frames);
    } else {
        assert!(text.contains("corrupted.mp4"), "{text}");
        assert!(!out_file.exists() || probe(&out_file).frames > 0, "an unplayable output was left behind");
        println!("corrupted clip: refused ({})", text.lines().last().unwrap_or_default());
    }
}

/// `attributes` names the attributes of each face: the astronaut smiles; `--json` gives
/// every attribute's probability for every face.
#[test]
fn attributes_of_the_faces_in_a_picture() {
    let text = ok(cli().args(["attributes", astronaut().to_str().unwrap()]).output().unwrap());
    let line = text.lines().find(|l| l.contains("astronaut.png: face 0")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(": Smiling"), "the most certain attribute is the smile: {line}");
    let json = ok(cli()
        .args(["attributes", "--json", real_lq("codeformer-inputs/whole_imgs/00.jpg").to_str().unwrap()])
        .output()
        .unwrap());
    let faces: Vec<serde_json::Value> =
        json.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(faces.len(), 4, "{json}");
    for f in &faces {
        let attrs = f["attributes"].as_object().unwrap();
        assert_eq!(attrs.len(), 40);
    }
}

/// Issue 29: `image --json` says per restored face how far the restoration moved it from
/// its input's identity (dlib's face net; one person's two photos lie ~0.26 apart).
#[test]
fn image_json_reports_how_far_each_restoration_moved_identity() {
    let dir = temp("stills-json");
    let text = ok(cli()
        .args(["image", real_lq("codeformer-inputs/whole_imgs/00.jpg").to_str().unwrap(), "--json", "-o"])
        .arg(&dir)
        .output()
        .unwrap());
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(line["faces"], 4, "{line}");
    assert_eq!(line["restored"], 4, "{line}");
    let moved: Vec<f64> = line["identity_moved"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(moved.len(), 4, "one distance per restored face: {line}");
    // a restoration moves a face, less than the gap between two photos of one person
    assert!(moved.iter().all(|&d| d > 0.0 && d < 0.26), "{moved:?}");
    assert!(dir.join("00.png").is_file());
}
