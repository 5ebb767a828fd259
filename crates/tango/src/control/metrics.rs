//! `/metrics`: every series tango exports, read at scrape time (nothing is registered
//! per request): per backend and pool, the data plane's counters and the state the
//! control tasks keep (health, ejection, slow start, panic mode) from the snapshot in
//! force; the TLS listeners' failed handshakes and when the certificates they serve
//! expire; the configuration's generation and the reloads' outcomes (`ReloadStats`);
//! and the watch's last tick (shares, skew, active alerts). Encoded by
//! prometheus-client in whichever format the scraper asks for: OpenMetrics, or the
//! Prometheus text format (0.0.4) that older scrapers, `curl` and `promtool check
//! metrics` read. The names are an interface: the recording rules and the Grafana
//! dashboard in `deploy/` query them, and the e2e tests check those queries against them.
//!
//! The backends' and pools' series are `backends.rs`'s; the formats, and which one a
//! scraper gets, `exposition.rs`'s.

mod backends;
mod exposition;

pub(crate) use exposition::{render, Exposition};

use crate::control::reload::ReloadStats;
use crate::control::watch::state::WatchState;
use crate::runtime::{Runtime, Snapshot};
use backends::BackendRows;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tango_core::detector::AlertKind;

struct TangoCollector {
    rt: Arc<Runtime>,
    reloads: Arc<ReloadStats>,
    watch: Arc<WatchState>,
}

type Labels = Vec<(&'static str, Value)>;

/// A label value, escaped as both exposition formats spell it (`\\`, `\"`, `\n`) when
/// it is written: prometheus-client writes a `String` as given, and a name from the
/// configuration may hold any character (a quote or a newline written raw would make
/// the whole scrape unreadable, every series lost with it). Every label goes through
/// this type, so no series can forget it.
#[derive(Debug, Clone)]
struct Value(String);

impl EncodeLabelValue for Value {
    fn encode(&self, enc: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        let mut rest = self.0.as_str();
        while let Some(at) = rest.find(['\\', '"', '\n']) {
            enc.write_str(&rest[..at])?;
            enc.write_str(match rest.as_bytes()[at] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[at + 1..];
        }
        enc.write_str(rest)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value(v.clone())
    }
}

fn gauge_family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter_family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter without labels.
fn single_counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: u64,
) -> std::fmt::Result {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// A gauge without labels. Whole numbers print as integers.
fn single_gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: f64,
) -> std::fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if v.fract() == 0.0 && v.abs() < 9e15 {
        ConstGauge::new(v as i64).encode(m)
    } else {
        ConstGauge::new(v).encode(m)
    }
}

impl std::fmt::Debug for TangoCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TangoCollector")
    }
}

impl Collector for TangoCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let snap = self.rt.current();
        BackendRows::read(&snap, self.rt.now_ms()).encode(&mut enc)?;
        self.encode_config(&snap, &mut enc)?;
        encode_tls(&self.rt, &snap, &mut enc)?;
        self.encode_watch(&mut enc)
    }
}

/// Failed TLS handshakes of each TLS listener in force, 0 until its first; when each
/// certificate served expires.
fn encode_tls(rt: &Runtime, snap: &Snapshot, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
    let rows: Vec<(Labels, u64)> = snap
        .config
        .listeners
        .iter()
        .filter(|l| l.tls.is_some())
        .map(|l| {
            (
                vec![("listener", (&l.name).into())],
                rt.tls_failures.get(&l.name),
            )
        })
        .collect();
    counter_family(
        enc,
        "tango_tls_handshake_failures",
        "TLS handshakes a listener's clients failed: not TLS, no protocol or cipher in common, or the client refused the certificate. Clients that close or stay silent before finishing are not counted.",
        &rows,
    )?;
    // Whole seconds, written as integers, as exporters write Unix times.
    let mut m = enc.encode_descriptor(
        "tango_tls_certificate_not_after_seconds",
        "Unix time when the certificate a listener serves for a server name expires (its notAfter); an empty server_name is the default certificate without a name of its own. An expired certificate is still served.",
        None,
        MetricType::Gauge,
    )?;
    for (listener, name, at) in rt.certificate_dates.get() {
        let labels: Labels = vec![
            ("listener", (&listener).into()),
            ("server_name", (&name).into()),
        ];
        ConstGauge::new(at).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl TangoCollector {
    /// The configuration in force and what reloads did.
    fn encode_config(&self, snap: &Snapshot, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        single_gauge(
            enc,
            "tango_config_generation",
            "Generation of the configuration in force.",
            snap.generation as f64,
        )?;
        single_gauge(
            enc,
            "tango_config_last_change_timestamp_seconds",
            "Unix time when the configuration in force was applied.",
            snap.applied_at,
        )?;
        let result = |r: &str, n: &AtomicU64| (vec![("result", r.into())], n.load(Relaxed));
        counter_family(
            enc,
            "tango_config_reloads",
            "Configuration reloads by result.",
            &[
                result("applied", &self.reloads.ok),
                result("rejected", &self.reloads.rejected),
                result("refused", &self.reloads.refused),
            ],
        )?;
        single_counter(
            enc,
            "tango_config_rollbacks",
            "Reloads rolled back by their canary (an alert they caused).",
            self.reloads.rollbacks.load(Relaxed),
        )?;
        single_counter(
            enc,
            "tango_config_rollback_failures",
            "Attempts to roll a reload back that failed.",
            self.reloads.rollback_failures.load(Relaxed),
        )?;
        single_counter(
            enc,
            "tango_redirects",
            "Requests answered with a route's redirect (no pool picked).",
            self.rt.redirects.load(Relaxed),
        )
    }
}

impl TangoCollector {
    /// What the watch computed at its last tick.
    fn encode_watch(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let (mut observed, mut expected, mut skew) = (Vec::new(), Vec::new(), Vec::new());
        {
            let pools = self.watch.pools.lock().unwrap_or_else(|p| p.into_inner());
            let mut names: Vec<&String> = pools.keys().collect();
            names.sort();
            for name in names {
                let v = &pools[name];
                let pool = Value::from(name);
                for g in &v.gauges {
                    let l: Labels = vec![("pool", pool.clone()), ("backend", (&g.backend).into())];
                    observed.push((l.clone(), g.observed_share));
                    expected.push((l, g.expected_share));
                }
                skew.push((vec![("pool", pool)], v.skew_score));
            }
        }
        gauge_family(
            enc,
            "tango_backend_share_observed",
            "Share of the pool's requests this backend took over the watch window.",
            &observed,
        )?;
        gauge_family(enc, "tango_backend_share_expected", "Share this backend should take: effective weight (or key-space ownership) over the pool's.", &expected)?;
        gauge_family(enc, "tango_pool_skew_score", "Largest |z| of any backend's share against its expected share; below 3 is ordinary noise.", &skew)?;
        let active = self.watch.active_alerts();
        let rows: Vec<(Labels, f64)> = AlertKind::ALL
            .iter()
            .map(|k| {
                (
                    vec![("kind", k.as_str().into())],
                    active.iter().filter(|a| a.evidence.kind == *k).count() as f64,
                )
            })
            .collect();
        gauge_family(
            enc,
            "tango_alerts_active",
            "Alerts firing now, by kind.",
            &rows,
        )
    }
}

/// Build the registry once; `render` encodes it on each scrape.
pub(crate) fn registry(
    rt: Arc<Runtime>,
    reloads: Arc<ReloadStats>,
    watch: Arc<WatchState>,
) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(TangoCollector { rt, reloads, watch }));
    r
}
