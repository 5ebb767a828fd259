//! A reload that only moves a route leaves every pool's own split as it is, yet can
//! send most requests to one backend: the guard routes the requests it sampled through
//! the new routes and refuses a backend taking more of all requests than the busiest
//! does today, names the route, the pools and the backend; `--allow-shift` on the pool
//! that gains the traffic applies it; a move to a wider pool applies by itself.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use std::collections::HashMap;

/// Pools `wide` (w1..w4), `pair` (p1, p2) and `solo` (s1); `/api` to `api`, `/static`
/// to `stat`, everything else to `solo`.
fn routed(bs: &[Backend], api: &str, stat: &str) -> String {
    let spec: Vec<(&str, std::net::SocketAddr)> =
        bs.iter().map(|b| (b.name.as_str(), b.addr)).collect();
    routed_at(&spec, api, stat)
}

fn routed_at(bs: &[(&str, std::net::SocketAddr)], api: &str, stat: &str) -> String {
    let mut s = String::from(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n",
    );
    for pool in ["wide", "pair", "solo"] {
        s.push_str(&format!("\n[[pool]]\nname = \"{pool}\"\n"));
        let first = &pool[..1];
        for (name, addr) in bs.iter().filter(|b| b.0.starts_with(first)) {
            s.push_str(&format!(
                "[[pool.backend]]\nname = \"{name}\"\naddress = \"{addr}\"\n"
            ));
        }
    }
    let route = |path: &str, pool: &str| {
        format!("\n[[route]]\npath_prefix = \"{path}\"\npool = \"{pool}\"\n")
    };
    s + &route("/api", api) + &route("/static", stat) + "\n[[route]]\npool = \"solo\"\n"
}

async fn backends() -> Vec<Backend> {
    let mut out = Vec::new();
    for n in ["w1", "w2", "w3", "w4", "p1", "p2", "s1"] {
        out.push(Backend::start(n).await);
    }
    out
}

/// Live traffic, bounded: `/api` busy (300 requests/s), everything else light (50),
/// until a few dozen requests of each are sampled (1 in 64 of a pool that does not
/// hash); then stopped, with no request failed.
async fn traffic(t: &Tango) {
    let api = Load::start(t.url("/api/items"), 300, None);
    let rest = Load::start(t.url("/"), 50, None);
    api.answered(2400).await;
    rest.answered(400).await;
    let ((_, f1), (_, f2)) = (api.stop().await, rest.stop().await);
    assert_eq!((f1, f2), (0, 0));
}

/// Which backends answer `n` requests for `path`.
async fn answers(t: &Tango, path: &str, n: u32) -> HashMap<String, u32> {
    let c = client();
    let mut out = HashMap::new();
    for _ in 0..n {
        let (s, body) = get(&c, &t.url(path)).await;
        assert_eq!(s, 200, "{body}");
        *out.entry(body.trim().to_string()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_route_moved_to_a_one_backend_pool_is_refused_naming_route_pools_and_backend() {
    let bs = backends().await;
    let t = Tango::start(&routed(&bs, "wide", "wide"));
    traffic(&t).await;

    t.write_config(&routed(&bs, "solo", "wide"));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (409, &1.into()), "{v:#}");
    let r = v["refusals"].as_array().unwrap();
    assert_eq!(r.len(), 1, "only the route gate refuses: {v:#}");
    let r = &r[0];
    let field = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k}: {v:#}"));
    assert_eq!(
        [
            field("gate"),
            field("route"),
            field("from_pool"),
            field("to_pool"),
            field("backend"),
            field("pool")
        ],
        ["route", "host * path /api", "wide", "solo", "s1", "solo"]
    );
    // Today s1 serves the light traffic, about 1 request in 7; /api is the rest.
    let (from, to) = (
        r["from_pct"].as_f64().unwrap(),
        r["to_pct"].as_f64().unwrap(),
    );
    assert!(from > 3.0 && from < 30.0 && to > 75.0, "{v:#}");
    let sentence = field("sentence");
    assert!(
        sentence.starts_with("route host * path /api would send its requests (")
            && sentence.contains("to pool solo instead of pool wide: s1 (pool solo) would take "),
        "{sentence}"
    );
    assert!(sentence.contains("sampled requests, noise ±"), "{sentence}");
    let steps = strings(&v["next_steps"]);
    assert!(
        steps[0].contains("`tango reload --allow-shift solo`"),
        "{steps:?}"
    );
    // Every pool's own split is unchanged: the pools' gate passes it.
    let pools = v["predicted"].as_array().unwrap();
    assert!(pools.iter().all(|p| p["over_limit"] == false), "{v:#}");

    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    let live = answers(&t, "/api/items", 40).await;
    assert_eq!(live.len(), 4, "/api still goes to wide: {live:?}");
    assert!(live.keys().all(|b| b.starts_with('w')), "{live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_route_moved_to_a_one_backend_pool_applies_with_allow_shift() {
    let bs = backends().await;
    let t = Tango::start(&routed(&bs, "wide", "wide"));
    traffic(&t).await;

    t.write_config(&routed(&bs, "solo", "wide"));
    let out = tango_reload(&t, &["--allow-shift", "solo"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("applied: generation 2"));
    let allowed = lines.next().unwrap_or_default();
    assert!(
        allowed.starts_with("  shift allowed (by the request): s1 (pool solo) takes 100% of all requests instead of ")
            && allowed.ends_with("% after the route change"),
        "{stdout}"
    );
    assert_eq!(answers(&t, "/api/items", 20).await, counts(&[("s1", 20)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_route_moved_to_a_wider_pool_applies() {
    let bs = backends().await;
    let t = Tango::start(&routed(&bs, "pair", "wide"));
    traffic(&t).await;

    t.write_config(&routed(&bs, "wide", "pair"));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (200, &2.into()), "{v:#}");
    let routes = &v["routes"];
    assert_eq!(routes["over_limit"], false, "{v:#}");
    // /api leaves pair for wide: each of wide's backends rises, none above what p1 and
    // p2 take today.
    let moved = routes["moves"].as_array().unwrap();
    assert!(
        moved.iter().any(|m| m["route"] == "host * path /api"
            && m["from_pool"] == "pair"
            && m["to_pool"] == "wide"),
        "{v:#}"
    );
    let busiest = routes["busiest_pct"].as_f64().unwrap();
    let backends = routes["backends"].as_array().unwrap();
    for b in backends.iter().filter(|b| b["pool"] == "wide") {
        let to = b["to_pct"].as_f64().unwrap();
        assert!(to < busiest, "{b} rises above {busiest}: {v:#}");
    }
    let live = answers(&t, "/api/items", 40).await;
    assert_eq!(live.len(), 4, "{live:?}");
    assert!(live.keys().all(|b| b.starts_with('w')), "{live:?}");
}

/// `tango diff` makes the same prediction from an access log, and says it cannot
/// without one.
#[test]
fn tango_diff_predicts_the_route_move_from_an_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["w1", "w2", "w3", "w4", "p1", "p2", "s1"];
    let spec: Vec<(&str, std::net::SocketAddr)> = (names.iter().enumerate())
        .map(|(i, n)| (*n, format!("10.0.0.{}:80", i + 1).parse().unwrap()))
        .collect();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let old = write("old.toml", routed_at(&spec, "wide", "wide"));
    let new = write("new.toml", routed_at(&spec, "solo", "wide"));
    // 7 requests in 8 for /api.
    let log: String = (0..400)
        .map(|i| {
            let path = if i % 8 == 0 { "/" } else { "/api/items" };
            format!(
                "10.1.0.{} - - [10/Oct/2026:13:55:36 +0000] \"GET {path} HTTP/1.1\" 200 5\n",
                i % 250
            )
        })
        .collect();
    let log = write("access.log", log);
    let diff = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
            .arg("diff")
            .arg(&old)
            .arg(&new)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let log = log.to_str().unwrap();
    let (code, text) = diff(&["--access-log", log]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("routes: predicted from 400 requests of the access log"),
        "{text}"
    );
    assert!(
        text.contains("  - route host * path /api would send its requests (88% of all requests) to pool solo instead of pool wide"),
        "{text}"
    );
    assert!(
        text.contains("    s1 (pool solo): 12.5% -> 100.0% (+78.1 points over the busiest today)"),
        "{text}"
    );
    assert!(
        text.contains("verdict: FAIL: the new routes give s1 (pool solo) 100.0% of all requests where the busiest backend takes 21.9% today; if intended, pass --allow-shift solo"),
        "{text}"
    );
    let (code, text) = diff(&["--access-log", log, "--allow-shift", "solo"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = diff(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("routes: changed, not predicted: give the traffic with --access-log FILE"),
        "{text}"
    );
}

/// HTTP/2 carries the host as `:authority`, not a header: the sample keeps it, so a
/// host route is predicted on HTTP/2 traffic too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_route_taking_http2_traffic_to_a_one_backend_pool_is_refused() {
    let bs = backends().await;
    let live = routed(&bs, "wide", "wide");
    let t = Tango::start(&live);
    let mut h2 = h2c(&t).await;
    // Sequential and bounded: a few dozen sampled at 1 in 64.
    for _ in 0..3000 {
        let req = http::Request::get("http://shop.example/api/items")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let res = h2.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let host = "\n[[route]]\nhost = \"shop.example\"\npool = \"solo\"\n";
    let at = live.find("\n[[route]]").unwrap();
    t.write_config(&format!("{}{host}{}", &live[..at], &live[at..]));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (409, &1.into()), "{v:#}");
    let r = &v["refusals"][0];
    assert_eq!(
        (&r["gate"], &r["route"], &r["backend"]),
        (
            &"route".into(),
            &"host shop.example path /".into(),
            &"s1".into()
        ),
        "{v:#}"
    );
    assert_eq!(r["to_pct"].as_f64().unwrap().round(), 100.0, "{v:#}");
}
