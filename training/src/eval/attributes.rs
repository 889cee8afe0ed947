//! The attribute predictor's report (`attributes-report`): exported to ONNX, checked
//! against burn, and its per-attribute accuracy on the validation split, clean and degraded.

use std::path::Path;

use anyhow::{ensure, Result};
use burn::tensor::Device;

use crate::data::cache::{CropSet, Split};
use crate::image::{to_tensor, Img};
use crate::nets::attributes::{AttrConfig, AttrNet};
use crate::train::attributes::{accuracy, load, make_input, Input};
use crate::train::run::step_rng;

/// Exports the predictor to `onnx`, checks ONNX Runtime against burn on validation crops,
/// and measures per-attribute accuracy on the validation split (clean, 4x and 8x down and
/// back up) next to always answering the training split's majority label: a markdown
/// table for the model card.
pub fn export_and_report(cfg: &AttrConfig, onnx: &Path) -> Result<String> {
    let (net, labels) = load(cfg)?;
    crate::onnx::export::export_module(&net, AttrNet::forward, [3, cfg.size, cfg.size], onnx)?;
    let val = CropSet::load(&cfg.cache, Split::Val)?;
    let train = CropSet::load(&cfg.cache, Split::Train)?;
    let (yv, yt) = (labels.for_set(&val)?, labels.for_set(&train)?);

    // ONNX Runtime against burn on 4 crops.
    let device = Device::flex();
    let mut rng = step_rng(7, 0);
    let imgs: Vec<Img> =
        (0..4).map(|i| make_input(&val.get(i), cfg.size, Input::Clean, &mut rng)).collect::<Result<_>>()?;
    let want: Vec<f32> =
        net.forward(to_tensor(&imgs, &device)).into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ort = crate::onnx::runtime::OrtModel::load(onnx, 1)?;
    let (shape, got) = ort.run_raw([4, 3, cfg.size, cfg.size], crate::image::to_nchw(&imgs))?;
    ensure!(shape == [4, labels.names.len(), 1, 1], "ONNX output shape {shape:?}");
    let diff = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    ensure!(diff < 1e-3, "ONNX Runtime differs from burn by {diff}");

    let columns = [
        ("clean", accuracy(&net, &val, &yv, cfg.size, Input::Clean)?),
        ("4x down", accuracy(&net, &val, &yv, cfg.size, Input::Down(4.0))?),
        ("8x down", accuracy(&net, &val, &yv, cfg.size, Input::Down(8.0))?),
    ];
    let n = labels.names.len();
    let majority: Vec<(bool, f64)> = (0..n)
        .map(|a| {
            let present = yt.iter().filter(|r| r[a] > 0.5).count() as f64 / yt.len() as f64;
            let guess = present > 0.5;
            let right = yv.iter().filter(|r| (r[a] > 0.5) == guess).count() as f64 / yv.len() as f64;
            (guess, right)
        })
        .collect();
    let mut md = format!(
        "ONNX Runtime vs burn: max |logit difference| {diff:.2e} on 4 crops. Validation: {} faces.\n\n\
         | attribute | clean | 4x down | 8x down | majority label (its accuracy) |\n| --- | ---: | ---: | ---: | ---: |\n",
        val.len()
    );
    for (a, name) in labels.names.iter().enumerate() {
        let (g, m) = majority[a];
        md += &format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {} ({m:.3}) |\n",
            columns[0].1[a],
            columns[1].1[a],
            columns[2].1[a],
            if g { "+1" } else { "-1" }
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let m: Vec<f64> = majority.iter().map(|x| x.1).collect();
    md += &format!(
        "| **mean** | **{:.3}** | **{:.3}** | **{:.3}** | ({:.3}) |\n",
        mean(&columns[0].1),
        mean(&columns[1].1),
        mean(&columns[2].1),
        mean(&m)
    );
    Ok(md)
}
