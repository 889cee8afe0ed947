//! ONNX export of a generator with burn-onnx: input `input`, output `output`, dynamic batch
//! axis `batch`.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use onnx_ir::{Message, ModelProto};

use crate::model::Generator;

/// Exports `gen` (a module on a plain, non-autodiff device) for `in_size` px inputs.
pub fn export_generator(gen: &Generator, in_size: usize, path: &Path) -> Result<()> {
    export_module(gen, Generator::forward, [3, in_size, in_size], path)
}

/// Exports any single-input, single-output module (on a plain device) whose input is
/// `[batch, c, h, w]`, with `input` / `output` names and a dynamic batch axis.
pub fn export_module<M: Module>(
    module: &M,
    forward: fn(&M, Tensor<4>) -> Tensor<4>,
    chw: [usize; 3],
    path: &Path,
) -> Result<()> {
    let device = Device::flex();
    let [c, h, w] = chw;
    // Two traces whose batch sizes match no static dimension of the graph (1, 2 or 3 would
    // collide with pixel-shuffle factors and channel counts and make the axis ambiguous).
    let sample = Tensor::<4>::zeros([5, c, h, w], &device);
    let validation = Tensor::<4>::zeros([7, c, h, w], &device);
    let specs = [InputSpec::new([AxisSpec::dynamic("batch"), AxisSpec::Static, AxisSpec::Static, AxisSpec::Static])];
    let onnx = OnnxExporter::new()
        .export_dynamic(module, sample, validation, &specs, forward)
        .map_err(|e| anyhow!("ONNX export: {e}"))?;
    let bytes = rename_io(onnx.as_bytes(), "input", "output")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Renames the first graph input and output (the exporter calls them `tensor_N`).
pub fn rename_io(bytes: &[u8], input: &str, output: &str) -> Result<Vec<u8>> {
    let mut model = ModelProto::parse_from_bytes(bytes)?;
    model.producer_name = "faceenhance-train (burn-onnx)".into();
    let graph = model.graph.mut_or_insert_default();
    let old_in = graph.input.first().context("graph has no input")?.name.clone();
    let old_out = graph.output.first().context("graph has no output")?.name.clone();
    let rename = |s: &mut String| {
        if *s == old_in {
            *s = input.to_string();
        } else if *s == old_out {
            *s = output.to_string();
        }
    };
    for node in graph.node.iter_mut() {
        node.input.iter_mut().for_each(rename);
        node.output.iter_mut().for_each(rename);
    }
    graph.input[0].name = input.to_string();
    graph.output[0].name = output.to_string();
    for vi in graph.value_info.iter_mut() {
        rename(&mut vi.name);
    }
    Ok(model.write_to_bytes()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GeneratorConfig, RestoreConfig, SrConfig};
    use crate::ortrt::OrtModel;
    use burn::module::Module;
    use burn::tensor::Distribution;

    fn parity(cfg: GeneratorConfig, in_size: usize, name: &str) {
        let device = Device::flex();
        device.seed(11);
        // initialise on an autodiff device, as training does, and export its `valid()` copy
        let gen = cfg.init(&device.clone().autodiff()).valid();
        let path = std::env::temp_dir().join(format!("faceenhance-train-{}-{name}.onnx", std::process::id()));
        export_generator(&gen, in_size, &path).unwrap();
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
        parity(GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 1 }), 32, "restore");
    }

    #[test]
    fn half_resolution_restore_export_matches_burn_through_ort() {
        parity(
            GeneratorConfig::Restore(RestoreConfig { channels: [8, 8, 16], blocks: 1, stem: 2 }),
            32,
            "restore-stem2",
        );
    }

    #[test]
    fn sr_export_matches_burn_through_ort() {
        parity(GeneratorConfig::Sr(SrConfig { channels: 8, blocks: 1, scale: 4 }), 8, "sr4");
    }
}
