//! Figures and checks of a bench run, printed as text or one JSON object.
//!
//! Latencies go through HdrHistogram (µs, 3 significant digits) and are shown
//! in ms as p50/p90/p99/p99.9/max. Checks are counted, never asserted here:
//! the caller turns a failed check into a non-zero exit code.

use super::load::Outcome;
use super::subscribe::Deliveries;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// Percentiles of one latency, in µs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lat {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Lat {
    pub fn from_hist(h: &Histogram<u64>) -> Lat {
        Lat {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }

    fn json(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "count": self.count,
            "p50_ms": ms(self.p50), "p90_ms": ms(self.p90), "p99_ms": ms(self.p99),
            "p99_9_ms": ms(self.p999), "max_ms": ms(self.max),
        })
    }

    fn row(&self, name: &str) -> String {
        let ms = |us: u64| format!("{:>9.3}", us as f64 / 1000.0);
        format!(
            "  {name:<22}{}{}{}{}{}  (n={})\n",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.count
        )
    }
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// send→ack latency of every acknowledged message.
pub fn ack_latency(o: &Outcome) -> Lat {
    let mut h = new_hist();
    for (s, a) in o.sent_us.iter().zip(&o.ack_us) {
        if *a != 0 && *s != 0 {
            h.saturating_record(u64::from(a.saturating_sub(*s)).max(1));
        }
    }
    Lat::from_hist(&h)
}

/// send→delivered-on-every-node latency (the last of `nodes` to deliver), and
/// how many acknowledged messages some node never delivered.
pub fn delivered_all_latency(o: &Outcome, nodes: &[&Deliveries]) -> (Lat, u64) {
    let mut h = new_hist();
    let mut missing = 0;
    for g in 0..o.sent_us.len() {
        if o.sent_us[g] == 0 {
            continue;
        }
        let last = nodes.iter().map(|d| d.at_us[g]).try_fold(0u32, |m, t| {
            if t == 0 {
                None
            } else {
                Some(m.max(t))
            }
        });
        match last {
            Some(t) if !nodes.is_empty() => {
                h.saturating_record(u64::from(t.saturating_sub(o.sent_us[g])).max(1))
            }
            _ if o.ack_us[g] != 0 => missing += 1,
            _ => {}
        }
    }
    (Lat::from_hist(&h), missing)
}

/// Safety checks over what clients and subscribers saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks {
    /// A msg_id acknowledged twice with different seq_nos.
    pub ack_seq_conflicts: u64,
    /// A msg_id delivered twice by one node.
    pub delivered_twice: u64,
    /// A node's stream whose seq_no did not increase.
    pub out_of_order: u64,
    /// A message delivered at different seq_nos by different nodes, or at a
    /// seq_no other than the one acknowledged.
    pub seq_disagreements: u64,
    /// Acknowledged messages missing from a node's delivered stream.
    pub not_delivered: u64,
    /// Issued messages never acknowledged (timeout).
    pub unacked: u64,
}

impl Checks {
    pub fn compute(o: &Outcome, nodes: &[&Deliveries], not_delivered: u64) -> Checks {
        let mut c = Checks {
            ack_seq_conflicts: o.seq_conflicts,
            not_delivered,
            unacked: o.issued - o.acked,
            ..Checks::default()
        };
        for d in nodes {
            c.delivered_twice += d.duplicates;
            c.out_of_order += d.out_of_order;
        }
        for g in 0..o.sent_us.len() {
            let mut seen = if o.ack_us[g] != 0 { o.ack_seq[g] } else { 0 };
            for d in nodes {
                if d.at_us[g] == 0 {
                    continue;
                }
                if seen == 0 {
                    seen = d.seq_no[g];
                } else if d.seq_no[g] != seen {
                    c.seq_disagreements += 1;
                    break;
                }
            }
        }
        c
    }

    pub fn ok(&self) -> bool {
        self.ack_seq_conflicts == 0
            && self.delivered_twice == 0
            && self.out_of_order == 0
            && self.seq_disagreements == 0
            && self.not_delivered == 0
            && self.unacked == 0
    }

    fn json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "ack_seq_conflicts": self.ack_seq_conflicts,
            "delivered_twice": self.delivered_twice,
            "out_of_order": self.out_of_order,
            "seq_disagreements": self.seq_disagreements,
            "acked_not_delivered": self.not_delivered,
            "unacked": self.unacked,
        })
    }

    fn text(&self) -> String {
        format!(
            "checks: {}  (unacked {}, acked-not-delivered {}, delivered twice {}, out of order {}, seq disagreements {}, ack seq conflicts {})\n",
            if self.ok() { "ok" } else { "FAILED" },
            self.unacked,
            self.not_delivered,
            self.delivered_twice,
            self.out_of_order,
            self.seq_disagreements,
            self.ack_seq_conflicts
        )
    }
}

/// CPU and memory of one node over the measured phase.
#[derive(Clone, Debug, Default)]
pub struct NodeUsage {
    pub id: u64,
    pub pid: Option<u32>,
    pub role: String,
    pub cpu_s: Option<f64>,
    pub peak_rss_kib: Option<u64>,
}

/// A finished report: text, JSON and the overall verdict.
#[derive(Debug, Default)]
pub struct Report {
    text: String,
    json: Map<String, Value>,
    ok: bool,
}

impl Report {
    pub fn new(mode: &str, header: String, config: Value) -> Report {
        let mut r = Report {
            ok: true,
            ..Report::default()
        };
        r.text.push_str(&header);
        r.text.push('\n');
        r.json.insert("mode".into(), json!(mode));
        r.json.insert("config".into(), config);
        r
    }

    pub fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    pub fn set(&mut self, key: &str, v: Value) {
        self.json.insert(key.into(), v);
    }

    /// A number set earlier (None if absent or not a number).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.json.get(key).and_then(Value::as_f64)
    }

    pub fn fail(&mut self, why: &str) {
        self.ok = false;
        let _ = writeln!(self.text, "FAILED: {why}");
        let fails = self
            .json
            .entry("failures")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = fails {
            a.push(json!(why));
        }
    }

    pub fn throughput(&mut self, acked: u64, issued: u64, seconds: f64) {
        let rate = if seconds > 0.0 {
            acked as f64 / seconds
        } else {
            0.0
        };
        let _ = writeln!(
            self.text,
            "committed: {acked} of {issued} msgs in {seconds:.2} s = {rate:.0} msgs/s"
        );
        self.set("issued", json!(issued));
        self.set("acked", json!(acked));
        self.set("seconds", json!((seconds * 1000.0).round() / 1000.0));
        self.set("msgs_per_s", json!(rate.round()));
    }

    pub fn latencies(&mut self, ack: &Lat, delivered_all: Option<&Lat>) {
        self.text.push_str(&format!(
            "latency (ms)            {:>9}{:>9}{:>9}{:>9}{:>9}\n",
            "p50", "p90", "p99", "p99.9", "max"
        ));
        self.text.push_str(&ack.row("send→ack"));
        let mut lat = Map::new();
        lat.insert("send_to_ack".into(), ack.json());
        if let Some(d) = delivered_all {
            self.text.push_str(&d.row("send→delivered(all)"));
            lat.insert("send_to_delivered_all".into(), d.json());
        }
        self.set("latency", Value::Object(lat));
    }

    pub fn client_counters(&mut self, o: &Outcome) {
        let _ = writeln!(
            self.text,
            "client: resent {}, reconnects {}, error lines {}, duplicate acks {}{}",
            o.resent,
            o.reconnects,
            o.errors,
            o.dup_acks,
            if o.timed_out { ", TIMED OUT" } else { "" }
        );
        self.set(
            "client",
            json!({"resent": o.resent, "reconnects": o.reconnects, "error_lines": o.errors,
                   "duplicate_acks": o.dup_acks, "timed_out": o.timed_out}),
        );
    }

    pub fn checks(&mut self, c: &Checks) {
        self.text.push_str(&c.text());
        self.set("checks", c.json());
        if !c.ok() {
            self.ok = false;
        }
    }

    pub fn nodes(&mut self, nodes: &[NodeUsage], seconds: f64) {
        if nodes.is_empty() {
            return;
        }
        self.text
            .push_str("node  pid      role       cpu_s  cpu_cores  peak_rss_mib\n");
        let mut arr = Vec::new();
        for n in nodes {
            let cores = n.cpu_s.map(|c| c / seconds.max(1e-9));
            let _ = writeln!(
                self.text,
                "n{:<4}{:<9}{:<10}{:>6}{:>11}{:>14}",
                n.id,
                n.pid.map_or("-".into(), |p| p.to_string()),
                n.role,
                n.cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
                cores.map_or("-".into(), |c| format!("{c:.2}")),
                n.peak_rss_kib
                    .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            );
            arr.push(json!({
                "id": n.id, "pid": n.pid, "role": n.role, "cpu_s": n.cpu_s,
                "cpu_cores": cores,
                "peak_rss_mib": n.peak_rss_kib.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0),
            }));
        }
        self.set("nodes", Value::Array(arr));
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    pub fn to_text(&self) -> String {
        let mut t = self.text.clone();
        if !self.ok {
            t.push_str("result: FAILED\n");
        }
        t
    }

    pub fn to_json(&self) -> String {
        let mut j = self.json.clone();
        j.insert("ok".into(), json!(self.ok));
        Value::Object(j).to_string()
    }
}
