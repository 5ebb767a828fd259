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

use crate::control::reload::ReloadStats;
use crate::control::watch::state::WatchState;
use crate::runtime::{Runtime, Snapshot};
use crate::stats::{StatsSnapshot, CODE_CLASSES, LATENCY_BUCKETS};
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

/// Every backend's (and pool's) series of one scrape, read from the snapshot in force.
#[derive(Default)]
struct BackendRows {
    requests: Vec<(Labels, u64)>,
    broken: Vec<(Labels, u64)>,
    in_flight: Vec<(Labels, f64)>,
    configured: Vec<(Labels, f64)>,
    effective: Vec<(Labels, f64)>,
    healthy: Vec<(Labels, f64)>,
    latency: Vec<(Labels, StatsSnapshot)>,
    transitions: Vec<(Labels, u64)>,
    panic: Vec<(Labels, f64)>,
    resends: Vec<(Labels, u64)>,
}

impl BackendRows {
    /// `now` is the time since start, for slow start.
    fn read(snap: &Snapshot, now: u64) -> Self {
        let mut r = BackendRows::default();
        for pool in &snap.pools {
            let in_panic = pool.shared.panic();
            let pool_name = Value::from(&pool.cfg.name);
            r.panic.push((
                vec![("pool", pool_name.clone())],
                if in_panic { 1.0 } else { 0.0 },
            ));
            let (resent, refused) = pool.retry_budget.counts();
            for (result, n) in [("sent", resent), ("refused", refused)] {
                let labels = vec![("pool", pool_name.clone()), ("result", result.into())];
                r.resends.push((labels, n));
            }
            for (i, b) in pool.backends.iter().enumerate() {
                let bcfg = &pool.cfg.backends[i];
                let labels: Labels = vec![
                    ("pool", pool_name.clone()),
                    ("backend", (&bcfg.name).into()),
                ];
                let s = b.stats.snapshot();
                for (c, n) in s.by_class.iter().enumerate() {
                    let mut l = labels.clone();
                    l.push(("code", CODE_CLASSES[c].into()));
                    r.requests.push((l, *n));
                }
                r.broken.push((labels.clone(), s.broken));
                r.in_flight.push((labels.clone(), b.in_flight() as f64));
                r.configured.push((labels.clone(), f64::from(bcfg.weight)));
                r.effective
                    .push((labels.clone(), pool.effective_weight(i, now)));
                r.healthy
                    .push((labels.clone(), if b.available() { 1.0 } else { 0.0 }));
                r.transitions.push((labels.clone(), b.health_transitions()));
                r.latency.push((labels, s));
            }
        }
        r
    }

    fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        counter_family(
            enc,
            "tango_backend_requests",
            "Requests forwarded to a backend, by response status class (error: no response).",
            &self.requests,
        )?;
        counter_family(
            enc,
            "tango_backend_broken_responses",
            "Answers below 500 whose body the backend broke off (reset, closed short, bad chunked framing, silent past the idle timeout); also counted in tango_backend_requests by status.",
            &self.broken,
        )?;
        self.encode_latency(enc)?;
        gauge_family(
            enc,
            "tango_backend_in_flight",
            "Requests in progress at a backend.",
            &self.in_flight,
        )?;
        gauge_family(
            enc,
            "tango_backend_configured_weight",
            "Weight as configured.",
            &self.configured,
        )?;
        gauge_family(
            enc,
            "tango_backend_effective_weight",
            "Configured weight x eligible (healthy, not ejected) x slow-start factor.",
            &self.effective,
        )?;
        counter_family(
            enc,
            "tango_pool_retry_resends",
            "Retries that send again a request a backend already received, paid from the pool's retry budget (result=sent) or refused for want of it (result=refused). Retries of requests that never left tango cost nothing and are not counted here.",
            &self.resends,
        )?;
        gauge_family(
            enc,
            "tango_pool_panic_mode",
            "1 while too few backends are eligible and the pool balances across all of them.",
            &self.panic,
        )?;
        counter_family(
            enc,
            "tango_backend_health_transitions",
            "Active health-check transitions, healthy to unhealthy or back.",
            &self.transitions,
        )?;
        gauge_family(
            enc,
            "tango_backend_healthy",
            "1 when the backend is eligible for traffic (healthy and not ejected).",
            &self.healthy,
        )
    }

    fn encode_latency(&self, enc: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(
            "tango_backend_request_duration_seconds",
            "Time from sending a request to a backend to its response head.",
            None,
            MetricType::Histogram,
        )?;
        for (l, s) in &self.latency {
            // prometheus-client writes the bound `f64::MAX` as `+Inf`, the spelling
            // both formats require (`f64::INFINITY` would print as `inf`).
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(s.latency_buckets.iter().copied())
                .collect();
            m.encode_family(l)?.encode_histogram::<Labels>(
                s.latency_sum_us as f64 / 1e6,
                s.latency_count(),
                &buckets,
                None,
            )?;
        }
        Ok(())
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
        ConstCounter::new(self.reloads.rollbacks.load(Relaxed)).encode(enc.encode_descriptor(
            "tango_config_rollbacks",
            "Reloads rolled back by their canary (an alert they caused).",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(self.reloads.rollback_failures.load(Relaxed)).encode(
            enc.encode_descriptor(
                "tango_config_rollback_failures",
                "Attempts to roll a reload back that failed.",
                None,
                MetricType::Counter,
            )?,
        )?;
        ConstCounter::new(self.rt.redirects.load(Relaxed)).encode(enc.encode_descriptor(
            "tango_redirects",
            "Requests answered with a route's redirect (no pool picked).",
            None,
            MetricType::Counter,
        )?)
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

/// An exposition format, chosen per scrape from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposition {
    OpenMetrics,
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
}

impl Exposition {
    /// OpenMetrics when the scraper lists it at least as high as plain text (Prometheus
    /// itself does); the Prometheus text format otherwise, and when there is no `Accept`.
    pub(crate) fn negotiate(accept: Option<&str>) -> Self {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

pub(crate) fn render(r: &Registry, format: Exposition) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, r) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    match format {
        Exposition::OpenMetrics => out,
        Exposition::Prometheus => to_prometheus_text(&out),
    }
}

/// OpenMetrics text to the Prometheus text format. The two differ, for what tango
/// exports, in three ways: a counter family is named with its `_total` suffix in `HELP`
/// and `TYPE`, there are no `UNIT` lines, and there is no `# EOF`.
fn to_prometheus_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len() + 256);
    let mut help: Option<&str> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Written once its TYPE says whether the name needs `_total`.
            if let Some(h) = help.replace(line) {
                out.push_str(h);
                out.push('\n');
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let counter = rest
                .strip_suffix(" counter")
                .filter(|name| !name.ends_with("_total"));
            if let Some(h) = help.take() {
                match (counter, h.strip_prefix("# HELP ")) {
                    (Some(name), Some(text)) => {
                        let text = text.strip_prefix(name).unwrap_or(text);
                        out.push_str(&format!("# HELP {name}_total{text}\n"));
                    }
                    _ => {
                        out.push_str(h);
                        out.push('\n');
                    }
                }
            }
            match counter {
                Some(name) => out.push_str(&format!("# TYPE {name}_total counter\n")),
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{to_prometheus_text, Exposition};

    #[test]
    fn negotiation_follows_the_accept_header() {
        use Exposition::*;
        // What Prometheus 2.x sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(prom)), OpenMetrics);
        assert_eq!(Exposition::negotiate(None), Prometheus);
        assert_eq!(Exposition::negotiate(Some("*/*")), Prometheus);
        assert_eq!(
            Exposition::negotiate(Some("text/plain;version=0.0.4")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text;q=0")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            OpenMetrics
        );
    }

    #[test]
    fn counters_take_their_total_name_in_the_prometheus_format() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n"
        );
    }
}
