//! The attribute label file (CelebA's 40 attributes, +1 / -1 per file), which the
//! attribute predictor and the editor train on, and rows of labels (or asked attributes)
//! as tensors.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use burn::tensor::{Device, Tensor, TensorData};

use crate::data::cache::CropSet;

/// The label file: attribute names, and each file's labels as 1.0 / 0.0.
pub struct Labels {
    pub names: Vec<String>,
    pub by_file: HashMap<String, Vec<f32>>,
}

impl Labels {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines();
        let names: Vec<String> =
            lines.next().context("empty label file")?.split_whitespace().map(String::from).collect();
        ensure!(!names.is_empty(), "{}: no attribute names on the first line", path.display());
        let mut by_file = HashMap::new();
        for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let file = f.next().expect("non-empty line").to_string();
            let v: Vec<f32> = f
                .map(|s| match s {
                    "1" | "+1" => Ok(1.0),
                    "-1" => Ok(0.0),
                    other => bail!("line {}: label '{other}' is not +1 or -1", i + 2),
                })
                .collect::<Result<_>>()?;
            ensure!(v.len() == names.len(), "line {}: {} labels for {} attributes", i + 2, v.len(), names.len());
            by_file.insert(file, v);
        }
        Ok(Self { names, by_file })
    }

    /// The labels of each crop of `set`, in order (every crop must have them).
    pub fn for_set(&self, set: &CropSet) -> Result<Vec<Vec<f32>>> {
        set.names.iter().map(|n| self.by_file.get(n).cloned().with_context(|| format!("no labels for {n}"))).collect()
    }
}

/// One row of values per image as a `[batch, n, 1, 1]` tensor (labels, asked attributes).
pub(crate) fn labels_tensor<R: AsRef<[f32]>>(rows: &[R], device: &Device) -> Tensor<4> {
    let n = rows[0].as_ref().len();
    let data: Vec<f32> = rows.iter().flat_map(|r| r.as_ref().iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), n, 1, 1]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_by_name_and_checked() {
        let dir = std::env::temp_dir().join(format!("attr-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("l.txt");
        std::fs::write(&p, "Smiling Male\na.jpg  1 -1\nb.jpg -1  1\n").unwrap();
        let l = Labels::load(&p).unwrap();
        assert_eq!(l.names, ["Smiling", "Male"]);
        assert_eq!(l.by_file["b.jpg"], [0.0, 1.0]);
        std::fs::write(&p, "Smiling Male\na.jpg 1\n").unwrap();
        assert!(format!("{:#}", Labels::load(&p).err().unwrap()).contains("1 labels for 2 attributes"));
    }
}
