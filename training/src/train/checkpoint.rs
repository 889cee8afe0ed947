//! The GAN loops' checkpoint folder: generator, discriminator, EMA generator and both
//! optimizers (`g.bpk`, `d.bpk`, `ema.bpk`, `opt_g.bpk`, `opt_d.bpk`) and the run state
//! (`state.json`); resuming reads them back.

use std::path::PathBuf;

use anyhow::Result;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) struct Ckpt {
    pub dir: PathBuf,
}

/// Generator, discriminator, EMA generator and their two optimizers: what a checkpoint holds
/// besides the run state.
pub(crate) type Nets<G, D> = (G, D, G, ModuleOptimizer, ModuleOptimizer);

impl Ckpt {
    pub fn p(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
    pub fn exists(&self) -> bool {
        self.p("state.json").is_file()
    }

    /// With `resume`, the nets and run state from the checkpoint; without, the fresh nets
    /// and a default state, unless a checkpoint is there (never train over one silently).
    pub fn resume<G: Module, D: Module, S: DeserializeOwned + Default>(
        &self,
        resume: bool,
        fresh: Nets<G, D>,
    ) -> Result<(Nets<G, D>, S)> {
        if !self.exists() {
            return Ok((fresh, S::default()));
        }
        if !resume {
            anyhow::bail!("{} has a checkpoint: pass --resume or remove it", self.dir.display());
        }
        let (g, d, ema, opt_g, opt_d) = fresh;
        let state = serde_json::from_str(&std::fs::read_to_string(self.p("state.json"))?)?;
        // A checkpoint kept small for git may leave out the optimizer states: Adam then
        // starts afresh (its moments rebuild within a few hundred steps).
        let opt = |opt: ModuleOptimizer, f: &str| -> Result<ModuleOptimizer> {
            if !self.p(f).is_file() {
                tracing::warn!("{} has no {f}: the optimizer starts afresh", self.dir.display());
                return Ok(opt);
            }
            opt.load(self.p(f)).map_err(|e| anyhow::anyhow!("{f}: {e:?}"))
        };
        let nets = (
            g.load_file(self.p("g.bpk")),
            d.load_file(self.p("d.bpk")),
            ema.load_file(self.p("ema.bpk")),
            opt(opt_g, "opt_g.bpk")?,
            opt(opt_d, "opt_d.bpk")?,
        );
        Ok((nets, state))
    }

    /// Writes the nets and the run state.
    pub fn save<G: Module, D: Module, S: Serialize>(
        &self,
        (g, d, ema): (&G, &D, &G),
        opt_g: &ModuleOptimizer,
        opt_d: &ModuleOptimizer,
        state: &S,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let e = |e: burn::store::RecordError| anyhow::anyhow!("{e:?}");
        g.clone().save_file(self.p("g.bpk")).map_err(e)?;
        d.clone().save_file(self.p("d.bpk")).map_err(e)?;
        ema.clone().save_file(self.p("ema.bpk")).map_err(e)?;
        opt_g.save(self.p("opt_g.bpk")).map_err(e)?;
        opt_d.save(self.p("opt_d.bpk")).map_err(e)?;
        std::fs::write(self.p("state.json"), serde_json::to_string_pretty(state)?)?;
        Ok(())
    }
}
