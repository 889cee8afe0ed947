//! The faces of the real photos, marked by hand: what detection and restoration tests
//! hold the pipeline to.

use crate::common::{astronaut, real_lq};

/// Faces marked by looking at each photo (x, y, w, h). Hands and a banister knob that
/// YuNet scores above 0.6 are deliberately absent.
pub fn ground_truth() -> Vec<(std::path::PathBuf, Vec<[f32; 4]>)> {
    let cf = |n: &str| real_lq(&format!("codeformer-inputs/whole_imgs/{n}"));
    let gf = |n: &str| real_lq(&format!("gfpgan-inputs/whole_imgs/{n}"));
    vec![
        (astronaut(), vec![[178.0, 58.0, 93.0, 117.0]]),
        (
            cf("00.jpg"),
            vec![
                [390.0, 68.0, 42.0, 52.0],
                [55.0, 81.0, 45.0, 48.0],
                [284.0, 83.0, 32.0, 40.0],
                [173.0, 78.0, 41.0, 48.0],
            ],
        ),
        (
            cf("01.jpg"),
            vec![
                [95.0, 108.0, 47.0, 65.0],
                [103.0, 13.0, 45.0, 59.0],
                [165.0, 60.0, 46.0, 65.0],
                [35.0, 42.0, 46.0, 63.0],
            ],
        ),
        (
            cf("02.png"),
            vec![
                [864.0, 93.0, 141.0, 167.0],
                [403.0, 79.0, 140.0, 174.0],
                [625.0, 67.0, 136.0, 186.0],
                [144.0, 26.0, 143.0, 197.0],
            ],
        ),
        (cf("03.jpg"), vec![[97.0, 25.0, 114.0, 148.0]]),
        (cf("04.jpg"), vec![[77.0, 50.0, 58.0, 69.0]]),
        (cf("05.jpg"), vec![[72.0, 40.0, 60.0, 67.0]]),
        (cf("06.png"), vec![[95.0, 155.0, 240.0, 285.0], [370.0, 94.0, 232.0, 279.0]]),
        (gf("00.jpg"), vec![[504.0, 771.0, 145.0, 186.0], [764.0, 368.0, 172.0, 195.0]]),
        (gf("10045.png"), vec![[380.0, 127.0, 74.0, 94.0], [367.0, 428.0, 71.0, 88.0], [172.0, 101.0, 77.0, 112.0]]),
        (gf("Blake_Lively.jpg"), vec![[408.0, 66.0, 193.0, 249.0], [88.0, 117.0, 181.0, 188.0]]),
    ]
}
