//! `[pool.health]` and `[pool.outlier]`: how a pool's backends are judged, actively by
//! probes and passively by their answers.

use super::fields::{span, V};
use crate::config::defaults::{health as default, outlier as outlier_default};
use crate::config::file::{HealthFile, OutlierFile, S};
use crate::config::{HealthCheck, HealthKind, Outlier, UpstreamProtocol};

/// `h`, the health checks of a pool speaking `protocol`.
pub(super) fn health(
    v: &mut V<'_>,
    k: &str,
    h: &S<HealthFile>,
    protocol: UpstreamProtocol,
) -> HealthCheck {
    let hf = h.get_ref();
    let k = format!("{k}.health");
    let kind = v.table(&k).choice(
        "kind",
        &hf.kind,
        &[
            ("http", HealthKind::Http),
            ("tcp", HealthKind::Tcp),
            ("grpc", HealthKind::Grpc),
        ],
        default::KIND,
    );
    let service = grpc_service(v, &k, hf, kind, protocol);
    let path = hf
        .path
        .as_ref()
        .map_or(default::PATH, |p| p.get_ref())
        .to_string();
    probe_request(v, &k, hf);
    let method = hf
        .method
        .as_ref()
        .map_or(default::METHOD, |m| m.get_ref())
        .to_ascii_uppercase();
    let expect = expect(v, &k, hf);
    let mut t = v.table(&k);
    HealthCheck {
        kind,
        service,
        path,
        method,
        host: hf.host.as_ref().map(|h| h.get_ref().clone()),
        expect,
        interval: t.duration("interval", &hf.interval, default::INTERVAL),
        timeout: t.duration("timeout", &hf.timeout, default::TIMEOUT),
        jitter: t.float("jitter", &hf.jitter, 0.0..=0.5, default::JITTER),
        rise: t.int("rise", &hf.rise, 1..=100, default::RISE),
        fall: t.int("fall", &hf.fall, 1..=100, default::FALL),
        span: span(h),
    }
}

/// The probe's path, method and host must make a request: one that cannot be built
/// would fail every probe and take every backend down.
fn probe_request(v: &mut V<'_>, k: &str, hf: &HealthFile) {
    if let Some(p) = &hf.path {
        if !p.get_ref().starts_with('/') {
            v.err(
                &format!("{k}.path"),
                span(p),
                "health check path must start with '/'",
                format!("write \"/{}\"", p.get_ref()),
            );
        } else if p.get_ref().parse::<http::uri::PathAndQuery>().is_err() {
            v.err(
                &format!("{k}.path"),
                span(p),
                format!("`{}` is not a request path", p.get_ref()),
                "percent-encode what a URL cannot hold (a space is %20)",
            );
        }
    }
    if let Some(m) = &hf.method {
        if http::Method::from_bytes(m.get_ref().as_bytes()).is_err() {
            v.err(
                &format!("{k}.method"),
                span(m),
                format!("`{}` is not an HTTP method", m.get_ref()),
                "write e.g. \"GET\" or \"HEAD\"",
            );
        }
    }
    if let Some(h) = &hf.host {
        if h.get_ref().parse::<http::uri::Authority>().is_err() {
            v.err(
                &format!("{k}.host"),
                span(h),
                format!("`{}` is not a host name", h.get_ref()),
                "write a host, with a port if it needs one, e.g. \"app.internal\"",
            );
        }
    }
}

/// The service a gRPC check asks about. gRPC runs over HTTP/2 only, so `kind = "grpc"`
/// needs `protocol = "h2"`; `service` means nothing to another kind, so it is refused
/// there rather than silently ignored.
fn grpc_service(
    v: &mut V<'_>,
    k: &str,
    hf: &HealthFile,
    kind: HealthKind,
    protocol: UpstreamProtocol,
) -> String {
    if let (HealthKind::Grpc, Some(at)) = (kind, &hf.kind) {
        if protocol != UpstreamProtocol::H2 {
            v.err(
                &format!("{k}.kind"),
                span(at),
                "a gRPC health check needs a pool that speaks HTTP/2",
                "add protocol = \"h2\" to the pool, or use kind = \"http\" or \"tcp\"",
            );
        }
    }
    match &hf.service {
        Some(s) if kind != HealthKind::Grpc => {
            v.err(
                &format!("{k}.service"),
                span(s),
                "`service` is only for kind = \"grpc\"",
                "remove it, or set kind = \"grpc\"",
            );
            String::new()
        }
        Some(s) => s.get_ref().clone(),
        None => default::SERVICE.to_string(),
    }
}

/// The statuses that count as healthy, as inclusive ranges.
fn expect(v: &mut V<'_>, k: &str, hf: &HealthFile) -> Vec<(u16, u16)> {
    let mut expect = Vec::new();
    for (i, e) in hf.expect.iter().enumerate() {
        match parse_status_range(e.get_ref()) {
            Some(r) => expect.push(r),
            None => v.err(
                &format!("{k}.expect[{i}]"),
                span(e),
                format!("`{}` is not a status or status range", e.get_ref()),
                "write e.g. \"200\" or \"200-399\"",
            ),
        }
    }
    if expect.is_empty() {
        expect.push(default::EXPECT);
    }
    expect
}

fn parse_status_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let n = s.trim().parse().ok()?;
            (n, n)
        }
    };
    ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some((a, b))
}

pub(super) fn outlier(v: &mut V<'_>, k: &str, o: &S<OutlierFile>) -> Outlier {
    let of = o.get_ref();
    let k = format!("{k}.outlier");
    let mut t = v.table(&k);
    Outlier {
        consecutive_failures: t.int(
            "consecutive_failures",
            &of.consecutive_failures,
            1..=1000,
            outlier_default::CONSECUTIVE_FAILURES,
        ),
        base_ejection: t.duration(
            "base_ejection",
            &of.base_ejection,
            outlier_default::BASE_EJECTION,
        ),
        max_ejection: t.duration(
            "max_ejection",
            &of.max_ejection,
            outlier_default::MAX_EJECTION,
        ),
        max_ejected_percent: t.float(
            "max_ejected_percent",
            &of.max_ejected_percent,
            0.0..=100.0,
            outlier_default::MAX_EJECTED_PERCENT,
        ),
        span: span(o),
    }
}
