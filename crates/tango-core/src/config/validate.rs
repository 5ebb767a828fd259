//! File types to model: parse every value, resolve every reference, apply defaults, and
//! collect every problem with its location, key path and a hint.

use super::file::*;
use super::model::*;
use super::Env;
use crate::diag::{Diagnostic, Span};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod admin;

use admin::admin;
mod guard;

pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:9901";
/// The longest duration accepted anywhere: deadlines are computed by adding durations
/// to the clock, which must not overflow.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

struct V<'a> {
    base: &'a Path,
    diags: Vec<Diagnostic>,
}

fn span<T>(s: &S<T>) -> Span {
    s.span().into()
}

impl V<'_> {
    fn err(&mut self, key: &str, s: Span, msg: impl Into<String>, hint: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(key, Some(s), msg).with_hint(hint));
    }

    fn duration(&mut self, key: &str, v: &Option<S<String>>, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) if d.is_zero() => {
                self.err(
                    key,
                    span(v),
                    "duration must be greater than zero",
                    "write e.g. \"2s\", \"500ms\" or \"1m\"",
                );
                default
            }
            Ok(d) if d > MAX_DURATION => {
                self.err(
                    key,
                    span(v),
                    format!("`{}` is longer than a week", v.get_ref()),
                    "no timeout or interval here needs more than a week; write e.g. \"30s\"",
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(
                    key,
                    span(v),
                    format!("`{}` is not a duration: {e}", v.get_ref()),
                    "write a number with a unit, e.g. \"2s\", \"500ms\" or \"1m\"",
                );
                default
            }
        }
    }

    fn int(&mut self, key: &str, v: &Option<S<i64>>, min: i64, max: i64, default: i64) -> i64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if n < min || n > max {
            self.err(
                key,
                span(v),
                format!("{n} is out of range"),
                format!("use a whole number from {min} to {max}"),
            );
            return default;
        }
        n
    }

    fn float(&mut self, key: &str, v: &Option<S<f64>>, min: f64, max: f64, default: f64) -> f64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if !(n >= min && n <= max) {
            self.err(
                key,
                span(v),
                format!("{n} is out of range"),
                format!("use a number from {min} to {max}"),
            );
            return default;
        }
        n
    }

    fn socket(&mut self, key: &str, v: &S<String>) -> Option<SocketAddr> {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    key,
                    span(v),
                    format!("`{}` is not an IP address with a port", v.get_ref()),
                    "write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                );
                None
            }
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, v: &S<String>, options: &[(&str, T)]) -> Option<T> {
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == v.get_ref()) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.err(
            key,
            span(v),
            format!("unknown value `{}`", v.get_ref()),
            one_of(v.get_ref(), &names),
        );
        None
    }
}

/// "use one of: ...", led by a did-you-mean when one of them is close to `word`.
fn one_of(word: &str, names: &[&str]) -> String {
    match crate::diag::did_you_mean(word, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? (use one of: {})", names.join(", ")),
        None => format!("use one of: {}", names.join(", ")),
    }
}

/// Validate a parsed file. `base` is the directory relative paths are resolved against.
pub(crate) fn validate(
    file: &ConfigFile,
    base: &Path,
    env: &Env,
) -> Result<Config, Vec<Diagnostic>> {
    let mut v = V {
        base,
        diags: Vec::new(),
    };
    let admin = admin(&mut v, file.admin.as_ref(), env);
    let listeners = listeners(&mut v, &file.listener, admin.listen);
    let pools = pools(&mut v, &file.pool);
    let routes = routes(&mut v, &file.route, &pools);
    let allows = allows(&mut v, &file.allow, &pools);
    let alerts = alerts(&mut v, file.alerts.as_ref());
    let guard = guard::guard(&mut v, file.guard.as_ref(), &pools);
    if v.diags.is_empty() {
        Ok(Config {
            admin,
            listeners,
            routes,
            pools,
            allows,
            alerts,
            guard,
        })
    } else {
        Err(v.diags)
    }
}

fn listeners(v: &mut V<'_>, ls: &[S<ListenerFile>], admin: SocketAddr) -> Vec<Listener> {
    let mut out = Vec::new();
    let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, l) in ls.iter().enumerate() {
        let lf = l.get_ref();
        let name = lf
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| format!("listener-{i}"));
        let k = format!("listener[{name}]");
        if let Some(n) = &lf.name {
            if names.insert(name.clone(), i).is_some() {
                v.err(
                    &format!("{k}.name"),
                    span(n),
                    format!("listener name `{name}` is used twice"),
                    "give each listener its own name",
                );
            }
        }
        let listen = v.socket(&format!("{k}.listen"), &lf.listen);
        if let Some(listen) = listen {
            // Port 0 asks the kernel for any free port: never a clash.
            if listen.port() != 0 && (seen.insert(listen, i).is_some() || listen == admin) {
                v.err(
                    &format!("{k}.listen"),
                    span(&lf.listen),
                    format!("address {listen} is already taken by another listener"),
                    "give each listener its own address",
                );
            }
        }
        let tls = lf.tls.as_ref().map(|t| Tls {
            cert: v.path(t.get_ref().cert.get_ref()),
            key: v.path(t.get_ref().key.get_ref()),
        });
        let header_timeout = v.duration(
            &format!("{k}.header_timeout"),
            &lf.header_timeout,
            Duration::from_secs(10),
        );
        // A silent new connection gets as long as a slow request head by default: both
        // are the time a client has to start and finish asking. The lock-out a pile of
        // silent connections could cause is prevented by closing idle connections at
        // `max_connections`, not by a short timeout, so none is imposed here.
        let first_byte_timeout = v.duration(
            &format!("{k}.first_byte_timeout"),
            &lf.first_byte_timeout,
            header_timeout,
        );
        let idle_timeout = v.duration(
            &format!("{k}.idle_timeout"),
            &lf.idle_timeout,
            Duration::from_secs(60),
        );
        let request_timeout = v.duration(
            &format!("{k}.request_timeout"),
            &lf.request_timeout,
            Duration::from_secs(60),
        );
        let send_timeout = v.duration(
            &format!("{k}.send_timeout"),
            &lf.send_timeout,
            Duration::from_secs(60),
        );
        let max_connections = v.int(
            &format!("{k}.max_connections"),
            &lf.max_connections,
            1,
            1_000_000,
            10_000,
        ) as usize;
        let max_header_bytes = v.int(
            &format!("{k}.max_header_bytes"),
            &lf.max_header_bytes,
            1024,
            1 << 20,
            64 << 10,
        ) as usize;
        let mut trusted_proxies = Vec::new();
        for (j, c) in lf.trusted_proxies.iter().enumerate() {
            match parse_cidr(c.get_ref()) {
                Some(cidr) => trusted_proxies.push(cidr),
                None => v.err(
                    &format!("{k}.trusted_proxies[{j}]"),
                    span(c),
                    format!("`{}` is not an address or CIDR block", c.get_ref()),
                    "write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
                ),
            }
        }
        let Some(listen) = listen else { continue };
        out.push(Listener {
            name,
            listen,
            tls,
            header_timeout,
            first_byte_timeout,
            idle_timeout,
            request_timeout,
            send_timeout,
            max_connections,
            max_header_bytes,
            trusted_proxies,
            span: span(l),
        });
    }
    if ls.is_empty() {
        v.diags.push(
            Diagnostic::error("listener", None, "no [[listener]] is configured")
                .with_hint("add a [[listener]] with `listen = \"127.0.0.1:8080\"`"),
        );
    }
    out
}

pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Cidr { addr, prefix })
}

fn pools(v: &mut V<'_>, ps: &[S<PoolFile>]) -> Vec<Pool> {
    let mut out = Vec::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    for p in ps {
        let pf = p.get_ref();
        let name = pf.name.get_ref().clone();
        let k = format!("pool[{name}]");
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            v.err(
                &format!("{k}.name"),
                span(&pf.name),
                format!("pool name `{name}` is not usable"),
                "use 1-64 letters, digits, '-', '_' or '.'",
            );
        }
        if names.insert(name.clone(), ()).is_some() {
            v.err(
                &format!("{k}.name"),
                span(&pf.name),
                format!("pool `{name}` is defined twice"),
                "rename one of the pools or merge their backends",
            );
        }
        let policy = pf
            .policy
            .as_ref()
            .and_then(|s| v.choice(&format!("{k}.policy"), s, &PolicyKind::ALL))
            .unwrap_or(PolicyKind::RoundRobin);
        let hashing = hashing(v, &k, pf, policy);
        let ring_points = v.int(
            &format!("{k}.ring_points"),
            &pf.ring_points,
            1,
            10_000,
            i64::from(crate::policy::DEFAULT_RING_POINTS),
        ) as u32;
        let ewma_decay = v.duration(
            &format!("{k}.ewma_decay"),
            &pf.ewma_decay,
            Duration::from_secs(10),
        );
        let slow_start = pf.slow_start.as_ref().map(|_| {
            v.duration(
                &format!("{k}.slow_start"),
                &pf.slow_start,
                Duration::from_secs(30),
            )
        });
        let connect_timeout = v.duration(
            &format!("{k}.connect_timeout"),
            &pf.connect_timeout,
            Duration::from_secs(1),
        );
        let try_timeout = v.duration(
            &format!("{k}.try_timeout"),
            &pf.try_timeout,
            Duration::from_secs(15),
        );
        let timeout = v.duration(
            &format!("{k}.timeout"),
            &pf.timeout,
            Duration::from_secs(30),
        );
        let idle_timeout = v.duration(
            &format!("{k}.idle_timeout"),
            &pf.idle_timeout,
            Duration::from_secs(50),
        );
        let max_attempts = v.int(&format!("{k}.max_attempts"), &pf.max_attempts, 1, 10, 2) as u32;
        let retry_budget = v.float(
            &format!("{k}.retry_budget"),
            &pf.retry_budget,
            0.0,
            1.0,
            0.2,
        );
        let panic_threshold = v.float(
            &format!("{k}.panic_threshold"),
            &pf.panic_threshold,
            0.0,
            1.0,
            0.5,
        );
        let health = pf.health.as_ref().map(|h| health(v, &k, h));
        let outlier = pf.outlier.as_ref().map(|o| outlier(v, &k, o));
        let backends = backends(v, &k, &pf.backend);
        if pf.backend.is_empty() {
            v.err(
                &k,
                span(&pf.name),
                format!("pool `{name}` has no backends"),
                "add a [[pool.backend]] with an address",
            );
        }
        out.push(Pool {
            name,
            policy,
            policy_span: pf.policy.as_ref().map(span),
            hashing,
            ring_points,
            ewma_decay,
            slow_start,
            connect_timeout,
            try_timeout,
            timeout,
            idle_timeout,
            max_attempts,
            retry_budget,
            panic_threshold,
            health,
            outlier,
            backends,
            span: span(p),
        });
    }
    if ps.is_empty() {
        v.diags.push(
            Diagnostic::error("pool", None, "no [[pool]] is configured")
                .with_hint("add a [[pool]] with a name and at least one [[pool.backend]]"),
        );
    }
    out
}

fn hashing(v: &mut V<'_>, k: &str, pf: &PoolFile, policy: PolicyKind) -> Option<Hashing> {
    let on_missing = pf.on_missing_key.as_ref().and_then(|s| {
        v.choice(
            &format!("{k}.on_missing_key"),
            s,
            &[
                ("random", OnMissingKey::Random),
                ("round_robin", OnMissingKey::RoundRobin),
                ("reject", OnMissingKey::Reject),
            ],
        )
    });
    let max_load_factor = pf.max_load_factor.as_ref().map(|_| {
        v.float(
            &format!("{k}.max_load_factor"),
            &pf.max_load_factor,
            1.0,
            100.0,
            1.25,
        )
    });
    let Some(h) = &pf.hash_key else {
        if policy.is_hash() {
            v.err(
                &format!("{k}.policy"),
                pf.policy.as_ref().map(span).unwrap_or(span(&pf.name)),
                format!("policy `{}` needs a hash_key", policy.name()),
                "add e.g. `hash_key = { source = \"header\", name = \"x-user-id\" }`",
            );
        }
        return None;
    };
    if !policy.is_hash() {
        v.err(
            &format!("{k}.hash_key"),
            span(h),
            format!(
                "hash_key is set but policy `{}` does not hash",
                policy.name()
            ),
            "use policy \"ring_hash\" or \"maglev\", or remove hash_key",
        );
    }
    let hf = h.get_ref();
    let need_name = |v: &mut V<'_>, what: &str| -> Option<String> {
        match &hf.name {
            Some(n) if !n.get_ref().is_empty() => Some(n.get_ref().clone()),
            _ => {
                v.err(
                    &format!("{k}.hash_key.name"),
                    span(h),
                    format!("hash_key source `{what}` needs a name"),
                    format!("add `name = \"...\"` naming the {what}"),
                );
                None
            }
        }
    };
    let key = match hf.source.get_ref().as_str() {
        "client_address" => Some(HashKey::ClientAddress),
        "path" => Some(HashKey::Path),
        "header" => need_name(v, "header").map(|n| HashKey::Header(n.to_ascii_lowercase())),
        "cookie" => need_name(v, "cookie").map(HashKey::Cookie),
        "query" => need_name(v, "query").map(HashKey::Query),
        other => {
            v.err(
                &format!("{k}.hash_key.source"),
                span(&hf.source),
                format!("unknown hash key source `{other}`"),
                one_of(
                    other,
                    &["client_address", "header", "cookie", "path", "query"],
                ),
            );
            None
        }
    }?;
    Some(Hashing {
        key,
        on_missing,
        max_load_factor,
        span: span(h),
    })
}

fn health(v: &mut V<'_>, k: &str, h: &S<HealthFile>) -> HealthCheck {
    let hf = h.get_ref();
    let k = format!("{k}.health");
    let kind = hf
        .kind
        .as_ref()
        .and_then(|s| {
            v.choice(
                &format!("{k}.kind"),
                s,
                &[("http", HealthKind::Http), ("tcp", HealthKind::Tcp)],
            )
        })
        .unwrap_or(HealthKind::Http);
    let path = hf
        .path
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_else(|| "/".into());
    if let Some(p) = &hf.path {
        if !p.get_ref().starts_with('/') {
            v.err(
                &format!("{k}.path"),
                span(p),
                "health check path must start with '/'",
                format!("write \"/{}\"", p.get_ref()),
            );
        }
    }
    let method = hf
        .method
        .as_ref()
        .map(|m| m.get_ref().to_ascii_uppercase())
        .unwrap_or_else(|| "GET".into());
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
        expect.push((200, 399));
    }
    let interval = v.duration(
        &format!("{k}.interval"),
        &hf.interval,
        Duration::from_secs(5),
    );
    let timeout = v.duration(&format!("{k}.timeout"), &hf.timeout, Duration::from_secs(2));
    let jitter = v.float(&format!("{k}.jitter"), &hf.jitter, 0.0, 0.5, 0.1);
    let rise = v.int(&format!("{k}.rise"), &hf.rise, 1, 100, 2) as u32;
    let fall = v.int(&format!("{k}.fall"), &hf.fall, 1, 100, 3) as u32;
    HealthCheck {
        kind,
        path,
        method,
        host: hf.host.as_ref().map(|h| h.get_ref().clone()),
        expect,
        interval,
        timeout,
        jitter,
        rise,
        fall,
        span: span(h),
    }
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

fn outlier(v: &mut V<'_>, k: &str, o: &S<OutlierFile>) -> Outlier {
    let of = o.get_ref();
    let k = format!("{k}.outlier");
    let consecutive_failures = v.int(
        &format!("{k}.consecutive_failures"),
        &of.consecutive_failures,
        1,
        1000,
        5,
    ) as u32;
    let base_ejection = v.duration(
        &format!("{k}.base_ejection"),
        &of.base_ejection,
        Duration::from_secs(30),
    );
    let max_ejection = v.duration(
        &format!("{k}.max_ejection"),
        &of.max_ejection,
        Duration::from_secs(300),
    );
    let max_ejected_percent = v.float(
        &format!("{k}.max_ejected_percent"),
        &of.max_ejected_percent,
        0.0,
        100.0,
        50.0,
    );
    Outlier {
        consecutive_failures,
        base_ejection,
        max_ejection,
        max_ejected_percent,
        span: span(o),
    }
}

fn backends(v: &mut V<'_>, k: &str, bs: &[S<BackendFile>]) -> Vec<Backend> {
    let mut out = Vec::new();
    let mut names: HashMap<String, ()> = HashMap::new();
    for (i, b) in bs.iter().enumerate() {
        let bf = b.get_ref();
        let address = bf.address.get_ref().trim().to_string();
        let name = bf
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| address.clone());
        let bk = format!("{k}.backend[{i}]");
        if !valid_host_port(&address) {
            v.err(
                &format!("{bk}.address"),
                span(&bf.address),
                format!("`{address}` is not a host:port address"),
                "write e.g. \"10.0.0.5:8080\" or \"app-1.internal:8080\" (the port is required)",
            );
        }
        if names.insert(name.clone(), ()).is_some() {
            let s = bf.name.as_ref().map(span).unwrap_or(span(&bf.address));
            v.err(
                &format!("{bk}.name"),
                s,
                format!("backend name `{name}` is used twice in this pool"),
                "give each backend its own name",
            );
        }
        let weight = v.int(&format!("{bk}.weight"), &bf.weight, 0, 10_000, 1) as u32;
        let max_connections = bf.max_connections.as_ref().map(|_| {
            v.int(
                &format!("{bk}.max_connections"),
                &bf.max_connections,
                1,
                1_000_000,
                1,
            ) as u32
        });
        let max_in_flight = bf.max_in_flight.as_ref().map(|_| {
            v.int(
                &format!("{bk}.max_in_flight"),
                &bf.max_in_flight,
                1,
                1_000_000,
                1,
            ) as u32
        });
        out.push(Backend {
            name,
            address,
            weight,
            max_connections,
            max_in_flight,
            span: span(b),
            weight_span: bf.weight.as_ref().map(span),
        });
    }
    out
}

fn valid_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().map(|p| p > 0).unwrap_or(false);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    port_ok && host_ok
}

fn routes(v: &mut V<'_>, rs: &[S<RouteFile>], pools: &[Pool]) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, r) in rs.iter().enumerate() {
        let rf = r.get_ref();
        let k = format!("route[{i}]");
        let Some(pool) = pools.iter().position(|p| p.name == *rf.pool.get_ref()) else {
            let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
            v.err(
                &format!("{k}.pool"),
                span(&rf.pool),
                format!(
                    "route names pool `{}`, which is not defined",
                    rf.pool.get_ref()
                ),
                if names.is_empty() {
                    "define the pool with [[pool]]".to_string()
                } else {
                    one_of(rf.pool.get_ref(), &names)
                },
            );
            continue;
        };
        if let Some(p) = &rf.path_prefix {
            if !p.get_ref().starts_with('/') {
                v.err(
                    &format!("{k}.path_prefix"),
                    span(p),
                    "path_prefix must start with '/'",
                    format!("write \"/{}\"", p.get_ref()),
                );
            }
        }
        let host = rf
            .host
            .as_ref()
            .map(|h| h.get_ref().trim().to_ascii_lowercase());
        out.push(Route {
            host,
            path_prefix: rf.path_prefix.as_ref().map(|p| p.get_ref().clone()),
            pool,
            span: span(r),
        });
    }
    if rs.is_empty() && pools.len() > 1 {
        v.diags.push(
            Diagnostic::error(
                "route",
                None,
                "several pools are defined but no [[route]] says which gets traffic",
            )
            .with_hint("add [[route]] entries; a route with only `pool = \"...\"` is the default"),
        );
    }
    if rs.is_empty() && pools.len() == 1 {
        out.push(Route {
            host: None,
            path_prefix: None,
            pool: 0,
            span: Span::default(),
        });
    }
    out
}

fn allows(v: &mut V<'_>, al: &[S<AllowFile>], pools: &[Pool]) -> Vec<Allow> {
    let mut out = Vec::new();
    for (i, a) in al.iter().enumerate() {
        let af = a.get_ref();
        let k = format!("allow[{i}]");
        let reason = af
            .reason
            .as_ref()
            .map(|r| r.get_ref().trim().to_string())
            .unwrap_or_default();
        if reason.is_empty() {
            v.err(
                &format!("{k}.reason"),
                span(a),
                format!("allowing {} needs a stated reason", af.rule.get_ref()),
                "add `reason = \"...\"` saying why this hazard is acceptable here",
            );
        }
        if let Some(p) = &af.pool {
            if !pools.iter().any(|x| x.name == *p.get_ref()) {
                v.err(
                    &format!("{k}.pool"),
                    span(p),
                    format!("pool `{}` is not defined", p.get_ref()),
                    "name a pool defined with [[pool]]",
                );
            }
        }
        out.push(Allow {
            rule: af.rule.get_ref().clone(),
            reason,
            pool: af.pool.as_ref().map(|p| p.get_ref().clone()),
            span: span(a),
        });
    }
    out
}

fn alerts(v: &mut V<'_>, a: Option<&S<AlertsFile>>) -> Alerts {
    let Some(a) = a else { return Alerts::default() };
    let mut url = |key: &str, u: &Option<S<String>>| -> Option<String> {
        let u = u.as_ref()?;
        let text = u.get_ref().trim();
        let ok = text
            .strip_prefix("http://")
            .map(|rest| !rest.is_empty() && !rest.starts_with('/'))
            .unwrap_or(false);
        if !ok {
            v.err(
                key,
                span(u),
                format!("`{text}` is not an http:// URL"),
                "write e.g. \"http://127.0.0.1:9093\" (https is not supported for delivery)",
            );
            return None;
        }
        Some(text.trim_end_matches('/').to_string())
    };
    let webhook = url("alerts.webhook", &a.get_ref().webhook);
    let alertmanager = url("alerts.alertmanager", &a.get_ref().alertmanager);
    Alerts {
        webhook,
        alertmanager,
    }
}
