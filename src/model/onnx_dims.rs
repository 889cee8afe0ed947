//! Turns fixed dimensions of an ONNX model's graph inputs and outputs into named (free)
//! ones, so ONNX Runtime takes inputs of any size. CenterFace as published fixes its input
//! at one size although the network is fully convolutional; this edits the few protobuf
//! fields on the path `ModelProto.graph -> input/output -> type -> tensor_type -> shape ->
//! dim` and copies every other byte as it is.

use anyhow::{bail, ensure, Result};

// Field numbers from onnx.proto3.
const MODEL_GRAPH: u64 = 7;
const GRAPH_INPUT: u64 = 11;
const GRAPH_OUTPUT: u64 = 12;
const VALUE_INFO_NAME: u64 = 1;
const VALUE_INFO_TYPE: u64 = 2;
const TYPE_TENSOR: u64 = 1;
const TENSOR_SHAPE: u64 = 2;
const SHAPE_DIM: u64 = 1;
const DIM_PARAM: u64 = 2;

const LEN: u64 = 2;

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else { bail!("truncated varint at byte {pos}") };
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("varint longer than 10 bytes at byte {pos}")
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field of a message: its number, wire type and the byte range of its payload (the
/// whole field for non-length-delimited ones is `start..end`).
struct Field {
    number: u64,
    wire: u64,
    /// The field's bytes from its key to its end.
    whole: std::ops::Range<usize>,
    /// The payload of a length-delimited field.
    payload: std::ops::Range<usize>,
}

fn fields(buf: &[u8]) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = read_varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        let payload = match wire {
            0 => {
                read_varint(buf, &mut pos)?;
                pos..pos
            }
            1 => {
                pos += 8;
                pos..pos
            }
            LEN => {
                let n = read_varint(buf, &mut pos)? as usize;
                let r = pos..pos
                    .checked_add(n)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| anyhow::anyhow!("field {number} at byte {start} claims {n} bytes past the end"))?;
                pos = r.end;
                r
            }
            5 => {
                pos += 4;
                pos..pos
            }
            w => bail!("unsupported wire type {w} at byte {start}"),
        };
        ensure!(pos <= buf.len(), "field {number} at byte {start} runs past the end");
        out.push(Field { number, wire, whole: start..pos, payload });
    }
    Ok(out)
}

/// Copies `buf`, replacing the payload of every length-delimited field numbered `number`
/// by `edit(payload)`.
fn rewrite(buf: &[u8], number: u64, edit: &mut dyn FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(buf.len() + 64);
    for f in fields(buf)? {
        if f.number == number && f.wire == LEN {
            let new = edit(&buf[f.payload.clone()])?;
            write_varint(&mut out, (number << 3) | LEN);
            write_varint(&mut out, new.len() as u64);
            out.extend_from_slice(&new);
        } else {
            out.extend_from_slice(&buf[f.whole.clone()]);
        }
    }
    Ok(out)
}

/// A `TensorShapeProto` whose dims at `axes` are named `{prefix}{axis}`.
fn free_shape(shape: &[u8], axes: &[usize], prefix: &str) -> Result<Vec<u8>> {
    let mut axis = 0usize;
    rewrite(shape, SHAPE_DIM, &mut |dim_in| {
        let i = axis;
        axis += 1;
        let mut dim = Vec::new();
        if axes.contains(&i) {
            let name = format!("{prefix}{i}");
            write_varint(&mut dim, (DIM_PARAM << 3) | LEN);
            write_varint(&mut dim, name.len() as u64);
            dim.extend_from_slice(name.as_bytes());
            Ok(dim)
        } else {
            Ok(dim_in.to_vec())
        }
    })
}

fn free_value_info(info: &[u8], axes: &[usize], prefix: &str) -> Result<Vec<u8>> {
    rewrite(info, VALUE_INFO_TYPE, &mut |ty| {
        rewrite(ty, TYPE_TENSOR, &mut |tensor| rewrite(tensor, TENSOR_SHAPE, &mut |s| free_shape(s, axes, prefix)))
    })
}

/// The model with the dims at `axes` of every graph input and output made free (inputs'
/// named `in{axis}`, outputs' `out{axis}`).
pub fn free_dims(model: &[u8], axes: &[usize]) -> Result<Vec<u8>> {
    let mut graphs = 0;
    let out = rewrite(model, MODEL_GRAPH, &mut |graph| {
        graphs += 1;
        let g = rewrite(graph, GRAPH_INPUT, &mut |i| free_value_info(i, axes, "in"))?;
        rewrite(&g, GRAPH_OUTPUT, &mut |o| free_value_info(o, axes, "out"))
    })?;
    ensure!(graphs == 1, "not an ONNX model: {graphs} graphs found");
    Ok(out)
}

/// The names of the graph's inputs and outputs, read without building a session: a cheap
/// check that a file is a whole ONNX model with the tensors a profile names (a truncated or
/// damaged file fails here: its fields run past the end).
pub fn graph_io(model: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let graphs: Vec<Field> = fields(model)?.into_iter().filter(|f| f.number == MODEL_GRAPH && f.wire == LEN).collect();
    ensure!(graphs.len() == 1, "not an ONNX model: {} graphs found", graphs.len());
    let graph = &model[graphs[0].payload.clone()];
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for f in fields(graph)? {
        let list = match (f.number, f.wire) {
            (GRAPH_INPUT, LEN) => &mut inputs,
            (GRAPH_OUTPUT, LEN) => &mut outputs,
            _ => continue,
        };
        let info = &graph[f.payload.clone()];
        let name = fields(info)?
            .into_iter()
            .find(|v| v.number == VALUE_INFO_NAME && v.wire == LEN)
            .map(|v| String::from_utf8_lossy(&info[v.payload]).to_string())
            .unwrap_or_default();
        list.push(name);
    }
    Ok((inputs, outputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
        write_varint(out, (number << 3) | LEN);
        write_varint(out, payload.len() as u64);
        out.extend_from_slice(payload);
    }

    fn dim_value(v: u64) -> Vec<u8> {
        let mut d = Vec::new();
        write_varint(&mut d, 1 << 3);
        write_varint(&mut d, v);
        d
    }

    /// A model with one input [1, 3, 32, 32], a producer name and an opset field.
    fn model() -> Vec<u8> {
        let mut shape = Vec::new();
        for v in [1, 3, 32, 32] {
            len_field(&mut shape, SHAPE_DIM, &dim_value(v));
        }
        let mut tensor = Vec::new();
        write_varint(&mut tensor, 1 << 3); // elem_type
        write_varint(&mut tensor, 1);
        len_field(&mut tensor, TENSOR_SHAPE, &shape);
        let mut ty = Vec::new();
        len_field(&mut ty, TYPE_TENSOR, &tensor);
        let mut info = Vec::new();
        len_field(&mut info, 1, b"input.1");
        len_field(&mut info, VALUE_INFO_TYPE, &ty);
        let mut graph = Vec::new();
        len_field(&mut graph, 2, b"g");
        len_field(&mut graph, GRAPH_INPUT, &info);
        let mut m = Vec::new();
        write_varint(&mut m, 1 << 3); // ir_version
        write_varint(&mut m, 7);
        len_field(&mut m, 2, b"producer");
        len_field(&mut m, MODEL_GRAPH, &graph);
        m
    }

    #[test]
    fn named_dims_replace_fixed_ones_and_the_rest_is_kept() {
        let m = model();
        let out = free_dims(&m, &[0, 2, 3]).unwrap();
        let text = String::from_utf8_lossy(&out);
        for name in ["in0", "in2", "in3", "producer", "input.1"] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(!text.contains("in1"), "the channel axis stays fixed");
        // Three dim_values (2 bytes each: key, value) became names (5 bytes: key, length, "inN").
        assert_eq!(out.len(), m.len() + 3 * 3);
        // Nothing to free: the bytes are the same.
        assert_eq!(free_dims(&m, &[]).unwrap(), m);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused_with_a_reason() {
        let m = model();
        let err = free_dims(&m[..m.len() - 3], &[2]).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
        let err = free_dims(b"\x08\x01", &[2]).unwrap_err().to_string();
        assert!(err.contains("0 graphs"), "{err}");
    }
}
