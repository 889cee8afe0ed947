//! The attribute editor's report (`edit-report`): exported to ONNX, checked against burn,
//! and its edits on the validation split judged by an attribute predictor trained apart.

use std::path::Path;

use anyhow::{ensure, Result};
use burn::tensor::Device;

use crate::data::cache::{CropSet, Split};
use crate::data::labels::labels_tensor;
use crate::image::{from_tensor, grid, to_tensor, Img};
use crate::nets::attributes::{load_predictor, AttrNet};
use crate::nets::edit::{export, EditNet};
use crate::train::edit::{load, EditConfig};

/// One batch of validation crops edited as `ask` says (the same ask for each).
pub fn edit_batch(net: &EditNet, imgs: &[Img], ask: &[f32]) -> Vec<Img> {
    edit_each(net, imgs, &vec![ask.to_vec(); imgs.len()])
}

/// Each crop edited as its own ask says.
fn edit_each(net: &EditNet, imgs: &[Img], asks: &[Vec<f32>]) -> Vec<Img> {
    let device = Device::flex();
    from_tensor(net.forward(to_tensor(imgs, &device), labels_tensor(asks, &device)).clamp(0.0, 1.0))
}

/// The predictor's decisions (logit > 0) for a batch, `[face][attribute]`.
fn decide(judge: &AttrNet, imgs: &[Img]) -> Result<Vec<Vec<bool>>> {
    let n = imgs.len();
    let v = judge
        .forward(to_tensor(imgs, &Device::flex()))
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let k = v.len() / n.max(1);
    Ok((0..n).map(|i| v[i * k..(i + 1) * k].iter().map(|&l| l > 0.0).collect()).collect())
}

/// Per face, an ask for the opposite of what the judge decided for attribute `a` of the
/// editor's `n` (`judged` its place among the judge's), nothing for the others.
fn opposite(decisions: &[Vec<bool>], judged: usize, a: usize, n: usize) -> Vec<Vec<f32>> {
    decisions
        .iter()
        .map(|d| {
            (0..n)
                .map(|k| {
                    if k != a {
                        0.0
                    } else if d[judged] {
                        -1.0
                    } else {
                        1.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Exports the editor to `onnx` (checked against burn through ONNX Runtime) and measures
/// it on the validation split, judged by the `judge` predictor (trained apart from the guide
/// the editor may have trained against; the guide's verdict is reported beside it): for
/// each editable attribute, asked for the opposite of what the predictor sees, how often
/// the predictor sees the asked value after the edit, and how often the other 39
/// attributes keep their decision; reconstruction PSNR when nothing is asked. Writes a
/// grid of `grid_faces` faces (input, then one row per attribute, then the
/// reconstruction) to `grid_path`, from `grid_cache`'s validation faces when given (e.g.
/// the CC BY London set, area-resized to 64 px: CelebA pictures stay out of the repository).
/// Returns a markdown table.
pub fn export_and_report(
    cfg: &EditConfig,
    onnx: &Path,
    grid_path: &Path,
    grid_faces: usize,
    grid_cache: Option<&Path>,
) -> Result<String> {
    let (net, labels) = load(cfg)?;
    export(&net, onnx)?;
    let val = CropSet::load(&cfg.cache, Split::Val)?;
    let judge_dir = cfg.judge.as_ref().unwrap_or(&cfg.predictor);
    let judge = load_predictor(judge_dir, &Device::flex())?;
    // no separate judge: the guide's verdict is the judge's, computed once
    let guide = (judge_dir != &cfg.predictor).then(|| load_predictor(&cfg.predictor, &Device::flex())).transpose()?;
    let pick = cfg.indices(&labels.names)?;
    let n = pick.len();

    // ONNX Runtime against burn on 4 crops, one attribute asked each
    let imgs: Vec<Img> = (0..4).map(|i| val.get(i)).collect();
    let asks: Vec<Vec<f32>> = (0..4).map(|i| (0..n).map(|a| if a == i % n { 1.0 } else { 0.0 }).collect()).collect();
    let device = Device::flex();
    let want = net
        .forward(to_tensor(&imgs, &device), labels_tensor(&asks, &device))
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ort = crate::onnx::runtime::OrtModel::load(onnx, 1)?;
    let (_, got) =
        ort.run_two(([4, 3, 64, 64], crate::image::to_nchw(&imgs)), ("attributes", [4, n, 1, 1], asks.concat()))?;
    let diff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    ensure!(diff < 1e-3, "ONNX Runtime differs from burn by {diff}");

    let (mut success, mut kept, mut asked) = (vec![0usize; n], vec![0usize; n], vec![0usize; n]);
    let mut guide_success = vec![0usize; n];
    let mut kept_each = vec![0.0f64; n];
    let (mut psnr, mut count, mut rec_kept) = (0.0f64, 0usize, 0.0f64);
    let mut rows: Vec<Vec<Img>> = vec![Vec::new(); n + 2];
    for start in (0..val.len()).step_by(50) {
        let batch: Vec<Img> = (start..(start + 50).min(val.len())).map(|i| val.get(i)).collect();
        let before = decide(&judge, &batch)?;
        let rec = edit_batch(&net, &batch, &vec![0.0; n]);
        let after_rec = decide(&judge, &rec)?;
        for ((r, b), (d0, d1)) in rec.iter().zip(&batch).zip(before.iter().zip(&after_rec)) {
            psnr += crate::metrics::quality::psnr_y(r, b, 0);
            rec_kept += d0.iter().zip(d1).filter(|(x, y)| x == y).count() as f64 / d0.len() as f64;
            count += 1;
        }
        if start == 0 {
            rows[0] = batch.iter().take(grid_faces).cloned().collect();
            rows[n + 1] = rec.iter().take(grid_faces).cloned().collect();
        }
        for a in 0..n {
            let out = edit_each(&net, &batch, &opposite(&before, pick[a], a, n));
            let after = decide(&judge, &out)?;
            // the guide's verdict on the same edits (asked: the opposite of the judge's decision)
            let by_guide = match &guide {
                Some(guide) => decide(guide, &out)?,
                None => after.clone(),
            };
            for (b, gf) in before.iter().zip(by_guide) {
                guide_success[a] += (gf[pick[a]] != b[pick[a]]) as usize;
            }
            for (b, af) in before.iter().zip(&after) {
                asked[a] += 1;
                if af[pick[a]] != b[pick[a]] {
                    success[a] += 1;
                }
                let others = (0..b.len()).filter(|&k| k != pick[a]);
                let same = others.clone().filter(|&k| af[k] == b[k]).count();
                let total = others.count();
                kept[a] += (same == total) as usize;
                kept_each[a] += same as f64 / total as f64;
            }
            if start == 0 {
                rows[a + 1] = out.into_iter().take(grid_faces).collect();
            }
        }
    }
    if let Some(cache) = grid_cache {
        let set = CropSet::load(cache, Split::Val)?;
        let faces: Vec<Img> = (0..grid_faces.min(set.len()))
            .map(|i| {
                set.get(i * set.len() / grid_faces.max(1)).resize(64, 64, opencv::imgproc::INTER_AREA).map(Img::clamp)
            })
            .collect::<Result<_>>()?;
        let before = decide(&judge, &faces)?;
        rows = vec![faces.clone()];
        for (a, &p) in pick.iter().enumerate().take(n) {
            rows.push(edit_each(&net, &faces, &opposite(&before, p, a, n)));
        }
        rows.push(edit_batch(&net, &faces, &vec![0.0; n]));
    }
    grid(&rows, 64, 2).save_png(grid_path)?;
    let name = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut md = format!(
        "ONNX Runtime vs burn: max |difference| {diff:.2e} on 4 crops. Validation: {} faces; judge: the \
         attribute predictor `{}`; guide (the predictor the editor trained against, when `guide_weight` > 0): \
         `{}`.\n\n| asked: the opposite of what the judge sees | edit success (judge) | edit success (guide) | \
         other 39 attributes kept (mean) | all 39 kept |\n| --- | ---: | ---: | ---: | ---: |\n",
        val.len(),
        name(judge_dir),
        name(&cfg.predictor)
    );
    for a in 0..n {
        let k = asked[a] as f64;
        md += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            cfg.attributes[a],
            success[a] as f64 / k,
            guide_success[a] as f64 / k,
            kept_each[a] / k,
            kept[a] as f64 / k
        );
    }
    let all = asked.iter().sum::<usize>() as f64;
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / all;
    md += &format!(
        "| **mean** | **{:.3}** | **{:.3}** | **{:.3}** | **{:.3}** |\n",
        mean(&success),
        mean(&guide_success),
        kept_each.iter().sum::<f64>() / all,
        mean(&kept)
    );
    md += &format!(
        "\nNothing asked (reconstruction): PSNR {:.2} dB (luma) over the {count} faces; the judge's 40 \
         decisions kept {:.3} of the time.\n",
        psnr / count as f64,
        rec_kept / count as f64
    );
    Ok(md)
}
