//! The commands that talk to a running instance or read what it wrote: `tango status`
//! (its listeners, pools and backends as tables) and `tango reload` (with the reload
//! guard's overrides, `--force` and `--allow-shift`) through its admin API; `tango
//! timeline` and `tango postmortem` from its journal, read through the API (`--admin`)
//! or from the file (`--journal`). The admin address and token come from the flags, the
//! environment or the instance's configuration file. The journal commands live in
//! `ctl/journal.rs`.

mod journal;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
pub(crate) use journal::{postmortem, timeline, PostmortemArgs, SourceArgs};

#[derive(clap::Args)]
pub(crate) struct CtlArgs {
    /// Admin API address: `host:port` or `http://host:port` (default: the configuration's
    /// `admin.listen` with --config, else 127.0.0.1:9901).
    #[arg(long, env = "TANGO_ADMIN")]
    admin: Option<String>,
    /// The running instance's configuration file: its admin address, and its admin token
    /// when --token is not given.
    #[arg(long, short, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Bearer token for the admin API (required by every `/api/v1` call when tango has one).
    #[arg(long, env = "TANGO_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Where tango's admin API listens when nothing says otherwise.
const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

impl CtlArgs {
    /// The admin API's base URL and the token to send.
    fn target(&self) -> anyhow::Result<(String, Option<String>)> {
        let loaded =
            match &self.config {
                Some(path) => Some(crate::control::server::load_or_explain(path).with_context(
                    || format!("reading the admin address from {}", path.display()),
                )?),
                None => None,
            };
        let admin = match (&self.admin, &loaded) {
            (Some(a), _) => a.clone(),
            (None, Some(l)) => reachable(l.config.admin.listen).to_string(),
            (None, None) => DEFAULT_ADMIN.to_string(),
        };
        let token = match (&self.token, &loaded) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(l)) => crate::control::admin::resolve_token(&l.config.admin)?
                .map(|t| t.as_str().to_string()),
            (None, None) => None,
        };
        Ok((base_url(&admin)?, token))
    }
}

/// An address tango listens on, as a client reaches it: a wildcard means this host.
fn reachable(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut a = listen;
    if a.ip().is_unspecified() {
        a.set_ip(match a.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// `host:port` or `http://host:port[/]` as a base URL. The admin API speaks plain HTTP.
fn base_url(admin: &str) -> anyhow::Result<String> {
    let admin = admin.trim().trim_end_matches('/');
    if let Some(rest) = admin.strip_prefix("https://") {
        anyhow::bail!("tango's admin API speaks plain HTTP: use http://{rest}");
    }
    let url = if admin.contains("://") {
        admin.to_string()
    } else {
        format!("http://{admin}")
    };
    let uri: http::Uri = url.parse().with_context(|| {
        format!("`{admin}` is not an address: use host:port, e.g. {DEFAULT_ADMIN}")
    })?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http") && uri.authority().is_some_and(port_usable),
        "`{admin}` is not an address: use host:port, e.g. {DEFAULT_ADMIN}"
    );
    Ok(url)
}

/// A port the URI parser keeps but is not one (`:99999`) would be dropped by the
/// client, which then tries port 80 and reports the address as given.
fn port_usable(a: &http::uri::Authority) -> bool {
    let text = a.as_str();
    let has_port = text.contains(':') && !text.ends_with(']');
    !has_port || a.port_u16().is_some()
}

/// One request to the admin API; returns the status and the body.
pub(crate) async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = base_url(base)?;
    let url = format!("{base}{path}");
    let mut req = http::Request::builder().method(method).uri(&url);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .context("building the request")?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .with_context(|| format!("{url}: no answer within 30 s"))?
        .with_context(|| {
            format!("cannot reach tango's admin API at {base} (is tango running? set --admin)")
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) async fn status(args: CtlArgs) -> anyhow::Result<()> {
    let (base, token) = args.target()?;
    let (code, body) = call(&base, "GET", "/api/v1/status", token.as_deref()).await?;
    ensure_ok(code, &body)?;
    let v: serde_json::Value =
        serde_json::from_str(&body).context("the admin API sent something other than JSON")?;
    print!("{}", render_status(&v));
    Ok(())
}

/// The status answer as tables: listeners, then each pool's backends.
fn render_status(v: &serde_json::Value) -> String {
    use crate::cli::table::{self, Align::*};
    let applied = v["applied_at"]
        .as_f64()
        .map(|t| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
            format!(", applied {}", humantime::format_rfc3339_seconds(at))
        })
        .unwrap_or_default();
    let mut out = format!("generation {}{applied}\n\n", v["generation"]);
    let mut listeners = table::new(&[("listener", Left), ("address", Left)]);
    for l in v["listeners"].as_array().into_iter().flatten() {
        listeners.add_row(vec![text(&l["name"]), text(&l["address"])]);
    }
    out.push_str(&table::render(&listeners, ""));
    for p in v["pools"].as_array().into_iter().flatten() {
        // Unhealthy backends with their full effective weight make sense only when
        // the reader knows the pool is in panic mode.
        let panic = if p["panic"] == true {
            "; panic mode: too few eligible backends, balancing across all"
        } else {
            ""
        };
        out.push_str(&format!(
            "\npool {} ({}{panic})\n",
            text(&p["name"]),
            text(&p["policy"])
        ));
        let backends = p["backends"].as_array().map_or(&[][..], Vec::as_slice);
        // Why a backend is out, beside it; the column only when one is.
        let why = backends.iter().any(|b| b["down_reason"].is_string());
        let mut columns = vec![
            ("backend", Left),
            ("address", Left),
            ("weight", Right),
            ("effective", Right),
            ("healthy", Left),
            ("ejected", Left),
            ("in flight", Right),
            ("requests", Right),
            ("errors", Right),
            ("connections", Right),
        ];
        if why {
            columns.push(("why", Left));
        }
        let mut t = table::new(&columns);
        for b in backends {
            let mut row = vec![
                text(&b["name"]),
                text(&b["address"]),
                text(&b["configured_weight"]),
                format!("{:.2}", b["effective_weight"].as_f64().unwrap_or(0.0)),
                yes_no(&b["healthy"]),
                yes_no(&b["ejected"]),
                text(&b["in_flight"]),
                text(&b["requests"]),
                text(&b["errors"]),
                text(&b["open_connections"]),
            ];
            if why {
                row.push(b["down_reason"].as_str().unwrap_or("").to_string());
            }
            t.add_row(row);
        }
        out.push_str(&table::render(&t, ""));
    }
    out
}

/// A JSON value as a table cell: strings without quotes, absent as `-`.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn yes_no(v: &serde_json::Value) -> String {
    match v.as_bool() {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None => "-".to_string(),
    }
}

/// A 200, or an error that says what to do about it.
fn ensure_ok(code: u16, body: &str) -> anyhow::Result<()> {
    match code {
        200 => Ok(()),
        401 => anyhow::bail!("the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN"),
        _ => anyhow::bail!("admin API answered {code}: {body}"),
    }
}

#[derive(clap::Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    ctl: CtlArgs,
    /// Override the reload guard for this one reload: new checklist warnings and
    /// predicted shifts are let through (errors never are). The canary still watches it.
    #[arg(long)]
    force: bool,
    /// A pool whose predicted shift is intended (repeatable): the guard lets it through
    /// and the watch expects the new split.
    #[arg(long, value_name = "POOL")]
    allow_shift: Vec<String>,
}

pub(crate) async fn reload(args: ReloadArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if args.force {
        query.push("force=true".to_string());
    }
    for p in &args.allow_shift {
        query.push(format!("allow_shift={}", percent_encode(p)));
    }
    let path = match query.is_empty() {
        true => "/api/v1/reload".to_string(),
        false => format!("/api/v1/reload?{}", query.join("&")),
    };
    let (base, token) = args.ctl.target()?;
    let (code, body) = call(&base, "POST", &path, token.as_deref()).await?;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let lines = |key: &str| strings(&v[key]);
    match code {
        200 => {
            print_applied(&v);
            Ok(())
        }
        401 => anyhow::bail!("the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN"),
        // Draining: the answer's error says so, and that nothing was applied.
        503 if v["result"] == "shutting_down" => {
            anyhow::bail!(
                "{}",
                v["error"].as_str().unwrap_or("tango is shutting down")
            )
        }
        409 => {
            for e in lines("errors") {
                eprintln!("refused: {e}");
            }
            eprintln!("to proceed:");
            for s in lines("next_steps") {
                eprintln!("  - {s}");
            }
            anyhow::bail!(
                "reload refused by the guard; generation {} keeps serving",
                v["generation"]
            )
        }
        _ => {
            for e in lines("errors") {
                eprintln!("{e}");
            }
            if let Some(e) = v["error"].as_str() {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "reload rejected ({code}); generation {} keeps serving",
                v["generation"]
            )
        }
    }
}

/// An applied reload: the generation, what was overridden, the new findings, and the
/// canary watching it.
fn print_applied(v: &serde_json::Value) {
    println!("applied: generation {}", v["generation"]);
    for l in strings(&v["overrides"]) {
        println!("  {l}");
    }
    for l in strings(&v["notes"]) {
        println!("  note: {l}");
    }
    for f in v["findings"].as_array().into_iter().flatten() {
        if f["new"] == true {
            println!(
                "  new {} {} at {}: {}",
                f["severity"].as_str().unwrap_or("?"),
                f["rule"].as_str().unwrap_or("?"),
                f["location"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(c) = v["canary"].as_object() {
        let pools: Vec<&str> = c["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["pool"].as_str())
            .collect();
        let at = |k: &str| tango_core::journal::clock(c[k].as_u64().unwrap_or(0));
        println!(
            "  canary: watching pool(s) {} until {} (until {} at most, while they have too few requests to judge); an alert this reload causes rolls it back",
            pools.join(", "),
            at("until_ms"),
            at("longest_until_ms")
        );
    }
}

/// The strings of a JSON array (nothing for anything else).
fn strings(x: &serde_json::Value) -> Vec<String> {
    x.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Percent-encode a query value (pool names are usually plain; anything else is
/// encoded byte by byte).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_address_may_omit_the_scheme() {
        assert_eq!(base_url("127.0.0.1:9901").unwrap(), "http://127.0.0.1:9901");
        assert_eq!(base_url("http://[::1]:9901/").unwrap(), "http://[::1]:9901");
        assert_eq!(
            base_url("admin.internal:80").unwrap(),
            "http://admin.internal:80"
        );
        let e = base_url("https://h:1").unwrap_err().to_string();
        assert_eq!(e, "tango's admin API speaks plain HTTP: use http://h:1");
        assert!(base_url("ftp://h:1").is_err());
        assert!(base_url("not an address").is_err());
        // The client would drop a port that is not one and try port 80.
        assert!(base_url("127.0.0.1:99999").is_err());
        assert!(base_url("http://[::1]:65536").is_err());
        assert!(base_url("127.0.0.1:").is_err());
        assert_eq!(base_url("[::1]").unwrap(), "http://[::1]");
    }

    #[test]
    fn a_wildcard_admin_listener_is_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:9901".parse().unwrap()).to_string(),
            "127.0.0.1:9901"
        );
        assert_eq!(
            reachable("[::]:9901".parse().unwrap()).to_string(),
            "[::1]:9901"
        );
        assert_eq!(
            reachable("10.0.0.1:9901".parse().unwrap()).to_string(),
            "10.0.0.1:9901"
        );
    }

    #[test]
    fn status_columns_line_up() {
        let v = serde_json::json!({
            "generation": 3, "applied_at": 1_700_000_000.0,
            "listeners": [{"name": "public", "address": "0.0.0.0:8443"}],
            "pools": [{"name": "web", "policy": "round_robin", "backends": [
                {"name": "web-1", "address": "10.0.0.11:8080", "configured_weight": 1,
                 "effective_weight": 1.0, "healthy": true, "ejected": false, "in_flight": 0,
                 "requests": 1234567, "errors": 12, "open_connections": 3},
                {"name": "web-10", "address": "10.0.0.9:80", "configured_weight": 10,
                 "effective_weight": 2.5, "healthy": false, "ejected": true, "in_flight": 12,
                 "requests": 5, "errors": 0, "open_connections": 0}
            ]}]
        });
        assert_eq!(
            render_status(&v),
            "generation 3, applied 2023-11-14T22:13:20Z\n\n\
             listener  address\n\
             public    0.0.0.0:8443\n\
             \n\
             pool web (round_robin)\n\
             backend  address         weight  effective  healthy  ejected  in flight  requests  errors  connections\n\
             web-1    10.0.0.11:8080       1       1.00  yes      no               0   1234567      12            3\n\
             web-10   10.0.0.9:80         10       2.50  no       yes             12         5       0            0\n"
        );
    }

    #[test]
    fn status_says_when_a_pool_is_in_panic_mode() {
        let v = serde_json::json!({
            "generation": 1,
            "listeners": [],
            "pools": [{"name": "web", "policy": "random", "panic": true, "backends": [
                {"name": "web-1", "address": "10.0.0.11:8080", "configured_weight": 1,
                 "effective_weight": 1.0, "healthy": false, "ejected": false, "in_flight": 0,
                 "requests": 0, "errors": 0, "open_connections": 0}
            ]}]
        });
        assert!(
            render_status(&v).contains(
                "pool web (random; panic mode: too few eligible backends, balancing across all)\n"
            ),
            "{}",
            render_status(&v)
        );
    }
}
