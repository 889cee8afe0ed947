//! Evaluation of an exported model through ONNX Runtime on the validation split: PSNR, SSIM
//! and UQI against the baseline, PSNR drift over repeated run-throughs, speed per face, and a
//! side-by-side grid PNG.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::cache::{CropSet, Split};
use crate::data::degrade::DegradeConfig;
use crate::data::learned::LearnedDegrader;
use crate::data::pairs::{baseline, validation_pairs};
use crate::image::{grid, Img};
use crate::metrics::quality::{psnr_y, Scores};
use crate::nets::facerec::{Identity, IdentityScores};
use crate::onnx::runtime::OrtModel;

pub struct EvalArgs {
    pub model: PathBuf,
    pub cache: PathBuf,
    pub scale: usize,
    pub count: usize,
    pub seed: u64,
    pub degrade: DegradeConfig,
    pub grid: Option<PathBuf>,
    pub grid_rows: usize,
    pub drift_runs: usize,
    pub drift_count: usize,
    pub threads: usize,
    /// Degrade the validation crops with this learned degradation model (ONNX, seeded
    /// `seed + i`) instead of the synthetic pipeline.
    pub learned: Option<PathBuf>,
    /// Real pairs: the validation split of this cache holds the inputs (e.g. the
    /// `prepare --paired-out` crops of a distorted video) for the targets in `cache`.
    pub paired_inputs: Option<PathBuf>,
    /// Side of each grid cell (px).
    pub grid_cell: usize,
    /// Real low-quality pictures without ground truth (e.g. real-lq's aligned 512 px faces):
    /// each is area-resized to the model's input and written, with the model's output, as
    /// one row of `real_grid`.
    pub real: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub n: usize,
    pub scores: Scores,
    pub baseline: Scores,
    pub gain_psnr: f64,
    pub gain_ssim: f64,
    /// Descriptor distance (dlib's face net, `nets::facerec`) of outputs and of inputs (the
    /// baseline) to the truth, and the share of faces the model brought closer.
    pub identity: IdentityScores,
    /// Mean PSNR after 1..=N run-throughs of the model on its own output.
    pub drift_psnr: Vec<f64>,
    /// ms per face at batch 1, 4 and 8, with `threads` intra-op threads.
    pub ms_per_face_b1: f64,
    pub ms_per_face_b4: f64,
    pub ms_per_face_b8: f64,
    pub threads: usize,
    pub onnx_bytes: u64,
}

fn time_per_face(m: &mut OrtModel, in_size: usize, batch: usize, runs: usize) -> Result<f64> {
    let imgs = vec![Img::filled(in_size, in_size, [0.5; 3]); batch];
    for _ in 0..5 {
        m.run(&imgs)?;
    }
    let t = Instant::now();
    for _ in 0..runs {
        m.run(&imgs)?;
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0 / (runs * batch) as f64)
}

/// Rows of (input, output) for up to `rows` pictures of `dir`, sorted by name.
fn real_grid(
    m: &mut OrtModel,
    dir: &std::path::Path,
    in_size: usize,
    cell: usize,
    rows: usize,
    out: &std::path::Path,
) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut grid_rows = Vec::new();
    for f in files.iter().take(rows) {
        let bgr = opencv::imgcodecs::imread(f, opencv::imgcodecs::IMREAD_COLOR)?;
        if opencv::prelude::MatTraitConst::empty(&bgr) {
            continue;
        }
        let x = Img::from_mat_bgr8(&bgr)?.resize(in_size, in_size, opencv::imgproc::INTER_AREA)?.clamp();
        let y = m.run(std::slice::from_ref(&x))?.remove(0).clamp();
        grid_rows.push(vec![x, y]);
    }
    anyhow::ensure!(!grid_rows.is_empty(), "no pictures in {}", dir.display());
    grid(&grid_rows, cell, 4).save_png(out)
}

pub fn evaluate(a: &EvalArgs) -> Result<EvalReport> {
    let set = CropSet::load(&a.cache, Split::Val)?;
    let out_size = set.size;
    let in_size = out_size / a.scale;
    let pairs = match &a.learned {
        None if a.paired_inputs.is_some() => {
            let p = a.paired_inputs.as_ref().expect("checked");
            let lr = CropSet::load(p, Split::Val)?;
            anyhow::ensure!(
                lr.len() == set.len() && lr.size * a.scale == set.size,
                "{} does not pair with the targets",
                p.display()
            );
            (0..a.count.min(set.len())).map(|i| (lr.get(i), set.get(i))).collect()
        }
        None => validation_pairs(&set, a.scale, &a.degrade, a.seed, a.count)?,
        Some(p) => {
            let g = LearnedDegrader::load(p)?;
            anyhow::ensure!(g.scale() == a.scale, "{} is x{}, the model x{}", p.display(), g.scale(), a.scale);
            (0..a.count.min(set.len()))
                .map(|i| {
                    let clean = set.get(i);
                    Ok((g.degrade(&clean, &mut ChaCha8Rng::seed_from_u64(a.seed + i as u64))?, clean))
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let mut m = OrtModel::load(&a.model, a.threads)?;
    let (mut ms, mut bs) = (Scores::default(), Scores::default());
    let mut outs = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(16) {
        let xs: Vec<Img> = chunk.iter().map(|p| p.0.clone()).collect();
        for ((x, y), o) in chunk.iter().zip(m.run(&xs)?) {
            let o = o.clamp();
            ms.add(&o, y);
            bs.add(&baseline(x, out_size)?, y);
            outs.push(o);
        }
    }
    // repeated run-through: feed the output back (down-scaled to the input size for SR)
    let nd = a.drift_count.min(pairs.len());
    let mut cur: Vec<Img> = pairs[..nd].iter().map(|p| p.0.clone()).collect();
    let mut drift = Vec::new();
    for _ in 0..a.drift_runs {
        let mut next = Vec::with_capacity(nd);
        let mut psnr = 0.0;
        for (chunk, gts) in cur.chunks(16).zip(pairs[..nd].chunks(16)) {
            for (o, (_, y)) in m.run(chunk)?.into_iter().zip(gts) {
                let o = o.clamp();
                psnr += psnr_y(&o, y, 0);
                next.push(if a.scale == 1 {
                    o
                } else {
                    o.resize(in_size, in_size, opencv::imgproc::INTER_AREA)?.clamp()
                });
            }
        }
        drift.push(psnr / nd.max(1) as f64);
        cur = next;
    }
    if let Some(path) = &a.grid {
        let rows: Vec<Vec<Img>> = pairs
            .iter()
            .zip(&outs)
            .take(a.grid_rows)
            .map(|((x, y), o)| Ok(vec![x.clone(), baseline(x, out_size)?, o.clone(), y.clone()]))
            .collect::<Result<_>>()?;
        grid(&rows, a.grid_cell, 4).save_png(path)?;
    }
    if let Some((dir, path)) = &a.real {
        real_grid(&mut m, dir, in_size, a.grid_cell, a.grid_rows, path)?;
    }
    let runs = (200.0 * (64.0 / in_size as f64).powi(2)).clamp(10.0, 200.0) as usize;
    let b1 = time_per_face(&mut m, in_size, 1, runs)?;
    let b4 = time_per_face(&mut m, in_size, 4, runs.div_ceil(4).max(3))?;
    let b8 = time_per_face(&mut m, in_size, 8, runs.div_ceil(8).max(3))?;
    let (ms, bs) = (ms.mean(), bs.mean());
    let inputs: Vec<Img> = pairs.iter().map(|p| p.0.clone()).collect();
    let truths: Vec<Img> = pairs.iter().map(|p| p.1.clone()).collect();
    let identity = Identity::load_default()?.scores(&outs, &inputs, &truths)?;
    Ok(EvalReport {
        identity,
        model: a.model.display().to_string(),
        n: ms.n,
        gain_psnr: ms.psnr - bs.psnr,
        gain_ssim: ms.ssim - bs.ssim,
        scores: ms,
        baseline: bs,
        drift_psnr: drift,
        ms_per_face_b1: b1,
        ms_per_face_b4: b4,
        ms_per_face_b8: b8,
        threads: a.threads,
        onnx_bytes: std::fs::metadata(&a.model)?.len(),
    })
}
