//! The numbers kept per store and the final side-by-side table. Every ratio is oriented so that
//! ≥ 1.0 means HSDB is at least as good: hsdb/etcd for throughput, etcd/hsdb for the rest.
use std::time::Duration;

pub struct Outcome {
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub retries: u64,
    pub disk_mib: f64,
    pub rss_mib: f64,
    /// Kill → first acknowledged write, one per round, sorted.
    pub failovers_ms: Vec<f64>,
}

/// Nearest-rank percentile of sorted microsecond latencies, in ms.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

enum Better {
    Higher,
    Lower,
    /// Shown for context, no ratio.
    Neither,
}

fn ratio(hsdb: f64, etcd: f64, better: Better) -> String {
    let (num, den) = match better {
        Better::Higher => (hsdb, etcd),
        Better::Lower => (etcd, hsdb),
        Better::Neither => return "-".into(),
    };
    if den > 0.0 && num.is_finite() && den.is_finite() { format!("{:.2}", num / den) } else { "-".into() }
}

pub fn print_table(hsdb: &Outcome, etcd: &Outcome) {
    let mut rows = vec![
        ("write throughput (ops/s)", hsdb.throughput, etcd.throughput, 0, Better::Higher),
        ("write latency p50 (ms)", hsdb.p50_ms, etcd.p50_ms, 2, Better::Lower),
        ("write latency p99 (ms)", hsdb.p99_ms, etcd.p99_ms, 2, Better::Lower),
        ("write retries during load", hsdb.retries as f64, etcd.retries as f64, 0, Better::Neither),
        ("disk after load, 3 nodes (MiB)", hsdb.disk_mib, etcd.disk_mib, 1, Better::Lower),
        ("RSS after load, 3 nodes (MiB)", hsdb.rss_mib, etcd.rss_mib, 1, Better::Lower),
    ];
    if !hsdb.failovers_ms.is_empty() {
        let (h, e) = (&hsdb.failovers_ms, &etcd.failovers_ms);
        rows.push(("leader failover median (ms)", median(h), median(e), 0, Better::Lower));
        rows.push(("leader failover min (ms)", h[0], e[0], 0, Better::Lower));
        rows.push(("leader failover max (ms)", h[h.len() - 1], e[e.len() - 1], 0, Better::Lower));
    }
    println!("\n{:<32} {:>12} {:>12} {:>7}", "metric", "HSDB", "etcd", "ratio");
    println!("{}", "-".repeat(66));
    for (name, h, e, decimals, better) in rows {
        println!("{name:<32} {h:>12.decimals$} {e:>12.decimals$} {:>7}", ratio(h, e, better));
    }
    println!("ratio >= 1.00: HSDB at least as good (throughput hsdb/etcd, the others etcd/hsdb)");
    println!("disk: blocks allocated to the data dirs, as du counts them; RSS: sum of VmRSS; medians of failovers");
}
