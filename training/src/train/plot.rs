//! Loss-curve PNG of a run (plotters, bitmap back-end): pixel loss per logged step, and the
//! validation PSNR of the model against the baseline.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = s.lines();
    let header = lines.next().unwrap_or_default().split(',').map(str::to_string).collect();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.parse().unwrap_or(f64::NAN)).collect())
        .collect();
    Ok((header, rows))
}

fn col(header: &[String], rows: &[Vec<f64>], name: &str) -> Vec<f64> {
    let i = header.iter().position(|h| h == name).unwrap_or(0);
    rows.iter().map(|r| r.get(i).copied().unwrap_or(f64::NAN)).collect()
}

fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().filter(|x| x.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().filter(|x| x.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

/// What a run's loss-curve PNG shows: the left panel plots `loss_col` of `losses.csv` (and
/// the discriminator loss `d`, rescaled); the right one the `val_series` columns of `val.csv`.
pub struct PlotSpec {
    pub loss_title: &'static str,
    pub loss_col: &'static str,
    pub val_title: &'static str,
    pub val_y: &'static str,
    /// (column, legend label); the first series also gets point markers.
    pub val_series: &'static [(&'static str, &'static str)],
}

/// The generators' runs: Charbonnier pixel loss, validation PSNR of the model and baseline.
pub const SR_PLOT: PlotSpec = PlotSpec {
    loss_title: "training pixel loss (Charbonnier)",
    loss_col: "pixel",
    val_title: "validation PSNR (Y, dB)",
    val_y: "PSNR",
    val_series: &[("psnr", "model (EMA)"), ("baseline_psnr", "baseline")],
};

/// Writes `loss_curve.png` into the run folder from `losses.csv` and `val.csv`.
pub fn plot_run(run: &Path) -> Result<()> {
    plot_run_with(run, &SR_PLOT)
}

/// Writes `loss_curve.png` into the run folder as `spec` says.
pub fn plot_run_with(run: &Path, spec: &PlotSpec) -> Result<()> {
    let (lh, lr) = read_csv(&run.join("losses.csv"))?;
    let val = read_csv(&run.join("val.csv")).ok();
    let out = run.join("loss_curve.png");
    let root = BitMapBackend::new(&out, (1200, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);

    let steps = col(&lh, &lr, "step");
    let pix = col(&lh, &lr, spec.loss_col);
    let (x0, x1) = range(&steps);
    let (y0, y1) = range(&pix);
    let mut c = ChartBuilder::on(&left)
        .caption(spec.loss_title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    c.configure_mesh().x_desc("step").y_desc("loss").draw()?;
    c.draw_series(LineSeries::new(steps.iter().copied().zip(pix.iter().copied()).filter(|p| p.1.is_finite()), &BLUE))?;
    let adv = col(&lh, &lr, "d");
    if adv.iter().any(|v| *v > 0.0) {
        // discriminator loss, rescaled into the same axis for its shape only
        let (a0, a1) = range(&adv);
        let scale = |v: f64| y0 + (v - a0) / (a1 - a0).max(1e-9) * (y1 - y0);
        c.draw_series(LineSeries::new(
            steps.iter().copied().zip(adv.iter().copied()).filter(|p| p.1 > 0.0).map(|(s, v)| (s, scale(v))),
            &RED.mix(0.5),
        ))?
        .label("D loss (rescaled)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        c.configure_series_labels().border_style(BLACK).draw()?;
    }

    if let Some((vh, vr)) = val {
        let vs = col(&vh, &vr, "step");
        let series: Vec<Vec<f64>> = spec.val_series.iter().map(|(c, _)| col(&vh, &vr, c)).collect();
        let all: Vec<f64> = series.iter().flatten().copied().collect();
        let (x0, x1) = range(&vs);
        let (y0, y1) = range(&all);
        let mut c = ChartBuilder::on(&right)
            .caption(spec.val_title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        c.configure_mesh().x_desc("step").y_desc(spec.val_y).draw()?;
        let colours = [BLUE, BLACK, RED, GREEN, MAGENTA, CYAN];
        for (k, (v, (_, label))) in series.iter().zip(spec.val_series).enumerate() {
            let colour = colours[k % colours.len()];
            c.draw_series(LineSeries::new(vs.iter().copied().zip(v.iter().copied()), &colour))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
            if k == 0 {
                c.draw_series(vs.iter().copied().zip(v.iter().copied()).map(|pt| Circle::new(pt, 3, colour.filled())))?;
            }
        }
        c.configure_series_labels().border_style(BLACK).position(SeriesLabelPosition::LowerRight).draw()?;
    }
    root.present()?;
    Ok(())
}
