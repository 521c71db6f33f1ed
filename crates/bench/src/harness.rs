//! Timing: warm-up, calibration, interleaved rounds of ours and the peer, medians; the [`Row`] a
//! comparison becomes, and its [`Target`].
//!
//! A comparison never reports an absolute time alone. Each round times ours and then the peer (the
//! order alternates between rounds), back to back on the same machine state, so frequency changes,
//! noisy neighbours and cache state hit both sides alike. The ratio reported is the median of the
//! per-round ratios; the per-op times reported beside it are the medians of each side.

use crate::BenchError;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What the caller asks of a run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Fewer and shorter rounds: the whole run finishes in well under a minute.
    pub quick: bool,
    /// Run only the rows whose name contains this string.
    pub filter: Option<String>,
}

impl Options {
    /// The timing settings these options imply.
    pub fn settings(&self) -> Settings {
        if self.quick {
            Settings {
                rounds: 9,
                round_time: Duration::from_millis(8),
                warmup: Duration::from_millis(20),
                quick: true,
            }
        } else {
            Settings {
                rounds: 25,
                round_time: Duration::from_millis(40),
                warmup: Duration::from_millis(200),
                quick: false,
            }
        }
    }

    /// Whether the row called `name` is to run.
    pub fn selects(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// How long and how often each side is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Rounds of (ours, peer) pairs; the medians are taken over these.
    pub rounds: usize,
    /// The time one side should take in one round; the iteration count is calibrated to it.
    pub round_time: Duration,
    /// Minimum time each side runs before the first timed round.
    pub warmup: Duration,
    /// Whether this is a quick run (rows may shrink their set-up; they say so in their note).
    pub quick: bool,
}

/// One side of a comparison: a closure that runs `iters` iterations and returns the time they
/// took (as criterion's `iter_custom` does), and how many units (ops, pages) one iteration holds.
pub struct Side<'a> {
    /// Runs the given number of iterations and returns their elapsed time.
    pub run: &'a mut dyn FnMut(u64) -> Result<Duration, BenchError>,
    /// Units of work (the denominator of the reported ns/unit) in one iteration.
    pub units_per_iter: f64,
}

impl<'a> Side<'a> {
    /// A side doing `units_per_iter` units of work in each iteration of `run`.
    pub fn new(units_per_iter: f64, run: &'a mut dyn FnMut(u64) -> Result<Duration, BenchError>) -> Self {
        Side { run, units_per_iter }
    }
}

impl std::fmt::Debug for Side<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side")
            .field("units_per_iter", &self.units_per_iter)
            .finish_non_exhaustive()
    }
}

/// Which way round a row's ratio is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RatioDef {
    /// `ours_ns / peer_ns`: how many times the peer's cost ours is (lower is better).
    OursOverPeer,
    /// `peer_ns / ours_ns`: how many times faster than the peer ours is (higher is better).
    PeerOverOurs,
}

impl RatioDef {
    /// A short label: `ours/peer` or `peer/ours`.
    pub fn label(self) -> &'static str {
        match self {
            RatioDef::OursOverPeer => "ours/peer",
            RatioDef::PeerOverOurs => "peer/ours",
        }
    }

    fn of(self, ours: f64, peer: f64) -> f64 {
        match self {
            RatioDef::OursOverPeer => ours / peer,
            RatioDef::PeerOverOurs => peer / ours,
        }
    }
}

/// The unit the per-unit times of a row are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// One operation (a DMA, a translation, a walk).
    Op,
    /// One page mapped and unmapped.
    Page,
}

impl Unit {
    /// `ns/op` or `ns/page`.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Op => "ns/op",
            Unit::Page => "ns/page",
        }
    }
}

/// What a row must reach to be met.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Target {
    /// The ratio is at most this.
    AtMost(f64),
    /// The ratio is at least this.
    AtLeast(f64),
    /// Ours costs at most this many nanoseconds per page (the ratio is reported beside it).
    NsPerPageAtMost(f64),
    /// No target: the row is reported for context and counts as met.
    None,
}

impl Target {
    /// The number being compared (ratio or ns/page) and whether it meets the target.
    pub fn judge(self, c: &Comparison) -> (f64, bool) {
        match self {
            Target::AtMost(t) => (c.ratio, c.ratio <= t),
            Target::AtLeast(t) => (c.ratio, c.ratio >= t),
            Target::NsPerPageAtMost(t) => (c.ours_ns, c.ours_ns <= t),
            Target::None => (c.ratio, true),
        }
    }

    /// The target as a number, if there is one.
    pub fn value(self) -> Option<f64> {
        match self {
            Target::AtMost(t) | Target::AtLeast(t) | Target::NsPerPageAtMost(t) => Some(t),
            Target::None => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Target::AtMost(t) => write!(f, "<= {t:.2}x"),
            Target::AtLeast(t) => write!(f, ">= {t:.2}x"),
            Target::NsPerPageAtMost(t) if t >= 1000.0 => write!(f, "<= {} us/page", t / 1000.0),
            Target::NsPerPageAtMost(t) => write!(f, "<= {t} ns/page"),
            Target::None => f.write_str("(none)"),
        }
    }
}

/// The outcome of timing ours against a peer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Median nanoseconds per unit of ours.
    pub ours_ns: f64,
    /// Median nanoseconds per unit of the peer.
    pub peer_ns: f64,
    /// Median of the per-round ratios, taken as the row's [`RatioDef`] says.
    pub ratio: f64,
    /// First and third quartile of the per-round ratios.
    pub ratio_iqr: [f64; 2],
    /// Rounds timed.
    pub rounds: usize,
    /// Iterations of ours in each round.
    pub ours_iters: u64,
    /// Iterations of the peer in each round.
    pub peer_iters: u64,
}

/// Runs `side` for at least `warmup`, and returns the iteration count that takes about
/// `round_time`.
fn calibrate(side: &mut Side<'_>, s: &Settings) -> Result<u64, BenchError> {
    let started = Instant::now();
    let mut iters: u64 = 1;
    loop {
        let took = (side.run)(iters)?;
        let enough = took >= s.round_time / 4;
        if enough && started.elapsed() >= s.warmup {
            let per_iter = took.as_secs_f64() / iters as f64;
            let fit = (s.round_time.as_secs_f64() / per_iter.max(1e-12)).floor();
            return Ok((fit as u64).max(1));
        }
        if !enough {
            iters = iters.saturating_mul(if took < s.round_time / 64 { 8 } else { 2 });
        }
    }
}

/// The `q`-quantile (0..=1) of sorted `v`, by linear interpolation.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Times `ours` against `peer` in interleaved rounds, after warming both up.
pub fn compare(
    s: &Settings,
    mut ours: Side<'_>,
    mut peer: Side<'_>,
    def: RatioDef,
) -> Result<Comparison, BenchError> {
    let ours_iters = calibrate(&mut ours, s)?;
    let peer_iters = calibrate(&mut peer, s)?;
    let per_unit = |took: Duration, iters: u64, units: f64| took.as_nanos() as f64 / (iters as f64 * units);
    let mut ours_ns = Vec::with_capacity(s.rounds);
    let mut peer_ns = Vec::with_capacity(s.rounds);
    let mut ratios = Vec::with_capacity(s.rounds);
    for round in 0..s.rounds {
        let (o, p) = if round % 2 == 0 {
            let o = (ours.run)(ours_iters)?;
            (o, (peer.run)(peer_iters)?)
        } else {
            let p = (peer.run)(peer_iters)?;
            ((ours.run)(ours_iters)?, p)
        };
        let o = per_unit(o, ours_iters, ours.units_per_iter);
        let p = per_unit(p, peer_iters, peer.units_per_iter);
        ours_ns.push(o);
        peer_ns.push(p);
        ratios.push(def.of(o, p));
    }
    let ratios = sorted(ratios);
    Ok(Comparison {
        ours_ns: quantile(&sorted(ours_ns), 0.5),
        peer_ns: quantile(&sorted(peer_ns), 0.5),
        ratio: quantile(&ratios, 0.5),
        ratio_iqr: [quantile(&ratios, 0.25), quantile(&ratios, 0.75)],
        rounds: s.rounds,
        ours_iters,
        peer_iters,
    })
}

/// Times `iters` runs of `op`, which must consume its own results (e.g. with `black_box`).
pub fn time_iters<E>(iters: u64, mut op: impl FnMut() -> Result<(), E>) -> Result<Duration, E> {
    let start = Instant::now();
    for _ in 0..iters {
        op()?;
    }
    Ok(start.elapsed())
}

/// What a row's measurement produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The timing.
    pub comparison: Comparison,
    /// How the run deviated from the nominal set-up, if it did.
    pub note: Option<String>,
}

impl From<Comparison> for Measured {
    /// A measurement that ran as nominally set up (no note).
    fn from(comparison: Comparison) -> Self {
        Measured {
            comparison,
            note: None,
        }
    }
}

/// A row before it runs: its description and the function that measures it.
#[derive(Debug, Clone, Copy)]
pub struct RowSpec {
    /// Stable machine-readable name.
    pub name: &'static str,
    /// What ours does.
    pub what: &'static str,
    /// The peer or limit.
    pub peer: &'static str,
    /// Which way round the ratio is taken.
    pub ratio_def: RatioDef,
    /// The unit of the per-unit times.
    pub unit: Unit,
    /// What must be reached.
    pub target: Target,
    /// Sets up both sides and compares them.
    pub measure: fn(&Settings) -> Result<Measured, BenchError>,
}

impl RowSpec {
    /// Runs the measurement and makes the row.
    pub fn run(&self, s: &Settings) -> Row {
        let (outcome, note) = match (self.measure)(s) {
            Ok(m) => (Ok(m.comparison), m.note),
            Err(e) => (Err(e), None),
        };
        Row {
            name: self.name,
            what: self.what.to_string(),
            peer: self.peer.to_string(),
            ratio_def: self.ratio_def,
            unit: self.unit,
            target: self.target,
            note,
            outcome,
        }
    }
}

/// One line of the report: what was measured, against what, and how it came out.
#[derive(Debug)]
pub struct Row {
    /// Stable machine-readable name, e.g. `dma_rw_64b_iotlb_hit`.
    pub name: &'static str,
    /// What ours does, for people.
    pub what: String,
    /// The peer or limit in the same run, for people.
    pub peer: String,
    /// Which way round the ratio is taken.
    pub ratio_def: RatioDef,
    /// The unit of the per-unit times.
    pub unit: Unit,
    /// What must be reached.
    pub target: Target,
    /// A remark on how this run deviates from the nominal setup, if it does.
    pub note: Option<String>,
    /// The measurement, or why there is none.
    pub outcome: Result<Comparison, BenchError>,
}

/// The JSON form of a [`Row`]: one object per line.
#[derive(Debug, Serialize)]
struct RowJson<'a> {
    name: &'a str,
    what: &'a str,
    peer: &'a str,
    ratio: Option<f64>,
    ratio_def: RatioDef,
    target: Option<f64>,
    target_kind: Target,
    measured: Option<f64>,
    met: bool,
    ours_ns: Option<f64>,
    peer_ns: Option<f64>,
    unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_iqr: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rounds: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Row {
    /// Whether the row met its target; a row that failed to run did not.
    pub fn met(&self) -> bool {
        self.outcome.as_ref().is_ok_and(|c| self.target.judge(c).1)
    }

    /// The error and its sources, joined with `: `, if the row failed to run.
    pub fn error_chain(&self) -> Option<String> {
        let err = self.outcome.as_ref().err()?;
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Some(text)
    }

    /// The row as one line of JSON with the keys `name`, `ratio`, `target`, `met`, `ours_ns`,
    /// `peer_ns`, `unit` and more.
    pub fn to_json(&self) -> Result<String, BenchError> {
        let c = self.outcome.as_ref().ok();
        let json = RowJson {
            name: self.name,
            what: &self.what,
            peer: &self.peer,
            ratio: c.map(|c| c.ratio),
            ratio_def: self.ratio_def,
            target: self.target.value(),
            target_kind: self.target,
            measured: c.map(|c| self.target.judge(c).0),
            met: self.met(),
            ours_ns: c.map(|c| c.ours_ns),
            peer_ns: c.map(|c| c.peer_ns),
            unit: self.unit.label(),
            ratio_iqr: c.map(|c| c.ratio_iqr),
            rounds: c.map(|c| c.rounds),
            note: self.note.as_deref(),
            error: self.error_chain(),
        };
        serde_json::to_string(&json).map_err(BenchError::Json)
    }
}

/// A small deterministic generator (xorshift64*), so ours and the peer see the same access sequence
/// in every run.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`; the slight modulo bias does not matter here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A permutation of `0..n` (Fisher–Yates).
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n as u64).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = sorted(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
    }

    fn comparison(ours_ns: f64, ratio: f64) -> Comparison {
        Comparison {
            ours_ns,
            peer_ns: 1.0,
            ratio,
            ratio_iqr: [ratio, ratio],
            rounds: 1,
            ours_iters: 1,
            peer_iters: 1,
        }
    }

    #[test]
    fn targets_judge_the_right_number() {
        assert!(Target::AtMost(2.0).judge(&comparison(100.0, 2.0)).1);
        assert!(!Target::AtMost(2.0).judge(&comparison(1.0, 2.01)).1);
        assert!(Target::AtLeast(10.0).judge(&comparison(1.0, 10.0)).1);
        assert!(!Target::AtLeast(10.0).judge(&comparison(1.0, 9.9)).1);
        assert_eq!(
            Target::NsPerPageAtMost(70.0).judge(&comparison(69.0, 50.0)),
            (69.0, true)
        );
        assert!(!Target::NsPerPageAtMost(70.0).judge(&comparison(71.0, 0.1)).1);
        assert!(Target::None.judge(&comparison(1.0, 1.0)).1);
    }

    #[test]
    fn compare_counts_units_and_rounds() {
        // Fake clocks: ours takes 3 ns per iteration, the peer 1 ns; ours has 2 units per iteration.
        let s = Settings {
            rounds: 5,
            round_time: Duration::from_micros(10),
            warmup: Duration::ZERO,
            quick: true,
        };
        let mut ours = |n: u64| Ok(Duration::from_nanos(3 * n));
        let mut peer = |n: u64| Ok(Duration::from_nanos(n));
        let c = compare(
            &s,
            Side::new(2.0, &mut ours),
            Side::new(1.0, &mut peer),
            RatioDef::OursOverPeer,
        )
        .unwrap();
        assert_eq!(c.rounds, 5);
        assert!((c.ours_ns - 1.5).abs() < 1e-9);
        assert!((c.peer_ns - 1.0).abs() < 1e-9);
        assert!((c.ratio - 1.5).abs() < 1e-9);
        assert_eq!(c.peer_iters, 10_000);
    }

    #[test]
    fn errors_stop_a_comparison() {
        let s = Settings {
            rounds: 3,
            round_time: Duration::from_micros(1),
            warmup: Duration::ZERO,
            quick: true,
        };
        let mut ours = |_n: u64| Err(BenchError::WorkerGone);
        let mut peer = |n: u64| Ok(Duration::from_nanos(n));
        let r = compare(
            &s,
            Side::new(1.0, &mut ours),
            Side::new(1.0, &mut peer),
            RatioDef::PeerOverOurs,
        );
        assert!(matches!(r, Err(BenchError::WorkerGone)));
    }

    #[test]
    fn json_has_the_keys() {
        let row = Row {
            name: "x",
            what: "w".into(),
            peer: "p".into(),
            ratio_def: RatioDef::OursOverPeer,
            unit: Unit::Op,
            target: Target::AtMost(2.0),
            note: None,
            outcome: Ok(comparison(3.0, 1.5)),
        };
        let v: serde_json::Value = serde_json::from_str(&row.to_json().unwrap()).unwrap();
        assert_eq!(v["name"], "x");
        assert_eq!(v["ratio"], 1.5);
        assert_eq!(v["target"], 2.0);
        assert_eq!(v["met"], true);
        assert_eq!(v["ours_ns"], 3.0);
        assert_eq!(v["unit"], "ns/op");
        assert_eq!(v["target_kind"]["kind"], "at_most");
        let failed = Row {
            outcome: Err(BenchError::WorkerGone),
            ..row
        };
        let v: serde_json::Value = serde_json::from_str(&failed.to_json().unwrap()).unwrap();
        assert_eq!(v["met"], false);
        assert!(v["ratio"].is_null());
        assert!(v["error"].is_string());
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = XorShift::new(7).permutation(1000);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<u64>>());
    }
}
