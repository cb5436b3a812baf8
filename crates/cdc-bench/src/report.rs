//! Markdown for docs/performance.md: number formatting, tables, the target check, and the
//! criterion results read back from criterion's JSON files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second, rounded.
pub(crate) fn per_sec(count: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return "n/a".into();
    }
    thousands((count as f64 / secs).round() as u64)
}

/// Megabytes (10^6 bytes) per second.
pub(crate) fn mb_per_sec(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return "n/a".into();
    }
    format!("{:.1}", bytes as f64 / 1e6 / secs)
}

/// Seconds with two decimals, `1.23 s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Milliseconds, `12.3 ms`.
pub(crate) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A peak RSS in KiB as decimal megabytes, `123.4 MB`.
pub(crate) fn rss(kb: Option<u64>) -> String {
    kb.map_or_else(|| "n/a".into(), |kb| format!("{:.1} MB", rss_mb(kb)))
}

/// KiB (as /proc reports them) to decimal megabytes.
pub(crate) fn rss_mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

/// `ours / theirs` as a time ratio: `1.28x` (above 1: ours took longer).
pub(crate) fn ratio(ours: Duration, theirs: Duration) -> String {
    let t = theirs.as_secs_f64();
    if t <= 0.0 {
        return "n/a".into();
    }
    let r = ours.as_secs_f64() / t;
    // Small ratios (ours much faster) keep two significant digits.
    if r < 0.1 {
        format!("{r:.3}x")
    } else {
        format!("{r:.2}x")
    }
}

/// The median of some durations (the middle run of an odd count).
pub(crate) fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

/// A markdown table.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// One of the issue's targets: what, the goal, what was measured, met or not (`None`:
/// not measured in this run).
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) goal: String,
    pub(crate) measured: String,
    pub(crate) met: Option<bool>,
}

pub(crate) fn targets_table(targets: &[Target]) -> String {
    let mut t = Table::new(&["target", "goal", "measured", "verdict"]);
    for target in targets {
        t.row(vec![
            target.what.clone(),
            target.goal.clone(),
            target.measured.clone(),
            match target.met {
                Some(true) => "met".into(),
                Some(false) => "**missed**".into(),
                None => "not measured".into(),
            },
        ]);
    }
    t.render()
}

/// One criterion benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MicroResult {
    /// `group/function`, without a trailing `/rows` or `/bytes`.
    pub(crate) id: String,
    pub(crate) group: String,
    /// Median time of one iteration, in nanoseconds.
    pub(crate) median_ns: f64,
    pub(crate) elements_per_sec: Option<f64>,
    pub(crate) bytes_per_sec: Option<f64>,
}

fn find_benchmarks(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                if path.join("benchmark.json").is_file() {
                    out.push(path);
                }
            } else {
                find_benchmarks(&path, out);
            }
        }
    }
}

/// Reads every benchmark's latest result under a criterion output directory
/// (`target/criterion`, or `$CRITERION_HOME`), merging the `/rows` and `/bytes` runs of
/// one case into one result.
pub(crate) fn read_criterion(dir: &Path) -> Result<Vec<MicroResult>, String> {
    let mut dirs = Vec::new();
    find_benchmarks(dir, &mut dirs);
    if dirs.is_empty() {
        return Err(format!(
            "no criterion results under {} (run `cargo bench -p cdc-bench` first)",
            dir.display()
        ));
    }
    let mut merged: BTreeMap<String, MicroResult> = BTreeMap::new();
    for d in dirs {
        let read = |name: &str| -> Result<serde_json::Value, String> {
            let path = d.join(name);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        };
        let bench = read("benchmark.json")?;
        let estimates = read("estimates.json")?;
        let full_id = bench["full_id"].as_str().unwrap_or_default().to_string();
        let group = bench["group_id"].as_str().unwrap_or_default().to_string();
        let Some(median_ns) = estimates["median"]["point_estimate"].as_f64() else {
            return Err(format!("{}: no median estimate", d.display()));
        };
        let per_sec = |n: f64| n / (median_ns / 1e9);
        let elements = bench["throughput"]["Elements"].as_f64().map(per_sec);
        let bytes = bench["throughput"]["Bytes"].as_f64().map(per_sec);
        let id = full_id
            .strip_suffix("/rows")
            .or_else(|| full_id.strip_suffix("/bytes"))
            .unwrap_or(&full_id)
            .to_string();
        let entry = merged.entry(id.clone()).or_insert(MicroResult {
            id,
            group,
            median_ns,
            elements_per_sec: None,
            bytes_per_sec: None,
        });
        if elements.is_some() {
            entry.elements_per_sec = elements;
            entry.median_ns = median_ns;
        }
        if bytes.is_some() {
            entry.bytes_per_sec = bytes;
        }
    }
    Ok(merged.into_values().collect())
}

/// The micro benchmark results as one markdown table per criterion group.
pub(crate) fn micro_tables(results: &[MicroResult]) -> String {
    let mut groups: BTreeMap<&str, Vec<&MicroResult>> = BTreeMap::new();
    for r in results {
        groups.entry(r.group.as_str()).or_default().push(r);
    }
    let mut out = String::new();
    for (group, results) in groups {
        let _ = writeln!(out, "`{group}`:\n");
        let mut t = Table::new(&["benchmark", "rows/s", "MB/s", "time per iteration"]);
        for r in results {
            t.row(vec![
                r.id.strip_prefix(&format!("{group}/"))
                    .unwrap_or(&r.id)
                    .to_string(),
                r.elements_per_sec
                    .map_or_else(|| "n/a".into(), |v| thousands(v.round() as u64)),
                r.bytes_per_sec
                    .map_or_else(|| "n/a".into(), |v| format!("{:.1}", v / 1e6)),
                format!("{:.1} µs", r.median_ns / 1000.0),
            ]);
        }
        out.push_str(&t.render());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(per_sec(1000, Duration::from_millis(500)), "2,000");
        assert_eq!(
            ratio(Duration::from_secs(3), Duration::from_secs(2)),
            "1.50x"
        );
        assert_eq!(
            ratio(Duration::from_millis(15), Duration::from_secs(1)),
            "0.015x"
        );
        assert_eq!(
            median(vec![
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(2)
            ]),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn criterion_results_merge_rows_and_bytes() {
        let dir = tempfile_dir();
        let write = |sub: &str, bench: &str, median: f64| {
            let d = dir.join(sub).join("new");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("benchmark.json"), bench).unwrap();
            std::fs::write(
                d.join("estimates.json"),
                format!("{{\"median\": {{\"point_estimate\": {median}}}}}"),
            )
            .unwrap();
        };
        write(
            "stream_load/doris_reference_rows",
            r#"{"group_id":"stream_load","full_id":"stream_load/doris_reference/rows","throughput":{"Elements":1000}}"#,
            1e6,
        );
        write(
            "stream_load/doris_reference_bytes",
            r#"{"group_id":"stream_load","full_id":"stream_load/doris_reference/bytes","throughput":{"Bytes":2000000}}"#,
            1e6,
        );
        let results = read_criterion(&dir).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].id, "stream_load/doris_reference");
        assert_eq!(results[0].elements_per_sec, Some(1e6));
        assert_eq!(results[0].bytes_per_sec, Some(2e9));
        let table = micro_tables(&results);
        assert!(table.contains("| doris_reference | 1,000,000 | 2000.0 | 1000.0 µs |"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cdc-bench-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
