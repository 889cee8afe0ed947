//! The generators' training loop: seeded, resumable from checkpoints, with progress bar,
//! tracing logs, CSV logs of losses and validation metrics, and a loss-curve PNG.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::cache::{CropSet, Split};
use crate::data::learned::LearnedDegrader;
use crate::data::pairs::{baseline, validation_pairs};
use crate::image::{from_tensor, to_tensor, Img};
use crate::losses::{adversarial, pixel};
use crate::metrics::quality::Scores;
use crate::nets::generator::{Generator, GeneratorConfig};
use crate::nets::patch_d::PatchDiscriminator;
use crate::nets::restore::RestoreConfig;
use crate::train::batches::{batch_for_step, TrainData};
use crate::train::checkpoint::Ckpt;
use crate::train::config::{AdvKind, TrainConfig};
use crate::train::ema::ema_update;
use crate::train::run::{append_csv, RunOptions};

/// Runs `gen` (plain device) over validation pairs; returns (model scores, baseline scores,
/// the clamped outputs).
pub fn validate(
    gen: &Generator,
    pairs: &[(Img, Img)],
    out_size: usize,
    device: &Device,
) -> Result<(Scores, Scores, Vec<Img>)> {
    let (mut ms, mut bs) = (Scores::default(), Scores::default());
    let mut all = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(32) {
        let xs: Vec<Img> = chunk.iter().map(|p| p.0.clone()).collect();
        let outs = from_tensor(gen.forward(to_tensor(&xs, device)));
        for ((x, y), o) in chunk.iter().zip(outs) {
            let o = o.clamp();
            ms.add_fast(&o, y);
            bs.add_fast(&baseline(x, out_size)?, y);
            all.push(o);
        }
    }
    Ok((ms.mean(), bs.mean(), all))
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub elapsed_s: f64,
    pub best_val_psnr: f64,
}

pub fn train(cfg: &TrainConfig, opts: &RunOptions) -> Result<TrainState> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let train_set = TrainData::load(cfg)?;
    let val_set = CropSet::load(&cfg.cache, Split::Val)?;
    let scale = cfg.generator.scale();
    let out = &cfg.out_dir;
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("config.toml"), toml::to_string(cfg)?)?;
    let ck = Ckpt { dir: out.join("checkpoint") };
    let learned = match (cfg.degrade.learned_prob > 0.0, &cfg.degrade.learned_model) {
        (false, _) => None,
        (true, Some(p)) => Some(LearnedDegrader::load(p)?),
        (true, None) => anyhow::bail!("degrade.learned_prob > 0 needs degrade.learned_model"),
    };

    let adam = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.99).with_epsilon(1e-8);
    let mut g = cfg.generator.init_fresh(&ad)?;
    if let (Some(from), false) = (&cfg.init_from, ck.exists()) {
        let p = from.join("ema.bpk");
        anyhow::ensure!(p.is_file(), "init_from: no EMA generator at {}", p.display());
        g = match (&cfg.init_stem, &cfg.generator) {
            (None, _) => g.load_file(p),
            (Some(s), GeneratorConfig::Restore(c)) => {
                let from = GeneratorConfig::Restore(RestoreConfig { stem: *s, ..c.clone() });
                match from.init(&ad).load_file(p) {
                    Generator::Restore(m) => Generator::Restore(m.restem(c.stem)),
                    _ => unreachable!("a restore config builds a RestoreNet"),
                }
            }
            (Some(_), _) => anyhow::bail!("init_stem applies to restoration generators only"),
        };
        tracing::info!("generator initialised from {}", from.display());
    }
    let ema = g.valid();
    let fresh = (
        g,
        PatchDiscriminator::with_downs(cfg.d_channels, 2, if cfg.d_detail { 6 } else { 3 }, &ad),
        ema,
        adam.init(),
        AdamConfig::new().with_beta_1(0.5).with_beta_2(0.99).with_epsilon(1e-8).init(),
    );
    let ((mut g, mut d, mut ema, mut opt_g, mut opt_d), mut state): (_, TrainState) = ck.resume(opts.resume, fresh)?;
    if state.step > 0 {
        tracing::info!(step = state.step, "resumed from {}", ck.dir.display());
    }
    tracing::info!(
        params_g = g.num_params(),
        params_d = d.num_params(),
        train = train_set.len(),
        val = val_set.len(),
        "training {} for {} steps (batch {})",
        cfg.name,
        cfg.steps,
        cfg.batch_size
    );

    let perceptual = match (&cfg.perceptual_net, cfg.perceptual_weight > 0.0) {
        (Some(dir), true) => Some(crate::losses::attributes::Features::load(dir, &ad)?),
        (None, true) => anyhow::bail!("perceptual_weight > 0 needs perceptual_net"),
        _ => None,
    };
    let mut face = match cfg.uses_face_prior() {
        true => Some(crate::train::face_phase::FacePhase::new(cfg, &ad)?.resume(&ck.dir)?),
        false => None,
    };
    // identity on the validation pairs, with the same frozen net on the plain device
    let identity = match cfg.uses_face_prior() {
        true => Some(crate::nets::facerec::Identity::load(
            &cfg.face_net.clone().unwrap_or_else(crate::nets::facerec::default_dir),
        )?),
        false => None,
    };
    let val_pairs = validation_pairs(&val_set, scale, &cfg.degrade, cfg.val_seed, cfg.val_count)?;
    let val_size = val_set.size;
    let stop_at = opts.stop_at.unwrap_or(cfg.steps).min(cfg.steps);
    let steps_per_epoch = (train_set.len() as f64 / cfg.batch_size as f64).max(1.0);
    let chunk_start = Instant::now();
    let base_elapsed = state.elapsed_s;
    let pb = if opts.progress { ProgressBar::new(stop_at as u64) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} [{elapsed_precise} eta {eta}]").unwrap());
    pb.set_position(state.step as u64);
    let mut acc = [0.0f64; 4];
    let mut acc_n = 0usize;
    let mut last_log = Instant::now();

    while state.step < stop_at {
        let step = state.step;
        let t0 = Instant::now();
        let (xs, ys) = batch_for_step(&train_set, cfg, step, learned.as_ref())?;
        let x = to_tensor(&xs, &ad);
        let y = to_tensor(&ys, &ad);
        let gan = cfg.adv != AdvKind::None && step >= cfg.gan_start;

        // generator step
        let fake = g.forward(x);
        let pix = pixel::charbonnier(fake.clone(), y.clone(), cfg.charbonnier_eps);
        let mut total = pix.clone().mul_scalar(cfg.pixel_weight);
        if cfg.hf_weight > 0.0 {
            total = total + pixel::laplacian_l1(fake.clone(), y.clone()).mul_scalar(cfg.hf_weight);
        }
        if cfg.hf_energy_weight > 0.0 {
            total = total + pixel::hf_energy_gap(fake.clone(), y.clone()).mul_scalar(cfg.hf_energy_weight);
        }
        if let Some(f) = &perceptual {
            let p = f.loss(fake.clone(), y.clone());
            if (state.step + 1) % cfg.log_every == 0 {
                tracing::debug!(step = state.step + 1, perceptual = p.clone().into_scalar::<f32>(), "feature loss");
            }
            total = total + p.mul_scalar(cfg.perceptual_weight);
        }
        let face_step = match face.as_mut() {
            Some(f) => {
                let (t, st) = f.g_loss(fake.clone(), y.clone(), step);
                if let Some(t) = t {
                    total = total + t;
                }
                Some(st)
            }
            None => None,
        };
        let (mut adv_v, mut fm_v) = (0.0, 0.0);
        if gan {
            let (fl, ff) = d.forward(d_input(fake.clone(), cfg.d_detail));
            let (rl, rf) = d.forward(d_input(y.clone(), cfg.d_detail));
            let rl = rl.detach();
            let rf: Vec<Tensor<4>> = rf.into_iter().map(|t| t.detach()).collect();
            let adv = match cfg.adv {
                AdvKind::Lsgan => adversarial::lsgan_g(fl),
                _ => adversarial::relativistic_g(rl, fl),
            };
            let fm = adversarial::feature_matching(&ff, &rf);
            adv_v = adv.clone().into_scalar::<f32>() as f64;
            fm_v = fm.clone().into_scalar::<f32>() as f64;
            total = total + adv.mul_scalar(cfg.adv_weight) + fm.mul_scalar(cfg.fm_weight);
        }
        let pix_v = pix.into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(total.backward(), &g);
        g = opt_g.step(cfg.lr_at(step), g, grads);

        // discriminator steps
        if let (Some(f), Some(st)) = (face.as_mut(), face_step) {
            let (p, i, a, pa) = (st.perceptual, st.identity, st.adv, st.parts_adv);
            let ds = f.d_step(y.clone(), st, step);
            append_csv(
                &out.join("face.csv"),
                "step,perceptual,identity,adv,parts_adv,d_loss,d_acc,parts_d_loss,parts_d_acc",
                &format!(
                    "{},{:.5},{:.5},{:.5},{:.5},{:.5},{:.4},{:.5},{:.4}",
                    step + 1,
                    p,
                    i,
                    a,
                    pa,
                    ds.loss,
                    ds.acc,
                    ds.parts_loss,
                    ds.parts_acc
                ),
            )?;
            if (step + 1) % cfg.log_every == 0 {
                tracing::info!(
                    step = step + 1,
                    perceptual = format!("{p:.4}"),
                    identity = format!("{i:.4}"),
                    d_acc = format!("{:.3}", ds.acc),
                    parts_d_acc = format!("{:.3}", ds.parts_acc),
                    "face prior"
                );
            }
        }
        let mut d_v = 0.0;
        if gan {
            let (rl, _) = d.forward(d_input(y, cfg.d_detail));
            let (fl, _) = d.forward(d_input(fake.detach(), cfg.d_detail));
            let ld = match cfg.adv {
                AdvKind::Lsgan => adversarial::lsgan_d(rl, fl),
                _ => adversarial::relativistic_d(rl, fl),
            };
            d_v = ld.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(ld.backward(), &d);
            d = opt_d.step(cfg.d_lr, d, grads);
        }
        ema = ema_update(ema, &g.valid(), if step < cfg.warmup_steps { 0.0 } else { cfg.ema_decay });
        state.step += 1;
        let dt = t0.elapsed().as_secs_f64();
        acc[0] += pix_v;
        acc[1] += adv_v;
        acc[2] += fm_v;
        acc[3] += d_v;
        acc_n += 1;
        state.elapsed_s = base_elapsed + chunk_start.elapsed().as_secs_f64();
        pb.set_position(state.step as u64);
        pb.set_message(format!("pix {:.4} {:.2}s/step", pix_v, dt));

        if state.step % cfg.log_every == 0 || state.step == stop_at {
            let n = acc_n.max(1) as f64;
            let sps = last_log.elapsed().as_secs_f64() / n;
            append_csv(
                &out.join("losses.csv"),
                "step,epoch,lr,pixel,adv,fm,d,s_per_step,elapsed_s",
                &format!(
                    "{},{:.4},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1}",
                    state.step,
                    state.step as f64 / steps_per_epoch,
                    cfg.lr_at(step),
                    acc[0] / n,
                    acc[1] / n,
                    acc[2] / n,
                    acc[3] / n,
                    sps,
                    state.elapsed_s
                ),
            )?;
            tracing::debug!(step = state.step, pixel = acc[0] / n, adv = acc[1] / n, d = acc[3] / n, s_per_step = sps);
            acc = [0.0; 4];
            acc_n = 0;
            last_log = Instant::now();
        }
        let done =
            state.step == stop_at || opts.max_minutes.is_some_and(|m| chunk_start.elapsed().as_secs_f64() > m * 60.0);
        if state.step % cfg.val_every == 0 || state.step == cfg.steps {
            let (ms, bs, outs) = validate(&ema, &val_pairs, val_size, &device)?;
            if let Some(id) = &identity {
                let (ins, truths): (Vec<Img>, Vec<Img>) = val_pairs.iter().cloned().unzip();
                let s = id.scores(&outs, &ins, &truths)?;
                tracing::info!(
                    step = state.step,
                    out = format!("{:.4}", s.out_dist),
                    input = format!("{:.4}", s.in_dist),
                    closer = format!("{:.2}", s.closer),
                    "validation identity (descriptor distance to the truth)"
                );
                append_csv(
                    &out.join("val_identity.csv"),
                    "step,out_dist,in_dist,closer,n",
                    &format!("{},{:.5},{:.5},{:.4},{}", state.step, s.out_dist, s.in_dist, s.closer, s.n),
                )?;
            }
            state.best_val_psnr = state.best_val_psnr.max(ms.psnr);
            tracing::info!(
                step = state.step,
                psnr = format!("{:.3}", ms.psnr),
                ssim = format!("{:.4}", ms.ssim),
                hf = format!("{:.3}", ms.hf),
                base_psnr = format!("{:.3}", bs.psnr),
                base_ssim = format!("{:.4}", bs.ssim),
                "validation (EMA generator, {} crops)",
                ms.n
            );
            append_csv(
                &out.join("val.csv"),
                "step,epoch,psnr,ssim,baseline_psnr,baseline_ssim,n,elapsed_s,hf",
                &format!(
                    "{},{:.4},{:.4},{:.5},{:.4},{:.5},{},{:.1},{:.4}",
                    state.step,
                    state.step as f64 / steps_per_epoch,
                    ms.psnr,
                    ms.ssim,
                    bs.psnr,
                    bs.ssim,
                    ms.n,
                    state.elapsed_s,
                    ms.hf
                ),
            )?;
            if let Err(e) = crate::train::plot::plot_run(out) {
                tracing::warn!("plot: {e:#}");
            }
        }
        if state.step % cfg.checkpoint_every == 0 || done {
            ck.save((&g, &d, &ema), &opt_g, &opt_d, &state).context("saving checkpoint")?;
            if let Some(f) = &face {
                f.save(&ck.dir).context("saving the face discriminators")?;
            }
        }
        if done {
            break;
        }
    }
    pb.finish();
    if let Err(e) = crate::train::plot::plot_run(out) {
        tracing::warn!("plot: {e:#}");
    }
    Ok(state)
}

/// What the discriminator sees: the batch, and with `detail` its high-pass part beside it.
fn d_input(x: Tensor<4>, detail: bool) -> Tensor<4> {
    if detail {
        Tensor::cat(vec![x.clone(), crate::losses::frequency::high_pass(x, 1.0)], 1)
    } else {
        x
    }
}

/// The EMA generator of a run's checkpoint, on a plain device.
pub fn load_ema(cfg: &TrainConfig, device: &Device) -> Result<Generator> {
    load_generator(cfg, device, false)
}

/// The EMA generator of a run's checkpoint or, with `raw`, the generator itself (a GAN's
/// texture may live in the raw weights and be averaged away in the EMA's).
pub fn load_generator(cfg: &TrainConfig, device: &Device, raw: bool) -> Result<Generator> {
    let p = cfg.out_dir.join("checkpoint").join(if raw { "g.bpk" } else { "ema.bpk" });
    anyhow::ensure!(p.is_file(), "no checkpoint at {}", p.display());
    Ok(cfg.generator.init(device).load_file(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::degrade::{degrade_restore, DegradeConfig};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn smooth(n: usize, k: usize) -> Img {
        crate::image::test_pattern(n, k, 0.4)
    }

    #[test]
    fn loss_goes_down_on_a_fixed_batch() {
        let device = Device::flex();
        device.seed(5);
        let ad = device.clone().autodiff();
        let gen_cfg = GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 });
        let mut g = gen_cfg.init(&ad);
        let mut d = PatchDiscriminator::new(8, &ad);
        let dcfg = DegradeConfig {
            blur_prob: 1.0,
            blur_sigma: [1.5, 1.5],
            gauss_noise_prob: 1.0,
            noise_sigma: [8.0, 8.0],
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pairs: Vec<(Img, Img)> =
            (0..4).map(|k| degrade_restore(&smooth(32, k), &dcfg, &mut rng).unwrap()).collect();
        let xs: Vec<Img> = pairs.iter().map(|p| p.0.clone()).collect();
        let ys: Vec<Img> = pairs.iter().map(|p| p.1.clone()).collect();
        let mut opt = AdamConfig::new().init();
        let mut opt_d = AdamConfig::new().init();
        let mut losses = Vec::new();
        for step in 0..60 {
            let fake = g.forward(to_tensor(&xs, &ad));
            let y = to_tensor(&ys, &ad);
            let pix = pixel::charbonnier(fake.clone(), y.clone(), 1e-3);
            losses.push(pix.clone().into_scalar::<f32>() as f64);
            let mut total = pix;
            if step % 5 == 4 {
                // exercise the adversarial path: relativistic + feature matching, then a D step
                let (fl, ff) = d.forward(fake.clone());
                let (rl, rf) = d.forward(y.clone());
                let rf: Vec<Tensor<4>> = rf.into_iter().map(|t| t.detach()).collect();
                total = total
                    + adversarial::relativistic_g(rl.detach(), fl).mul_scalar(1e-3)
                    + adversarial::feature_matching(&ff, &rf).mul_scalar(1e-3);
                let (rl, _) = d.forward(y);
                let (fl, _) = d.forward(fake.clone().detach());
                let ld = adversarial::lsgan_d(rl, fl);
                assert!(ld.clone().into_scalar::<f32>().is_finite());
                let gd = GradientsParams::from_grads(ld.backward(), &d);
                d = opt_d.step(1e-3, d, gd);
            }
            let gg = GradientsParams::from_grads(total.backward(), &g);
            g = opt.step(3e-3, g, gg);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(last < 0.8 * first, "loss {first} -> {last}: {losses:?}");
        // EMA with decay 0 copies; with decay 1 keeps
        let v = g.valid();
        let e = ema_update(gen_cfg.init(&device), &v, 0.0);
        let x = to_tensor(&xs, &device);
        let diff = (e.forward(x.clone()) - v.forward(x)).abs().max().into_scalar::<f32>() as f64;
        assert!(diff < 1e-6);
    }
}
