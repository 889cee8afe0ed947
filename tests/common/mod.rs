//! Shared by the end-to-end tests: where the repository, the shared test data and the
//! shipped models are, and small image helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use faceenhance::PixelFormat;
use opencv::core::{Mat, Rect, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

/// The repository root (the folder with the workspace Cargo.toml).
pub fn repo() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() && std::fs::read_to_string(&manifest).unwrap_or_default().contains("[workspace]") {
            return dir;
        }
        assert!(dir.pop(), "no workspace root above {}", env!("CARGO_MANIFEST_DIR"));
    }
}

/// `../shared` beside the repository (`FACEENHANCE_SHARED` overrides). Tests that need it
/// fail with this message rather than skip: CI has it.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("FACEENHANCE_SHARED").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared"));
    assert!(p.join("data").is_dir(), "test data not found at {} (set FACEENHANCE_SHARED)", p.display());
    p
}

pub fn yunet() -> PathBuf {
    shared().join("models/face_detection_yunet_2022mar.onnx")
}

pub fn real_lq(rel: &str) -> PathBuf {
    shared().join("data/real-lq").join(rel)
}

/// A file the set-up script put in the cache (clips, CenterFace, the astronaut).
pub fn cached(rel: &str) -> PathBuf {
    let p = faceenhance::paths::cache_dir().join(rel);
    assert!(p.is_file(), "{} missing: run scripts/setup.sh", p.display());
    p
}

pub fn astronaut() -> PathBuf {
    cached("data/astronaut.png")
}

pub fn imread(path: &Path) -> Mat {
    let m = imgcodecs::imread(path, imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!m.empty(), "cannot read {}", path.display());
    m
}

pub fn resize(m: &Mat, w: i32, h: i32) -> Mat {
    let mut out = Mat::default();
    imgproc::resize(m, &mut out, Size::new(w, h), 0.0, 0.0, imgproc::INTER_AREA).unwrap();
    out
}

pub fn roi(m: &Mat, x: i32, y: i32, w: i32, h: i32) -> Mat {
    Mat::roi(m, Rect::new(x, y, w, h)).unwrap().try_clone().unwrap()
}

/// Intersection over union of two (x, y, w, h) boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let ih = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Packs BGR into `format` with padding bytes (value 7) after each row and alpha 200.
pub fn pack(bgr: &Mat, format: PixelFormat, pad: usize) -> (Vec<u8>, usize) {
    let (w, h) = (bgr.cols() as usize, bgr.rows() as usize);
    let ch = format.channels();
    let stride = w * ch + pad;
    let mut out = vec![7u8; stride * h];
    let src = bgr.data_bytes().unwrap();
    let [r, g, b] = format.rgb_offsets();
    for y in 0..h {
        for x in 0..w {
            let s = &src[(y * w + x) * 3..][..3];
            let d = y * stride + x * ch;
            if ch == 4 {
                out[d + 3] = 200;
            }
            out[d + b] = s[0];
            out[d + g] = s[1];
            out[d + r] = s[2];
        }
    }
    (out, stride)
}
