//! MLX works for real through mlx-rs on this machine: ops, gradients, safetensors files
//! and seeded randomness, each checked against values computed independently.
//! Run single-threaded (MLX is not thread-safe): `cargo test -- --test-threads=1`.

use mlx_rs::{random, transforms::value_and_grad, Array, Dtype};
use std::collections::HashMap;

fn values(a: &Array) -> Vec<f32> {
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}

#[test]
fn matmul_and_broadcast_add_match_hand_computed_values() {
    // [[1,2,3],[4,5,6]] @ [[1,0],[0,1],[1,1]] = [[4,5],[10,11]]; + [10,20] per row.
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]);
    let bias = Array::from_slice(&[10.0f32, 20.0], &[2]);
    let y = a.matmul(&b).unwrap().add(&bias).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(values(&y), vec![14.0, 25.0, 20.0, 31.0]);
}

#[test]
fn value_and_grad_of_squared_error_matches_hand_derivation() {
    // L(w) = sum((x @ w - y)^2), dL/dw = 2 x^T (x w - y).
    // x = [[1,2],[3,4]], w = [1,-1], y = [0,1]: r = x w - y = [-1,-2], L = 5,
    // dL/dw = 2 [[1,3],[2,4]] [-1,-2] = 2 [-7,-10] = [-14,-20].
    let loss = |args: &[Array]| -> Result<Vec<Array>, mlx_rs::error::Exception> {
        let (w, x, y) = (&args[0], &args[1], &args[2]);
        let r = x.matmul(w)?.subtract(y)?;
        Ok(vec![r.multiply(&r)?.sum(None)?])
    };
    let w = Array::from_slice(&[1.0f32, -1.0], &[2]);
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    let y = Array::from_slice(&[0.0f32, 1.0], &[2]);
    let (value, grads) = value_and_grad(loss)(&[w, x, y]).unwrap();
    assert_eq!(values(&value[0]), vec![5.0]);
    assert_eq!(grads.len(), 1, "gradient only with respect to argument 0");
    assert_eq!(values(&grads[0]), vec![-14.0, -20.0]);
}

/// Parses a safetensors header by hand: 8-byte little-endian length, then JSON.
fn header(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + len]).unwrap()
}

#[test]
fn safetensors_round_trip_keeps_names_shapes_dtypes_and_bits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let f32s = Array::from_slice(&[0.5f32, -1.25, 3.0, 1e-7, -0.0, 65504.0], &[2, 3]);
    let halves = Array::from_slice(&[1.5f32, -2.25], &[2]);
    let arrays: HashMap<String, Array> = [
        ("model.w".to_string(), f32s.clone()),
        ("model.h".to_string(), halves.as_dtype(Dtype::Float16).unwrap()),
        ("model.b".to_string(), halves.as_dtype(Dtype::Bfloat16).unwrap()),
        ("model.q".to_string(), Array::from_slice(&[7u32, 0xdead_beef], &[2])),
    ]
    .into_iter()
    .collect();
    let metadata: HashMap<String, String> = [("format".to_string(), "mlx".to_string())].into();
    Array::save_safetensors(&arrays, &metadata, &path).unwrap();

    // The file itself, read without MLX: dtypes, shapes, metadata and raw half bits.
    let h = header(&path);
    assert_eq!(h["model.w"]["dtype"], "F32");
    assert_eq!(h["model.w"]["shape"], serde_json::json!([2, 3]));
    assert_eq!(h["model.h"]["dtype"], "F16");
    assert_eq!(h["model.b"]["dtype"], "BF16");
    assert_eq!(h["model.q"]["dtype"], "U32");
    assert_eq!(h["__metadata__"]["format"], "mlx");
    let bytes = std::fs::read(&path).unwrap();
    let data = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let bits = |key: &str| -> Vec<u16> {
        let off = h[key]["data_offsets"][0].as_u64().unwrap() as usize + data;
        (0..2).map(|i| u16::from_le_bytes([bytes[off + 2 * i], bytes[off + 2 * i + 1]])).collect()
    };
    // 1.5 and -2.25 by hand: f16 0x3E00 0xC080, bf16 0x3FC0 0xC010.
    assert_eq!(bits("model.h"), vec![0x3E00, 0xC080]);
    assert_eq!(bits("model.b"), vec![0x3FC0, 0xC010]);

    // And back through MLX.
    let loaded = Array::load_safetensors(&path).unwrap();
    assert_eq!(loaded.len(), 4);
    assert_eq!(loaded["model.w"].dtype(), Dtype::Float32);
    assert_eq!(loaded["model.w"].shape(), &[2, 3]);
    assert_eq!(values(&loaded["model.w"]), values(&f32s));
    assert_eq!(loaded["model.h"].dtype(), Dtype::Float16);
    assert_eq!(values(&loaded["model.h"].as_dtype(Dtype::Float32).unwrap()), vec![1.5, -2.25]);
    assert_eq!(loaded["model.b"].dtype(), Dtype::Bfloat16);
    assert_eq!(values(&loaded["model.b"].as_dtype(Dtype::Float32).unwrap()), vec![1.5, -2.25]);
    loaded["model.q"].eval().unwrap();
    assert_eq!(loaded["model.q"].as_slice::<u32>(), &[7, 0xdead_beef]);
}

#[test]
fn seeded_random_is_reproducible_and_matches_python_mlx() {
    // Goldens from tests/fixtures/mlx_basics_golden.py (Python MLX 0.32.2).
    let key = random::key(42).unwrap();
    let u1 = random::uniform::<_, f32>(0.0f32, 1.0f32, &[4], &key).unwrap();
    let u2 = random::uniform::<_, f32>(0.0f32, 1.0f32, &[4], &key).unwrap();
    assert_eq!(values(&u1), values(&u2), "same key, same numbers");
    let want = [0.5741444230079651f32, 0.8566375374794006, 0.05946118012070656, 0.06235560029745102];
    for (got, want) in values(&u1).iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "uniform: got {got}, want {want}");
    }
    let n = random::normal::<f32>(&[3], None, None, &random::key(7).unwrap()).unwrap();
    let want = [-0.7554662227630615f32, -0.1861579269170761, -0.1165473535656929];
    for (got, want) in values(&n).iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "normal: got {got}, want {want}");
    }
    let other = random::uniform::<_, f32>(0.0f32, 1.0f32, &[4], &random::key(43).unwrap()).unwrap();
    assert_ne!(values(&other), values(&u1), "a different seed gives different numbers");
}
