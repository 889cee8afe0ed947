//! The face gallery's memory stays bounded on a long stream: tracks not seen for a while
//! go to disk and leave only their index entry in memory, and the finished gallery still
//! covers every track.

use std::path::PathBuf;

use faceenhance::detect::Face;
use faceenhance::frame::frame_from_mat;
use faceenhance::gallery::Gallery;
use opencv::core::{Mat, Rect, Scalar, Vec3b, CV_8UC3};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

const FRAMES: u64 = 50_000;
/// A new track every 20 frames, each seen for 40: two faces in every frame.
const EVERY: u64 = 20;
const SEEN: u64 = 40;
const W: i32 = 160;
const H: i32 = 96;

/// Track `id`'s colour (BGR): each face's crop is filled with it, so a crop on disk can be
/// told apart from its neighbours'.
fn colour(id: u64) -> [u8; 3] {
    [(id * 7 % 256) as u8, (id * 13 % 256) as u8, (id * 29 % 256) as u8]
}

/// Tracks seen in frame `f`: id k + 1 for each k with 20 k <= f < 20 k + 40. Even ks sit on
/// the left half of the frame, odd ones on the right.
fn tracks(f: u64) -> Vec<u64> {
    let last = f / EVERY;
    (last.saturating_sub(SEEN / EVERY - 1)..=last).filter(|k| k * EVERY + SEEN > f).map(|k| k + 1).collect()
}

fn face_box(id: u64) -> [f32; 4] {
    if id % 2 == 1 {
        [8.0, 16.0, 40.0, 40.0]
    } else {
        [96.0, 16.0, 40.0, 40.0]
    }
}

/// Resident set size in bytes, from /proc/self/statm.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faceenhance-gallery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_long_stream_keeps_few_crops_in_memory_and_writes_every_track() {
    let dir = temp("long");
    let mut gallery = Gallery::new(&dir).unwrap();
    let bound = 2 + (gallery.retire_after / EVERY) as usize + 2;
    let (mut rss_10k, mut most) = (0, 0);
    for f in 0..FRAMES {
        let mut m = Mat::new_rows_cols_with_default(H, W, CV_8UC3, Scalar::all(0.0)).unwrap();
        let mut faces = Vec::new();
        for id in tracks(f) {
            let [x, y, w, h] = face_box(id);
            let half = Rect::new(if x < 80.0 { 0 } else { W / 2 }, 0, W / 2, H);
            let [b, g, r] = colour(id);
            imgproc::rectangle(&mut m, half, Scalar::new(b as f64, g as f64, r as f64, 0.0), -1, imgproc::LINE_8, 0)
                .unwrap();
            // Some detail inside the face, so sharpness is not zero.
            let detail = Rect::new(x as i32 + 10, y as i32 + 10, w as i32 - 20, h as i32 - 20);
            imgproc::rectangle(&mut m, detail, Scalar::all(255.0), 2, imgproc::LINE_8, 0).unwrap();
            let mut face = Face::from_box([x, y, w, h], 0.5 + 0.01 * ((f * 7 + id) % 40) as f32);
            face.id = id;
            faces.push(face);
        }
        let models = vec![Some("restore-test".to_string()); faces.len()];
        let frame = frame_from_mat(&mut m).unwrap();
        gallery.offer(&frame, &faces, &models, f, f * 40_000_000).unwrap();
        most = most.max(gallery.crops_in_memory());
        assert!(gallery.crops_in_memory() <= bound, "frame {f}: {} crops in memory", gallery.crops_in_memory());
        if f == 10_000 {
            rss_10k = rss();
        }
    }
    let rss_50k = rss();
    let tracks_total = (FRAMES - 1) / EVERY + 1;
    assert_eq!(gallery.len() as u64, tracks_total);
    let grown = rss_50k as f64 - rss_10k as f64;
    eprintln!(
        "{} tracks, at most {most} crops in memory, RSS {:.1} MB at frame 10,000 -> {:.1} MB at 50,000",
        gallery.len(),
        rss_10k as f64 / 1e6,
        rss_50k as f64 / 1e6
    );
    assert!(grown < 3e6, "RSS grew by {:.2} MB between frame 10,000 and 50,000", grown / 1e6);

    let index = gallery.write().unwrap();
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(index).unwrap()).unwrap();
    let list = index["tracks"].as_array().unwrap();
    assert_eq!(list.len() as u64, tracks_total);
    // Without identities every track is its own person, in order.
    let people = index["people"].as_array().unwrap();
    assert_eq!(people.len() as u64, tracks_total);
    for (k, e) in list.iter().enumerate() {
        let id = k as u64 + 1;
        assert_eq!(e["id"].as_u64(), Some(id));
        assert_eq!(e["person"].as_u64(), Some(id));
        assert_eq!(people[k]["tracks"], serde_json::json!([id]));
        let first = (id - 1) * EVERY;
        let last = (first + SEEN - 1).min(FRAMES - 1);
        assert_eq!(e["frames_seen"].as_u64(), Some(last - first + 1), "track {id}");
        assert_eq!(e["first_ns"].as_u64(), Some(first * 40_000_000), "track {id}");
        assert_eq!(e["last_ns"].as_u64(), Some(last * 40_000_000), "track {id}");
        assert_eq!(e["model"].as_str(), Some("restore-test"));
        let best = e["best_frame"].as_u64().unwrap();
        assert!((first..=last).contains(&best), "track {id}: best frame {best}");
        // The file on disk is this track's crop (its colour near the crop's bottom left).
        let crop = imgcodecs::imread(dir.join(e["file"].as_str().unwrap()), imgcodecs::IMREAD_COLOR).unwrap();
        assert_eq!((crop.cols(), crop.rows()), if id % 2 == 1 { (60, 64) } else { (64, 64) }, "track {id}");
        let px = crop.at_2d::<Vec3b>(crop.rows() - 3, 3).unwrap();
        assert_eq!(px.0, colour(id), "track {id}");
    }
    // The contact sheet has a thumbnail per track, retired ones read back from disk, in
    // pages of 96 (each page bounded, whatever the stream's length).
    let cells = faceenhance::gallery::SHEET_CELLS as u64;
    let pages = tracks_total.div_ceil(cells);
    let page_name =
        |p: u64| if p == 0 { "contact-sheet.png".to_string() } else { format!("contact-sheet-{}.png", p + 1) };
    assert!(!dir.join(page_name(pages)).exists(), "no page past the last");
    for id in [1, 2, 96, 97, 777, 1500, tracks_total] {
        let (page, k) = ((id - 1) / cells, ((id - 1) % cells) as i32);
        let sheet = imgcodecs::imread(dir.join(page_name(page)), imgcodecs::IMREAD_COLOR).unwrap();
        let in_page = (tracks_total - page * cells).min(cells) as i32;
        assert_eq!((sheet.cols(), sheet.rows()), (in_page.min(8) * 128, (in_page + 7) / 8 * (128 + 34)), "page {page}");
        let px = sheet.at_2d::<Vec3b>(k / 8 * (128 + 34) + 122, k % 8 * 128 + 6).unwrap();
        let want = colour(id);
        assert!(px.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 2), "thumbnail {id}: {:?} vs {want:?}", px.0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_track_seen_again_after_retiring_keeps_one_entry_and_its_best_crop() {
    let dir = temp("again");
    let mut gallery = Gallery::new(&dir).unwrap();
    gallery.retire_after = 5;
    let offer = |gallery: &mut Gallery, f: u64, score: f32, shade: f64| {
        let mut m = Mat::new_rows_cols_with_default(H, W, CV_8UC3, Scalar::all(shade)).unwrap();
        imgproc::rectangle(&mut m, Rect::new(18, 26, 20, 20), Scalar::all(shade + 50.0), 2, imgproc::LINE_8, 0)
            .unwrap();
        let mut face = Face::from_box([8.0, 16.0, 40.0, 40.0], score);
        face.id = 3;
        let frame = frame_from_mat(&mut m).unwrap();
        gallery.offer(&frame, &[face], &[None], f, f).unwrap();
    };
    offer(&mut gallery, 0, 0.9, 50.0);
    assert_eq!(gallery.crops_in_memory(), 1);
    gallery.retire(6).unwrap();
    assert_eq!(gallery.crops_in_memory(), 0, "not seen for 6 frames: retired");
    gallery.flush().unwrap();
    assert!(dir.join("face-00003.png").exists(), "a retired crop is on disk once the writer caught up");
    // Seen again with a worse score: the retired crop stays the best, nothing in memory.
    offer(&mut gallery, 20, 0.3, 200.0);
    assert_eq!(gallery.crops_in_memory(), 0);
    gallery.write().unwrap();
    let crop = imgcodecs::imread(dir.join("face-00003.png"), imgcodecs::IMREAD_COLOR).unwrap();
    assert_eq!(crop.at_2d::<Vec3b>(2, 2).unwrap().0, [50, 50, 50]);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let list = index["tracks"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0]["frames_seen"].as_u64(), list[0]["last_ns"].as_u64()), (Some(2), Some(20)));
    // A better one later replaces it.
    offer(&mut gallery, 40, 0.99, 120.0);
    assert_eq!(gallery.crops_in_memory(), 1);
    gallery.write().unwrap();
    let crop = imgcodecs::imread(dir.join("face-00003.png"), imgcodecs::IMREAD_COLOR).unwrap();
    assert_eq!(crop.at_2d::<Vec3b>(2, 2).unwrap().0, [120, 120, 120]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A crop the disk refuses (the folder taken away mid-stream) is an error naming the file,
/// reported by the gallery, not lost in silence on its writer thread.
#[test]
fn a_crop_that_cannot_be_written_is_an_error() {
    let dir = temp("gone");
    let mut gallery = Gallery::new(&dir).unwrap();
    gallery.retire_after = 1;
    let mut m = Mat::new_rows_cols_with_default(H, W, CV_8UC3, Scalar::all(90.0)).unwrap();
    imgproc::rectangle(&mut m, Rect::new(18, 26, 20, 20), Scalar::all(200.0), 2, imgproc::LINE_8, 0).unwrap();
    let mut face = Face::from_box([8.0, 16.0, 40.0, 40.0], 0.9);
    face.id = 9;
    gallery.offer(&frame_from_mat(&mut m).unwrap(), &[face], &[None], 0, 0).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    gallery.retire(10).unwrap();
    let err = format!("{:#}", gallery.write().unwrap_err());
    assert!(err.contains("face-00009.png"), "{err}");
}
