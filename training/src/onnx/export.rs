//! ONNX export with burn-onnx: any single-input module with input `input`, output `output`
//! and a dynamic batch axis `batch`, and the edits every exported graph gets (its inputs and
//! outputs named, pixel shuffles fused into `DepthToSpace`).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use onnx_ir::{Message, ModelProto};

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
    let bytes = fuse_pixel_shuffles(&rename_io(onnx.as_bytes(), &["input"], &["output"])?)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Replaces each exported `nets::blocks::pixel_shuffle` (per sub-pixel offset: Gather on the
/// channel axis -> nearest Resize -> Mul by the row mask -> Mul by the column mask, the r x r
/// parts summed by Adds) with one ONNX `DepthToSpace` (CRD mode, PyTorch's channel order),
/// and drops the constants only those nodes used. Same numbers; at 512 px the masked form
/// costs ONNX Runtime several full-resolution passes per shuffle. A shuffle that does not
/// have exactly that shape is left as it is.
pub fn fuse_pixel_shuffles(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::collections::{BTreeMap, HashSet};
    let mut model = ModelProto::parse_from_bytes(bytes)?;
    let graph = model.graph.mut_or_insert_default();
    let consumers = |nodes: &[onnx_ir::NodeProto], name: &str| -> Vec<usize> {
        nodes.iter().enumerate().filter(|(_, n)| n.input.iter().any(|i| i == name)).map(|(k, _)| k).collect()
    };
    let int_attr = |n: &onnx_ir::NodeProto, a: &str| n.attribute.iter().find(|x| x.name == a).map(|x| x.i);
    // Gathers on axis 1 grouped by their data input
    // in a fixed order, so the fused nodes are named alike from run to run
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (k, n) in graph.node.iter().enumerate() {
        if n.op_type == "Gather" && int_attr(n, "axis") == Some(1) {
            groups.entry(n.input[0].clone()).or_default().push(k);
        }
    }
    let mut remove: HashSet<usize> = HashSet::new();
    let mut added = Vec::new();
    let mut fused = 0;
    'group: for (x, gathers) in groups {
        let r = (gathers.len() as f64).sqrt().round() as i64;
        if r < 2 || (r * r) as usize != gathers.len() {
            continue;
        }
        // each gather -> Resize -> Mul -> Mul -> part; the parts meet in an Add chain
        let mut parts = Vec::new();
        let mut chain = Vec::new();
        for &g in &gathers {
            let mut cur = g;
            let mut path = vec![g];
            for op in ["Resize", "Mul", "Mul"] {
                let c = consumers(&graph.node, &graph.node[cur].output[0]);
                if c.len() != 1 || graph.node[c[0]].op_type != op {
                    continue 'group;
                }
                cur = c[0];
                path.push(cur);
            }
            parts.push(graph.node[cur].output[0].clone());
            chain.extend(path);
        }
        // follow the Adds from the first part: each adds one other part, once
        let mut unsummed: HashSet<String> = parts[1..].iter().cloned().collect();
        let mut out = parts[0].clone();
        let mut adds = 0;
        while adds < parts.len() - 1 {
            let c = consumers(&graph.node, &out);
            if c.len() != 1 || graph.node[c[0]].op_type != "Add" {
                continue 'group;
            }
            let add = &graph.node[c[0]];
            let other = if add.input[0] == out { &add.input[1] } else { &add.input[0] };
            if !unsummed.remove(other) {
                continue 'group;
            }
            chain.push(c[0]);
            out = add.output[0].clone();
            adds += 1;
        }
        remove.extend(chain);
        let mut node = onnx_ir::NodeProto::new();
        node.op_type = "DepthToSpace".into();
        node.name = format!("pixel_shuffle_{fused}");
        node.input = vec![x.clone()];
        node.output = vec![out];
        let mut bs = onnx_ir::AttributeProto::new();
        bs.name = "blocksize".into();
        bs.type_ = onnx_ir::AttributeType::INT.into();
        bs.i = r;
        let mut mode = onnx_ir::AttributeProto::new();
        mode.name = "mode".into();
        mode.type_ = onnx_ir::AttributeType::STRING.into();
        mode.s = b"CRD".to_vec().into();
        node.attribute = vec![bs, mode];
        added.push(node);
        fused += 1;
    }
    if fused == 0 {
        return Ok(bytes.to_vec());
    }
    // keep the topological order: each DepthToSpace goes where its last removed node was
    let mut nodes = Vec::with_capacity(graph.node.len());
    let old = std::mem::take(&mut graph.node);
    let mut pending: Vec<onnx_ir::NodeProto> = added;
    for (k, n) in old.into_iter().enumerate() {
        if remove.contains(&k) {
            // emit a DepthToSpace whose output this node produced
            if let Some(p) = pending.iter().position(|d| d.output[0] == n.output[0]) {
                nodes.push(pending.remove(p));
            }
            continue;
        }
        nodes.push(n);
    }
    anyhow::ensure!(pending.is_empty(), "a fused pixel shuffle lost its place in the graph");
    graph.node = nodes;
    let used: HashSet<String> = graph.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    graph.initializer.retain(|t| used.contains(&t.name));
    graph.value_info.retain(|v| used.contains(&v.name));
    Ok(model.write_to_bytes()?)
}

/// Names the graph's inputs and outputs, in order (the exporter calls them `tensor_N`).
pub fn rename_io(bytes: &[u8], inputs: &[&str], outputs: &[&str]) -> Result<Vec<u8>> {
    let mut model = ModelProto::parse_from_bytes(bytes)?;
    model.producer_name = "faceenhance-train (burn-onnx)".into();
    let graph = model.graph.mut_or_insert_default();
    anyhow::ensure!(
        graph.input.len() == inputs.len() && graph.output.len() == outputs.len(),
        "graph has {} inputs and {} outputs, names given for {} and {}",
        graph.input.len(),
        graph.output.len(),
        inputs.len(),
        outputs.len()
    );
    let mut map = std::collections::HashMap::new();
    for (vi, new) in graph.input.iter().zip(inputs).chain(graph.output.iter().zip(outputs)) {
        map.insert(vi.name.clone(), new.to_string());
    }
    let rename = |s: &mut String| {
        if let Some(n) = map.get(s.as_str()) {
            *s = n.clone();
        }
    };
    for node in graph.node.iter_mut() {
        node.input.iter_mut().for_each(rename);
        node.output.iter_mut().for_each(rename);
    }
    graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
        .for_each(|vi| rename(&mut vi.name));
    Ok(model.write_to_bytes()?)
}
