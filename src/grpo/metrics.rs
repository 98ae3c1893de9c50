//! Run visibility: one JSON line per step in `metrics.jsonl`, one per evaluation in
//! `eval.jsonl`, and at the end a reward / accuracy curve as SVG next to the adapters.

use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::TrainError;

pub const METRICS_FILE: &str = "metrics.jsonl";
pub const EVAL_FILE: &str = "eval.jsonl";
pub const CURVE_FILE: &str = "reward_curve.svg";

/// A JSON-lines file of records that carry a `step` (`metrics.jsonl`, `eval.jsonl`).
pub struct StepLog {
    path: PathBuf,
}

impl StepLog {
    /// Opens `dir/name`. A resumed run (`keep_through_step` = its checkpoint's step) drops
    /// the records past it; a fresh run (`None`) starts the file empty, so that nothing of
    /// an earlier, failed run (not even its step-0 evaluation) stays.
    pub fn open(dir: &Path, name: &str, keep_through_step: Option<u64>) -> Result<Self, TrainError> {
        let log = StepLog { path: dir.join(name) };
        if log.path.exists() {
            let text = std::fs::read_to_string(&log.path).map_err(|e| log.io(e))?;
            let kept: Vec<&str> = text
                .lines()
                .filter(|line| keep_through_step.is_some_and(|keep| record_step(line).is_some_and(|s| s <= keep)))
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            crate::atomic::write_bytes(&log.path, text.as_bytes()).map_err(|e| log.io(e))?;
        }
        Ok(log)
    }

    pub fn append(&mut self, record: &impl Serialize) -> Result<(), TrainError> {
        let line = serde_json::to_string(record).map_err(|e| self.io(std::io::Error::other(e)))?;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| self.io(e))?;
        writeln!(file, "{line}").map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> TrainError {
        TrainError::Io { path: self.path.clone(), source }
    }

    /// Whether a record of `step` is logged.
    pub fn has_step(&self, step: u64) -> Result<bool, TrainError> {
        Ok(self.records()?.iter().any(|r| r.get("step").and_then(Value::as_u64) == Some(step)))
    }

    /// Every record so far, as JSON objects.
    pub fn records(&self) -> Result<Vec<Map<String, Value>>, TrainError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        Ok(std::fs::read_to_string(&self.path)
            .map_err(|e| self.io(e))?
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok()?.as_object().cloned())
            .collect())
    }
}

fn record_step(line: &str) -> Option<u64> {
    serde_json::from_str::<Value>(line).ok()?.get("step")?.as_u64()
}

/// A line chart of `series` (name, points of (step, value)) as a standalone SVG.
pub fn svg_chart(title: &str, series: &[(&str, Vec<(f64, f64)>)]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 360.0;
    const PAD: f64 = 48.0;
    const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| PAD + (x - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD - (y - y0) / (y1 - y0) * (H - 2.0 * PAD);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{PAD}\" y=\"20\" font-size=\"14\">{title}</text>\n\
         <line x1=\"{PAD}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"black\"/>\n\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{yb}\" stroke=\"black\"/>\n\
         <text x=\"{PAD}\" y=\"{yl}\">step {x0}</text><text x=\"{xr}\" y=\"{yl}\" text-anchor=\"end\">{x1}</text>\n\
         <text x=\"4\" y=\"{yb}\">{y0:.3}</text><text x=\"4\" y=\"{PAD}\">{y1:.3}</text>\n",
        yb = H - PAD,
        xr = W - PAD,
        yl = H - PAD + 16.0,
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>\n",
            path.join(" "),
            W - PAD - 150.0,
            PAD + 16.0 * i as f64,
        );
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_drops_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = StepLog::open(dir.path(), METRICS_FILE, None).unwrap();
        for step in 1..=4u64 {
            log.append(&serde_json::json!({"step": step, "reward": step as f64 / 10.0})).unwrap();
        }
        let log = StepLog::open(dir.path(), METRICS_FILE, Some(2)).unwrap();
        let steps: Vec<u64> = log.records().unwrap().iter().map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, vec![1, 2]);
    }

    #[test]
    fn chart_maps_points_into_the_plot_area() {
        let svg = svg_chart("reward", &[("reward", vec![(1.0, 0.0), (3.0, 1.0)])]);
        // First point at the left/bottom corner of the plot area, last at the right/top.
        assert!(svg.contains("points=\"48.0,312.0 592.0,48.0\""), "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
