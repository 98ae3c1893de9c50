//! Strict reading of a model directory's safetensors files.
//!
//! MLX loads safetensors lazily: opening a file reads only its header, and a tensor's
//! bytes are read when it is first evaluated. Layers take their tensors out of a
//! [`WeightSource`] by key; each take checks shape and dtype and removes the key, so the
//! source never keeps a second reference to weights the model already owns, and keys left
//! over at the end are reported as unexpected.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mlx_rs::{Array, Dtype};
use serde_json::Value;

use crate::error::ModelError;

/// What a tensor must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// A floating-point tensor (f32, f16 or bf16), converted to the compute dtype.
    Float,
    /// Packed quantized weights (uint32), kept as they are.
    Packed,
}

/// The tensors of a model directory, not yet claimed by a layer.
pub struct WeightSource {
    /// Key -> (lazy array, index into `files`).
    tensors: HashMap<String, (Array, usize)>,
    files: Vec<PathBuf>,
    /// The file that names the weights: the index for sharded checkpoints.
    origin: PathBuf,
    /// Float tensors are converted to this dtype when taken (`None`: keep the file's).
    float_dtype: Option<Dtype>,
}

impl WeightSource {
    /// Opens `model.safetensors.index.json` and its shards, else `model.safetensors`,
    /// else every `model*.safetensors` file in `dir`.
    pub fn open(dir: &Path, float_dtype: Option<Dtype>) -> Result<Self, ModelError> {
        let index = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let (files, origin, weight_map) = if index.exists() {
            let (files, map) = read_index(&index)?;
            (
                files.into_iter().map(|f| dir.join(f)).collect(),
                index.clone(),
                Some(map),
            )
        } else if single.exists() {
            (vec![single.clone()], single, None)
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|source| ModelError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with("model") && name.ends_with(".safetensors")
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(ModelError::NoWeights {
                    dir: dir.to_path_buf(),
                });
            }
            (files, dir.to_path_buf(), None)
        };

        let mut tensors: HashMap<String, (Array, usize)> = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            if !file.exists() {
                return Err(ModelError::Io {
                    path: file.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "shard listed in the index is missing",
                    ),
                });
            }
            let arrays = Array::load_safetensors(file).map_err(|e| ModelError::Safetensors {
                path: file.clone(),
                message: e.to_string(),
            })?;
            for (key, array) in arrays {
                if let Some((_, j)) = tensors.get(&key) {
                    return Err(ModelError::DuplicateTensor {
                        key,
                        first: files[*j].clone(),
                        second: file.clone(),
                    });
                }
                tensors.insert(key, (array, i));
            }
        }
        if let Some(map) = weight_map {
            check_index(&origin, &map, &tensors, &files)?;
        }
        Ok(Self {
            tensors,
            files,
            origin,
            float_dtype,
        })
    }

    /// Whether the checkpoint has `key` (still unclaimed).
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Removes `key` without using it (redundant tensors that mlx-lm also drops).
    pub fn discard(&mut self, key: &str) {
        self.tensors.remove(key);
    }

    /// Takes `key`, checking its shape and dtype; float tensors come back in the compute
    /// dtype.
    pub fn take(
        &mut self,
        key: &str,
        shape: &[i32],
        kind: TensorKind,
        detail: &str,
    ) -> Result<Array, ModelError> {
        let Some((array, file)) = self.tensors.remove(key) else {
            return Err(ModelError::MissingTensor {
                key: key.to_string(),
                file: self.origin.clone(),
                others: String::new(),
            });
        };
        let file = &self.files[file];
        if array.shape() != shape {
            return Err(ModelError::ShapeMismatch {
                key: key.to_string(),
                file: file.clone(),
                found: array.shape().to_vec(),
                expected: shape.to_vec(),
                detail: detail.to_string(),
            });
        }
        let dtype = array.dtype();
        match kind {
            TensorKind::Float => {
                if !matches!(dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16) {
                    return Err(ModelError::DtypeMismatch {
                        key: key.to_string(),
                        file: file.clone(),
                        found: dtype,
                        expected: "float32, float16 or bfloat16",
                    });
                }
                match self.float_dtype {
                    Some(target) if target != dtype => Ok(array.as_dtype(target)?),
                    _ => Ok(array),
                }
            }
            TensorKind::Packed => {
                if dtype != Dtype::Uint32 {
                    return Err(ModelError::DtypeMismatch {
                        key: key.to_string(),
                        file: file.clone(),
                        found: dtype,
                        expected: "uint32 (packed quantized weights)",
                    });
                }
                Ok(array)
            }
        }
    }

    /// Ends loading: any key no layer claimed is an error.
    pub fn finish(self) -> Result<(), ModelError> {
        let mut left: Vec<(&String, usize)> =
            self.tensors.iter().map(|(k, (_, f))| (k, *f)).collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some((key, file)) => Err(ModelError::UnexpectedTensor {
                key: key.to_string(),
                file: self.files[*file].clone(),
                others: more(left.len()),
            }),
        }
    }
}

fn more(count: usize) -> String {
    if count > 1 {
        format!(" (and {} more)", count - 1)
    } else {
        String::new()
    }
}

/// The shard files (in first-use order) and key -> shard map of an index file.
fn read_index(path: &Path) -> Result<(Vec<String>, BTreeMap<String, String>), ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |problem: &str| ModelError::Config {
        path: path.to_path_buf(),
        key: "weight_map".into(),
        problem: problem.into(),
    };
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("is missing or not an object"))?;
    let mut weight_map = BTreeMap::new();
    let mut files: Vec<String> = Vec::new();
    for (key, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad("values must be file names"))?;
        if file.contains('/') || file.contains('\\') {
            return Err(bad("file names must not contain path separators"));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
        weight_map.insert(key.clone(), file.to_string());
    }
    Ok((files, weight_map))
}

/// Every key of the index must sit in the shard the index names.
fn check_index(
    index: &Path,
    map: &BTreeMap<String, String>,
    tensors: &HashMap<String, (Array, usize)>,
    files: &[PathBuf],
) -> Result<(), ModelError> {
    for (key, shard) in map {
        match tensors.get(key) {
            None => {
                return Err(ModelError::MissingTensor {
                    key: key.clone(),
                    file: index.parent().unwrap_or(index).join(shard),
                    others: " (the index lists it there)".into(),
                })
            }
            Some((_, i))
                if files[*i].file_name().and_then(|n| n.to_str()) != Some(shard.as_str()) =>
            {
                return Err(ModelError::IndexMismatch {
                    index: index.to_path_buf(),
                    key: key.clone(),
                    expected: shard.clone(),
                    found: files[*i].clone(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}
