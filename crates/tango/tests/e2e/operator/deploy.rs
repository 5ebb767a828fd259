//! deploy/: the Grafana dashboard asks only for series tango exports or its recording
//! rules make, with labels they carry (that every query parses is checked by promtool in
//! scripts/deploy-test.sh); tango tells systemd when it is ready and when it stops.

use super::*;
use crate::backend::Backend;
use promql_parser::parser::{self, Expr};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `expr` in the dashboard (panels and annotations).
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// Grafana's variables as values of the right kind, as scripts/deploy-test.sh does.
fn fill_variables(expr: &str) -> String {
    let mut s = expr.to_string();
    for v in ["$__rate_interval", "$__interval", "$__range"] {
        s = s.replace(v, "5m");
    }
    for v in ["${instance}", "$instance", "${pool}", "$pool"] {
        s = s.replace(v, ".*");
    }
    assert!(!s.contains('$'), "an unknown Grafana variable in {expr}");
    s
}

/// Each selector in `e`: its metric name and the labels its matchers name.
fn selectors(e: &Expr, out: &mut Vec<(String, Vec<(String, String)>)>) {
    let mut vector = |vs: &parser::VectorSelector| {
        let name = vs.name.clone().unwrap_or_default();
        let labels = vs
            .matchers
            .matchers
            .iter()
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect();
        out.push((name, labels));
    };
    match e {
        Expr::VectorSelector(vs) => vector(vs),
        Expr::MatrixSelector(ms) => vector(&ms.vs),
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        _ => {}
    }
}

/// Series names from a scrape, with the labels each carries.
fn scraped(text: &str) -> Known {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = l.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let set = out.entry(name.to_string()).or_default();
        for kv in labels
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
        {
            set.insert(kv.split_once('=').unwrap().0.to_string());
        }
    }
    out
}

/// Recording rules' series: `level:metric:operation`, whose level lists the labels kept.
fn recorded(rules: &str) -> Known {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(|name| {
            let level = name.split(':').next().unwrap();
            let labels = level.split('_').map(str::to_string).collect();
            (name.to_string(), labels)
        })
        .collect()
}

type Known = BTreeMap<String, BTreeSet<String>>;

/// What a running tango exports, once its watch has ticked (the share gauges appear
/// then), with the series the recording rules make and Prometheus' `ALERTS`; and the
/// rules' alert names.
async fn known_series() -> (Known, BTreeSet<String>) {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    assert_eq!(get(&client(), &t.url("/")).await.0, 200);
    let end = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (_, text) = get(&client(), &t.admin_url("/metrics")).await;
        if text.contains("tango_backend_share_observed{") {
            break text;
        }
        assert!(Instant::now() < end, "no share gauges:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rules = repo_file("deploy/prometheus/tango-rules.yml");
    let mut known = scraped(&text);
    known.extend(recorded(&rules));
    known.insert(
        "ALERTS".to_string(),
        ["alertname", "alertstate", "severity", "pool", "backend"]
            .map(str::to_string)
            .into(),
    );
    let alerts = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect();
    (known, alerts)
}

/// Problems with one query: unparsable, or naming a series or label no one makes.
/// Adds the series it names to `names`.
fn check_query(
    q: &str,
    known: &Known,
    alerts: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
) -> Vec<String> {
    let ast = match parser::parse(&fill_variables(q)) {
        Ok(ast) => ast,
        Err(e) => return vec![format!("{q}: {e}")],
    };
    let mut sel = Vec::new();
    selectors(&ast, &mut sel);
    let mut problems = Vec::new();
    for (name, labels) in sel {
        let Some(has) = known.get(&name) else {
            problems.push(format!("{q}: `{name}` is neither exported nor recorded"));
            continue;
        };
        names.insert(name.clone());
        for (label, value) in labels {
            // Target labels are added by Prometheus to every series.
            if !has.contains(&label) && label != "instance" && label != "job" {
                problems.push(format!("{q}: `{name}` has no label `{label}`"));
            }
            if name == "ALERTS" && label == "alertname" {
                for a in value.split('|').filter(|a| !alerts.contains(*a)) {
                    problems.push(format!("{q}: no alert named `{a}` in tango-rules.yml"));
                }
            }
        }
    }
    problems
}

/// Problems with a variable's query, `label_values(SELECTOR, LABEL)`.
fn check_variable(def: &str, known: &Known) -> Vec<String> {
    let inner = def
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected variable query {def}"));
    let (sel, label) = inner.rsplit_once(',').unwrap();
    let label = label.trim();
    let mut names = Vec::new();
    selectors(&parser::parse(&fill_variables(sel)).unwrap(), &mut names);
    names
        .into_iter()
        .filter(|(name, _)| {
            !known
                .get(name)
                .is_some_and(|has| has.contains(label) || label == "instance")
        })
        .map(|(name, _)| format!("{def}: `{name}` has no label `{label}`"))
        .collect()
}

#[tokio::test]
async fn grafana_queries_ask_only_for_series_tango_and_its_rules_make() {
    let (known, alerts) = known_series().await;
    let dashboard: Value = serde_json::from_str(&repo_file("deploy/grafana/tango.json")).unwrap();
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut names = BTreeSet::new();
    let mut problems: Vec<String> = queries
        .iter()
        .flat_map(|q| check_query(q, &known, &alerts, &mut names))
        .collect();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(def) = var["definition"].as_str() {
            problems.extend(check_variable(def, &known));
        }
    }
    assert_eq!(problems, Vec::<String>::new());
    // The dashboard covers tango's families, not just a corner of them.
    for family in [
        "tango_backend_requests_total",
        "tango_backend_request_duration_seconds_bucket",
        "tango_backend_effective_weight",
        "tango_backend_share_observed",
        "tango_alerts_active",
        "tango_config_generation",
        "pool_backend:tango_backend_share:z5m",
    ] {
        assert!(
            names.contains(family),
            "the dashboard does not use {family}"
        );
    }
}

#[tokio::test]
async fn tango_notifies_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let a = Backend::start("a").await;
    let mut t = Tango::start_env(
        &config("", &[("a", a.addr, 1)]),
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a READY notification");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(ready.lines().next(), Some("READY=1"), "{ready:?}");
    // Ready means serving: the listener answers at once.
    assert_eq!(get(&client(), &t.url("/")).await.0, 200);
    t.signal("TERM");
    let n = socket.recv(&mut buf).expect("a STOPPING notification");
    let stopping = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert_eq!(stopping.lines().next(), Some("STOPPING=1"), "{stopping:?}");
    assert!(t
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}
