//! `prepare`: detect and align every image of a folder once, with the core crate's own
//! detector and `crop_face` (the crops the pipeline will feed the model), into a cache.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use faceenhance::align::{crop_face, Template};
use faceenhance::detect::{build_detector, DetectorConfig, DetectorKind, Face};
use indicatif::{ProgressBar, ProgressStyle};
use opencv::prelude::*;

use crate::data::cache::{Manifest, Split, SplitManifest};
use crate::image::Img;

pub struct PrepareArgs {
    pub input: PathBuf,
    pub out: PathBuf,
    pub size: i32,
    pub detector_model: PathBuf,
    /// Files whose stem, read as a number, is at most this go to train; the rest to val.
    /// Without it, the last `val_fraction` of the sorted list is validation.
    pub train_max_index: Option<u64>,
    pub val_fraction: f64,
    pub limit: Option<usize>,
    /// Paired mode: a folder of degraded twins of the input images (same file names), an
    /// output cache and a crop size. Each twin is cropped with the face detected on the
    /// clean image (the same landmarks), so the two caches are pixel-aligned pairs.
    pub paired: Option<(PathBuf, PathBuf, i32)>,
    /// The images are aligned faces already: resize the whole image, detect nothing.
    pub whole: bool,
    /// Minimum luma Laplacian variance of a kept crop (0: keep all).
    pub min_sharpness: f64,
}

/// Variance of the Laplacian of the crop's gray image: the usual sharpness score.
pub fn sharpness(bgr: &opencv::core::Mat) -> Result<f64> {
    let mut gray = opencv::core::Mat::default();
    opencv::imgproc::cvt_color_def(bgr, &mut gray, opencv::imgproc::COLOR_BGR2GRAY)?;
    let mut lap = opencv::core::Mat::default();
    opencv::imgproc::laplacian_def(&gray, &mut lap, opencv::core::CV_64F)?;
    let (mut mean, mut sd) = (opencv::core::Scalar::default(), opencv::core::Scalar::default());
    opencv::core::mean_std_dev_def(&lap, &mut mean, &mut sd)?;
    Ok(sd[0] * sd[0])
}

/// Picks the largest face with landmarks.
pub fn best_face(faces: Vec<Face>) -> Option<Face> {
    faces
        .into_iter()
        .filter(|f| f.landmarks.is_some())
        .max_by(|a, b| (a.bbox[2] * a.bbox[3]).total_cmp(&(b.bbox[2] * b.bbox[3])))
}

pub fn run(args: &PrepareArgs) -> Result<Manifest> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
                Some("jpg" | "jpeg" | "png" | "bmp" | "webp")
            )
        })
        .collect();
    files.sort();
    if let Some(n) = args.limit {
        files.truncate(n);
    }
    if files.is_empty() {
        bail!("no images in {}", args.input.display());
    }
    let n_val_by_fraction = ((files.len() as f64) * args.val_fraction).round() as usize;
    let split_of = |i: usize, p: &Path| -> Split {
        if let Some(max) = args.train_max_index {
            let idx = p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
            return match idx {
                Some(k) if k <= max => Split::Train,
                Some(_) => Split::Val,
                None => Split::Train,
            };
        }
        if i + n_val_by_fraction >= files.len() {
            Split::Val
        } else {
            Split::Train
        }
    };
    let split_rule = match args.train_max_index {
        Some(m) => format!("by file number: <= {m} train, > {m} validation"),
        None => format!("last {:.0}% of the sorted file list is validation", args.val_fraction * 100.0),
    };

    let cfg = DetectorConfig {
        kind: DetectorKind::YuNet,
        model: Some(args.detector_model.clone()),
        score_threshold: Some(0.5),
        min_face_size: 8.0,
        ..Default::default()
    };
    let mut det = build_detector(&cfg)?;
    std::fs::create_dir_all(&args.out)?;
    let mut train = SplitManifest::default();
    let mut val = SplitManifest::default();
    let mut train_bytes = Vec::new();
    let mut val_bytes = Vec::new();
    let mut paired_bytes = (Vec::new(), Vec::new());
    let pb = ProgressBar::new(files.len() as u64);
    pb.set_style(ProgressStyle::with_template("prepare {bar:40} {pos}/{len} {per_sec} eta {eta}").unwrap());
    for (i, path) in files.iter().enumerate() {
        pb.inc(1);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let split = split_of(i, path);
        let (m, bytes) = match split {
            Split::Train => (&mut train, &mut train_bytes),
            Split::Val => (&mut val, &mut val_bytes),
        };
        let bgr = opencv::imgcodecs::imread(path, opencv::imgcodecs::IMREAD_COLOR)?;
        if bgr.empty() {
            m.no_face.push(name);
            continue;
        }
        if args.whole {
            let mut crop = opencv::core::Mat::default();
            let sz = opencv::core::Size::new(args.size, args.size);
            opencv::imgproc::resize(&bgr, &mut crop, sz, 0.0, 0.0, opencv::imgproc::INTER_AREA)?;
            if sharpness(&crop)? < args.min_sharpness {
                m.too_soft.push(name);
                continue;
            }
            bytes.extend_from_slice(&Img::from_mat_bgr8(&crop)?.to_rgb8());
            m.files.push(name);
            continue;
        }
        let Some(face) = best_face(det.detect(&bgr)?) else {
            m.no_face.push(name);
            continue;
        };
        if let Some((dir, _, size)) = &args.paired {
            let twin_path = dir.join(&name);
            let twin = opencv::imgcodecs::imread(&twin_path, opencv::imgcodecs::IMREAD_COLOR)?;
            anyhow::ensure!(!twin.empty(), "no twin {} in {}", name, dir.display());
            let c = Img::from_mat_bgr8(&crop_face(&twin, &face, Template::Ffhq5, *size)?)?.to_rgb8();
            match split {
                Split::Train => paired_bytes.0.extend_from_slice(&c),
                Split::Val => paired_bytes.1.extend_from_slice(&c),
            }
        }
        let crop = crop_face(&bgr, &face, Template::Ffhq5, args.size)?;
        if args.min_sharpness > 0.0 && sharpness(&crop)? < args.min_sharpness {
            m.too_soft.push(name);
            continue;
        }
        bytes.extend_from_slice(&Img::from_mat_bgr8(&crop)?.to_rgb8());
        m.files.push(name);
    }
    pb.finish();
    std::fs::write(args.out.join(Split::Train.file_name()), &train_bytes)?;
    std::fs::write(args.out.join(Split::Val.file_name()), &val_bytes)?;
    let manifest = Manifest {
        source: args.input.display().to_string(),
        size: args.size as usize,
        template: if args.whole { "whole image".into() } else { "ffhq5".into() },
        detector: if args.whole {
            format!("none (whole images; Laplacian variance >= {})", args.min_sharpness)
        } else {
            format!("YuNet ({}); Laplacian variance >= {}", args.detector_model.display(), args.min_sharpness)
        },
        train,
        val,
        split_rule,
    };
    manifest.save(&args.out)?;
    if let Some((dir, out, size)) = &args.paired {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join(Split::Train.file_name()), &paired_bytes.0)?;
        std::fs::write(out.join(Split::Val.file_name()), &paired_bytes.1)?;
        Manifest {
            source: dir.display().to_string(),
            size: *size as usize,
            detector: format!("YuNet on the clean twins in {}", args.input.display()),
            ..manifest.clone()
        }
        .save(out)?;
    }
    Ok(manifest)
}
