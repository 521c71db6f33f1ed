//! The benchmark table: aligned columns, ratios with two decimals, "met" or "MISSED".

use std::io::{self, Write};
use uvfio_bench::{Row, Target};

/// A duration in nanoseconds, in the largest unit that keeps it above 1.
fn human_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "-".to_string()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The cells of one row.
fn cells(row: &Row) -> Vec<String> {
    let per = row.unit.label().trim_start_matches("ns").to_string();
    let target = row.target.to_string();
    match &row.outcome {
        Ok(c) => {
            let result = match (row.target, row.met()) {
                (Target::None, _) => "info",
                (_, true) => "met",
                (_, false) => "MISSED",
            };
            vec![
                row.what.clone(),
                row.peer.clone(),
                human_ns(c.ours_ns),
                human_ns(c.peer_ns),
                per,
                format!("{:.2}x", c.ratio),
                row.ratio_def.label().to_string(),
                target,
                result.to_string(),
            ]
        }
        Err(_) => vec![
            row.what.clone(),
            row.peer.clone(),
            "-".into(),
            "-".into(),
            per,
            "-".into(),
            row.ratio_def.label().to_string(),
            target,
            "ERROR".into(),
        ],
    }
}

const HEADER: [&str; 9] = [
    "what",
    "peer or limit",
    "ours",
    "peer",
    "per",
    "ratio",
    "ratio is",
    "target",
    "result",
];
/// Columns holding numbers, aligned right.
const NUMERIC: [bool; 9] = [false, false, true, true, false, true, false, false, false];

/// Prints `rows` as a table, then each row's note and error below it.
pub fn print(out: &mut dyn Write, rows: &[Row]) -> io::Result<()> {
    let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for line in &body {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    write_line(out, &header, &widths)?;
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    write_line(out, &rule, &widths)?;
    for line in &body {
        write_line(out, line, &widths)?;
    }
    let met = rows
        .iter()
        .filter(|r| r.target != Target::None && r.met())
        .count();
    let judged = rows.iter().filter(|r| r.target != Target::None).count();
    writeln!(out, "\n{met} of {judged} targets met.")?;
    for row in rows {
        if let Some(note) = &row.note {
            writeln!(out, "note: {}: {note}", row.name)?;
        }
        if let Some(err) = row.error_chain() {
            writeln!(out, "error: {}: {err}", row.name)?;
        }
    }
    Ok(())
}

fn write_line(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = w.saturating_sub(cell.chars().count());
        if NUMERIC[i] {
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uvfio_bench::{BenchError, Comparison, RatioDef, Unit};

    fn row(name: &'static str, target: Target, ratio: f64, outcome_ok: bool) -> Row {
        let c = Comparison {
            ours_ns: 1500.0,
            peer_ns: 20.0,
            ratio,
            ratio_iqr: [ratio, ratio],
            rounds: 3,
            ours_iters: 1,
            peer_iters: 1,
        };
        Row {
            name,
            what: format!("what {name}"),
            peer: "memcpy".into(),
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target,
            note: None,
            outcome: if outcome_ok {
                Ok(c)
            } else {
                Err(BenchError::WorkerGone)
            },
        }
    }

    #[test]
    fn table_is_aligned_and_judged() {
        let rows = vec![
            row("a", Target::AtMost(2.0), 1.234, true),
            row("bb", Target::AtMost(1.2), 1.5, true),
            row("c", Target::AtLeast(10.0), 0.0, false),
        ];
        let mut out = Vec::new();
        print(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("what"));
        assert!(lines[2].contains("1.23x") && lines[2].ends_with("met"));
        assert!(lines[3].contains("1.50x") && lines[3].ends_with("MISSED"));
        assert!(lines[4].ends_with("ERROR"));
        assert!(lines[2].contains("1.50 us") && lines[2].contains("20.0 ns"));
        // The ratio column ends at the same offset on every line.
        let at = |l: &str, s: &str| l.find(s).map(|i| i + s.len());
        assert_eq!(at(lines[2], "1.23x"), at(lines[3], "1.50x"));
        assert!(text.contains("1 of 3 targets met."));
        assert!(text.contains("error: c: a worker thread stopped"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(12.34), "12.3 ns");
        assert_eq!(human_ns(1234.0), "1.23 us");
        assert_eq!(human_ns(2.5e6), "2.50 ms");
        assert_eq!(human_ns(f64::NAN), "-");
    }
}
