//! `lora-grpo doctor`: what MLX this binary runs on, and whether it computes correctly.

use crate::error::MlxError;
use crate::{mlx_info, platform};
use mlx_rs::{transforms::value_and_grad, Array, Device, DeviceType};
use std::fmt;

/// One line of the report: a fact, or a check that passed or failed.
pub struct Line {
    pub label: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

pub enum Outcome {
    Info,
    Pass,
    Fail,
}

pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.lines.iter().any(|l| matches!(l.outcome, Outcome::Fail))
    }

    fn info(&mut self, label: &'static str, detail: impl Into<String>) {
        self.lines.push(Line { label, outcome: Outcome::Info, detail: detail.into() });
    }

    fn check(&mut self, label: &'static str, result: Result<String, MlxError>) {
        let (outcome, detail) = match result {
            Ok(detail) => (Outcome::Pass, detail),
            Err(e) => (Outcome::Fail, e.to_string()),
        };
        self.lines.push(Line { label, outcome, detail });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let tag = match line.outcome {
                Outcome::Info => "    ",
                Outcome::Pass => "ok  ",
                Outcome::Fail => "FAIL",
            };
            writeln!(f, "{tag} {:<16} {}", line.label, line.detail)?;
        }
        Ok(())
    }
}

/// Gathers facts about the MLX build and runs the numeric self-checks on the default device.
pub fn run() -> Result<Report, MlxError> {
    let mut report = Report { lines: Vec::new() };
    report.info("lora-grpo", env!("CARGO_PKG_VERSION"));
    report.info("MLX", mlx_info::version().unwrap_or_else(|| "unknown".into()));
    report.info("MLX build", platform::mlx_build());
    let backends = mlx_info::gpu_backends();
    report.info(
        "GPU backends",
        if backends.is_empty() { "none (CPU only)".to_string() } else { backends.join(", ") },
    );
    report.info("CPU devices", mlx_info::device_count(DeviceType::Cpu).to_string());
    let gpus = mlx_info::device_count(DeviceType::Gpu);
    let names: Vec<String> = (0..gpus as i32)
        .map(|i| format!("gpu:{i} {}", mlx_info::device_name(DeviceType::Gpu, i).unwrap_or_default()))
        .collect();
    report.info(
        "GPU devices",
        if gpus == 0 { "0".to_string() } else { format!("{gpus} ({})", names.join("; ")) },
    );
    let default = Device::try_default().map_err(|source| MlxError::Op { op: "default device", source })?;
    report.info("default device", default.to_string());
    report.check("matmul", check_matmul());
    report.check("gradient", check_gradient());
    Ok(report)
}

fn op<T>(op: &'static str, r: Result<T, mlx_rs::error::Exception>) -> Result<T, MlxError> {
    r.map_err(|source| MlxError::Op { op, source })
}

/// [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]], exact in f32.
fn check_matmul() -> Result<String, MlxError> {
    let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
    let b = Array::from_slice(&[5.0f32, 6.0, 7.0, 8.0], &[2, 2]);
    let c = op("matmul", a.matmul(&b))?;
    op("eval", c.eval())?;
    let got = c.as_slice::<f32>().to_vec();
    let want = [19.0, 22.0, 43.0, 50.0];
    if got != want {
        return Err(MlxError::WrongResult { check: "matmul", detail: format!("got {got:?}, expected {want:?}") });
    }
    Ok("2x2 f32 product exact".into())
}

/// f(x) = sum(x^3) at x = [1, 2, 3]: value 36, gradient 3x^2 = [3, 12, 27].
fn check_gradient() -> Result<String, MlxError> {
    let cube_sum = |args: &[Array]| -> Result<Vec<Array>, mlx_rs::error::Exception> {
        let x = &args[0];
        Ok(vec![x.multiply(x)?.multiply(x)?.sum(None)?])
    };
    let x = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]);
    let (values, grads) = op("value_and_grad", value_and_grad(cube_sum)(&[x]))?;
    op("eval", values[0].eval())?;
    op("eval", grads[0].eval())?;
    let value = values[0].item_exact::<f32>();
    let grad = grads[0].as_slice::<f32>().to_vec();
    if value != 36.0 || grad != [3.0, 12.0, 27.0] {
        return Err(MlxError::WrongResult {
            check: "gradient",
            detail: format!("got value {value} grad {grad:?}, expected 36 and [3, 12, 27]"),
        });
    }
    Ok("d/dx sum(x^3) exact".into())
}
