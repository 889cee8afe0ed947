//! The generator a run trains and exports: which one (`GeneratorConfig`, the `[generator]`
//! section of a config, tagged by `kind`) and the built net behind one `forward`.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nets::aga::{AgaConfig, AgaNet};
use crate::nets::restore::{RestoreConfig, RestoreNet};
use crate::nets::sr::{SrConfig, SrNet};
use crate::onnx::export::export_module;

/// Which generator a run trains.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GeneratorConfig {
    Restore(RestoreConfig),
    Sr(SrConfig),
    /// Attribute-guided hallucination (`nets::aga::AgaNet`).
    Aga(AgaConfig),
}

impl GeneratorConfig {
    /// (input size, output size) for a given output size.
    pub fn scale(&self) -> usize {
        match self {
            GeneratorConfig::Restore(c) => c.upscale,
            GeneratorConfig::Sr(c) => c.scale,
            GeneratorConfig::Aga(c) => c.scale,
        }
    }
    pub fn init(&self, device: &Device) -> Generator {
        match self {
            GeneratorConfig::Restore(c) => Generator::Restore(RestoreNet::new(c, device)),
            GeneratorConfig::Sr(c) => Generator::Sr(SrNet::new(c, device)),
            GeneratorConfig::Aga(c) => Generator::Aga(AgaNet::new(c, device)),
        }
    }

    /// A fresh generator as training starts it: `init`, plus the trained parts it builds on
    /// (the attribute-guided generator's frozen predictor).
    pub fn init_fresh(&self, device: &Device) -> anyhow::Result<Generator> {
        Ok(match (self, self.init(device)) {
            (GeneratorConfig::Aga(c), Generator::Aga(m)) => Generator::Aga(m.with_predictor(&c.predictor, device)?),
            (_, g) => g,
        })
    }
}

// Modules are built once per run; the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Restore(RestoreNet),
    Sr(SrNet),
    Aga(AgaNet),
}

impl Generator {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Generator::Restore(m) => m.forward(x),
            Generator::Sr(m) => m.forward(x),
            Generator::Aga(m) => m.forward(x),
        }
    }
}

/// Exports `gen` (a module on a plain, non-autodiff device) for `in_size` px inputs.
pub fn export_generator(gen: &Generator, in_size: usize, path: &Path) -> anyhow::Result<()> {
    export_module(gen, Generator::forward, [3, in_size, in_size], path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::patch_d::PatchDiscriminator;
    use crate::onnx::runtime::OrtModel;
    use burn::tensor::Distribution;
    use onnx_ir::{Message, ModelProto};

    #[test]
    fn shapes() {
        let device = Device::flex();
        let g = RestoreNet::new(&RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 }, &device);
        assert_eq!(g.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 3, 32, 32]);
        // fully convolutional: one set of weights at any multiple of 16 px
        let g2 = RestoreNet::new(&RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2, upscale: 1 }, &device);
        assert_eq!(g2.forward(Tensor::zeros([1, 3, 48, 48], &device)).dims(), [1, 3, 48, 48]);
        assert_eq!(g2.forward(Tensor::zeros([2, 3, 96, 96], &device)).dims(), [2, 3, 96, 96]);
        let s = SrNet::new(&SrConfig { channels: 8, blocks: 1, scale: 4 }, &device);
        assert_eq!(s.forward(Tensor::zeros([2, 3, 8, 8], &device)).dims(), [2, 3, 32, 32]);
        let s8 = SrNet::new(&SrConfig { channels: 8, blocks: 1, scale: 8 }, &device);
        assert_eq!(s8.forward(Tensor::zeros([1, 3, 4, 4], &device)).dims(), [1, 3, 32, 32]);
        let d = PatchDiscriminator::new(8, &device);
        let (o, f) = d.forward(Tensor::zeros([2, 3, 64, 64], &device));
        assert_eq!(o.dims(), [2, 1, 16, 16]);
        assert_eq!(f.len(), 4);
        let d16 = PatchDiscriminator::with_downs(8, 1, 3, &device);
        assert_eq!(d16.forward(Tensor::zeros([2, 3, 16, 16], &device)).0.dims(), [2, 1, 8, 8]);
        let dl = PatchDiscriminator::local(8, 6, &device);
        assert_eq!(dl.forward(Tensor::zeros([2, 6, 16, 16], &device)).0.dims(), [2, 1, 16, 16]);
    }

    /// Op types of an ONNX file and how often each occurs.
    fn ops(path: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
        let m = ModelProto::parse_from_bytes(&std::fs::read(path).unwrap()).unwrap();
        let mut count = std::collections::BTreeMap::new();
        for n in &m.graph.node {
            *count.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        count
    }

    fn parity(cfg: GeneratorConfig, in_size: usize, name: &str, shuffles: usize) {
        let device = Device::flex();
        device.seed(11);
        // initialise on an autodiff device, as training does, and export its `valid()` copy
        let gen = cfg.init(&device.clone().autodiff()).valid();
        let path = std::env::temp_dir().join(format!("faceenhance-train-{}-{name}.onnx", std::process::id()));
        export_generator(&gen, in_size, &path).unwrap();
        // every pixel shuffle became one DepthToSpace; none of its masked parts is left
        let count = ops(&path);
        assert_eq!(count.get("DepthToSpace").copied().unwrap_or(0), shuffles, "{name}: {count:?}");
        assert!(!count.contains_key("Gather"), "{name}: {count:?}");
        let mut ort = OrtModel::load(&path, 1).unwrap();
        assert_eq!(ort.input_name(), "input");
        assert_eq!(ort.output_name(), "output");
        for batch in [1usize, 4] {
            let x = Tensor::<4>::random([batch, 3, in_size, in_size], Distribution::Uniform(0.0, 1.0), &device);
            let data = x.clone().into_data().try_to_vec::<f32>().unwrap();
            let ours = gen.forward(x);
            let dims = ours.dims();
            let ours = ours.into_data().try_to_vec::<f32>().unwrap();
            let (shape, theirs) = ort.run_raw([batch, 3, in_size, in_size], data).unwrap();
            assert_eq!(shape, dims.to_vec());
            let max = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("{name} batch {batch}: max abs diff burn vs ort {max:e}");
            assert!(max <= 1e-4, "{name} batch {batch}: max abs diff {max}");
        }
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn restore_export_matches_burn_through_ort() {
        parity(
            GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1, upscale: 1 }),
            32,
            "restore",
            2,
        );
    }

    #[test]
    fn half_resolution_restore_export_matches_burn_through_ort() {
        parity(
            GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2, upscale: 1 }),
            32,
            "restore-stem2",
            3,
        );
    }

    #[test]
    fn up_scaling_restore_export_matches_burn_through_ort() {
        // the in-graph bilinear enlargement (ONNX Resize) must match burn's
        parity(
            GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2, upscale: 2 }),
            16,
            "restore-up2",
            3,
        );
    }

    #[test]
    fn sr_export_matches_burn_through_ort() {
        parity(GeneratorConfig::Sr(SrConfig { channels: 8, blocks: 1, scale: 4 }), 8, "sr4", 2);
    }

    #[test]
    fn attribute_guided_export_matches_burn_through_ort() {
        let cfg = AgaConfig {
            channels: vec![8, 8, 8, 8],
            attr_channels: 4,
            blocks: 1,
            refine: RestoreConfig { channels: [8, 8, 8], blocks: 1, stem: 1, upscale: 1 },
            predictor_channels: [8, 8, 8, 8],
            ..Default::default()
        };
        // three guided up-sampling stages and the refining U-Net's two
        parity(GeneratorConfig::Aga(cfg), 8, "aga8", 5);
    }
}
