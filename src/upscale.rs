//! The background of an up-scaled frame: OpenCV interpolation (bicubic, Lanczos) or an
//! ONNX super-resolution model (Real-ESRGAN-shaped) run in overlapping tiles, so that a
//! 1080p frame never has to go through the model in one piece. Faces are pasted on top
//! afterwards ([`crate::enhancer`]).

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use opencv::core::{self, Mat, Rect, Size, BORDER_REFLECT_101};
use opencv::imgproc;
use opencv::prelude::*;

use crate::frame::{self, Frame};
use crate::model::profile::ModelKind;
use crate::model::{ProviderOptions, Restorer};

/// How the whole frame is enlarged before faces are pasted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interpolation {
    #[default]
    Bicubic,
    Lanczos,
}

impl std::str::FromStr for Interpolation {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "bicubic" | "cubic" => Self::Bicubic,
            "lanczos" => Self::Lanczos,
            _ => bail!("unknown interpolation '{s}' (bicubic, lanczos)"),
        })
    }
}

impl Interpolation {
    /// The name `from_str` reads, the elements' property nick and the CLI's value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bicubic => "bicubic",
            Self::Lanczos => "lanczos",
        }
    }

    fn cv(self) -> i32 {
        match self {
            Self::Bicubic => imgproc::INTER_CUBIC,
            Self::Lanczos => imgproc::INTER_LANCZOS4,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BackgroundConfig {
    pub interpolation: Interpolation,
    /// An ONNX super-resolution model whose scale equals the up-scale factor; its
    /// profile's `input_size` is the tile side.
    pub model: Option<PathBuf>,
    pub profile: Option<PathBuf>,
    /// Context around each tile's kept core, in input pixels: at least the model's
    /// receptive radius, so cores match a whole-frame run and seams cannot show.
    pub tile_pad: i32,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self { interpolation: Interpolation::Bicubic, model: None, profile: None, tile_pad: 16 }
    }
}

/// Enlarges frames by an integer factor.
pub struct Upscaler {
    factor: i32,
    interpolation: Interpolation,
    model: Option<Restorer>,
    tile_pad: i32,
}

impl Upscaler {
    pub fn new(factor: u32, config: &BackgroundConfig, provider: &ProviderOptions) -> Result<Self> {
        ensure!((1..=16).contains(&factor), "upscale {factor} is not between 1 and 16");
        let model = match &config.model {
            None => None,
            Some(path) => {
                let r = Restorer::load(path, config.profile.as_deref(), provider)
                    .with_context(|| format!("background model {}", path.display()))?;
                let p = r.profile();
                p.ensure_kind(ModelKind::Background).with_context(|| format!("background model {}", path.display()))?;
                if p.output_size != p.input_size * factor as i32 {
                    bail!(
                        "background model {}: its scale is {} ({} -> {} px), the up-scale factor is {factor}",
                        path.display(),
                        p.scale(),
                        p.input_size,
                        p.output_size
                    );
                }
                if p.input_size <= 2 * config.tile_pad {
                    bail!(
                        "background model {}: tiles of {} px leave no core inside a {} px pad",
                        path.display(),
                        p.input_size,
                        config.tile_pad
                    );
                }
                Some(r)
            }
        };
        Ok(Self { factor: factor as i32, interpolation: config.interpolation, model, tile_pad: config.tile_pad })
    }

    pub fn factor(&self) -> i32 {
        self.factor
    }

    /// Fills `dst` (the frame `factor` times larger, same layout) from `src`.
    pub fn upscale(&mut self, src: &Frame, dst: &mut Frame) -> Result<()> {
        let (w, h) = (src.width() * self.factor, src.height() * self.factor);
        ensure!(
            dst.width() == w && dst.height() == h && dst.format() == src.format(),
            "output frame {}x{} {:?} is not the {}x up-scale of {}x{} {:?}",
            dst.width(),
            dst.height(),
            dst.format(),
            self.factor,
            src.width(),
            src.height(),
            src.format()
        );
        let mut out = dst.mat_mut()?;
        match self.model.as_mut() {
            None => {
                let flags = if self.factor == 1 { imgproc::INTER_NEAREST } else { self.interpolation.cv() };
                imgproc::resize(&src.mat()?, &mut out, Size::new(w, h), 0.0, 0.0, flags)?;
                Ok(())
            }
            Some(model) => {
                let bgr = frame::to_bgr(&src.mat()?, src.format())?;
                tiled(model, &bgr, self.factor, self.tile_pad, &mut |core, rect| {
                    let mut roi = Mat::roi_mut(&mut out, rect)?;
                    frame::write_bgr(core, &mut roi, src.format())
                })
            }
        }
    }
}

/// Runs `model` over `bgr` in tiles of the profile's input size that overlap by `pad`
/// px on every side; hands each tile's core (the part a whole-frame run would produce
/// identically) to `put` with its rectangle in the up-scaled image. Tiles of one row go
/// through the model as one batch.
pub fn tiled(
    model: &mut Restorer,
    bgr: &Mat,
    factor: i32,
    pad: i32,
    put: &mut dyn FnMut(&Mat, Rect) -> Result<()>,
) -> Result<()> {
    let tile = model.profile().input_size;
    let core = tile - 2 * pad;
    let (w, h) = (bgr.cols(), bgr.rows());
    let (cols, rows) = ((w + core - 1) / core, (h + core - 1) / core);
    // Mirror the borders so every tile, edge ones included, has real-looking context.
    let mut padded = Mat::default();
    let (right, bottom) = (cols * core - w + pad, rows * core - h + pad);
    core::copy_make_border(bgr, &mut padded, pad, bottom, pad, right, BORDER_REFLECT_101, core::Scalar::all(0.0))
        .context("mirroring the frame borders for tiling (the frame may be smaller than the tile pad)")?;
    for r in 0..rows {
        let crops = (0..cols)
            .map(|c| Ok(Mat::roi(&padded, Rect::new(c * core, r * core, tile, tile))?.try_clone()?))
            .collect::<Result<Vec<Mat>>>()?;
        let outs = model.infer(&crops)?;
        for (c, out) in outs.iter().enumerate() {
            let (x0, y0) = (c as i32 * core, r * core);
            let (cw, ch) = ((w - x0).min(core) * factor, (h - y0).min(core) * factor);
            let kept = Mat::roi(out, Rect::new(pad * factor, pad * factor, cw, ch))?;
            let mut u8s = Mat::default();
            kept.convert_to(&mut u8s, core::CV_8U, 1.0, 0.0)?;
            put(&u8s, Rect::new(x0 * factor, y0 * factor, cw, ch))?;
        }
    }
    Ok(())
}
