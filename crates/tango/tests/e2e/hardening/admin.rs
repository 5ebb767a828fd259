//! The admin API: every `/api/v1/*` call needs the token when there is one, the token
//! in force cannot be removed by a reload, the served configuration never shows it, and
//! `/metrics` and `/ready` stay open.

use super::*;
use crate::backend::Backend;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REDACTED: &str = "<redacted-admin-token>";

/// `admin.token` as the ordinary TOML parser reads the served text.
fn served_token(text: &str) -> Option<String> {
    let t: toml::Table = text.parse().expect("the served configuration is TOML");
    t.get("admin")?.get("token")?.as_str().map(str::to_string)
}

#[tokio::test]
async fn every_api_call_needs_the_token_and_the_config_never_shows_it() {
    let a = Backend::start("a").await;
    let cfg = with_admin(
        &config("", &[("a", a.addr, 1)]),
        &format!("'token' = \"{TOKEN}\"   # the spelling is the parser's business"),
    );
    let t = Tango::start(&cfg);
    for (method, path) in [
        ("GET", "/api/v1/config"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/journal"),
        ("GET", "/api/v1/traffic"),
        ("POST", "/api/v1/reload"),
    ] {
        let (s, body) = call(&t, method, path, None).await;
        assert_eq!(s, 401, "{method} {path} without a token: {body}");
        assert!(!body.contains(TOKEN));
        let (s, _) = call(&t, method, path, Some("Bearer 0123456789abcdef0124")).await;
        assert_eq!(s, 401, "{method} {path} with a wrong token");
    }
    // The scheme is case-insensitive.
    let (s, text) = call(
        &t,
        "GET",
        "/api/v1/config",
        Some(&format!("bearer {TOKEN}")),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains(TOKEN), "the token is served:\n{text}");
    assert_eq!(served_token(&text).as_deref(), Some(REDACTED));
    assert_eq!(text, cfg.replace(TOKEN, REDACTED), "only the value changes");
    let status = authed_json(&t, "/api/v1/status").await;
    assert_eq!(
        status["pools"][0]["backends"][0]["address"],
        a.addr.to_string()
    );
    // Metrics and readiness stay open.
    let (s, metrics) = call(&t, "GET", "/metrics", None).await;
    assert_eq!(s, 200);
    assert!(metrics.contains("tango_config_generation 1"), "{metrics}");
    assert_eq!(
        call(&t, "GET", "/ready", None).await,
        (200, "ready\n".to_string())
    );
}

/// Two `Authorization` fields on an API call are refused with 400, whatever their
/// order and whether either holds the token: the field is a singleton (RFC 9110 11.6.2),
/// and taking one of two would let whatever sits in front of tango and tango disagree
/// on which credentials were presented. On the proxied path the fields are the
/// backend's business, and reach it as they came.
#[tokio::test]
async fn two_authorization_fields_are_refused_on_the_api_and_forwarded_as_they_came() {
    let a = Backend::start("a").await;
    let t = Tango::start(&with_admin(
        &config("", &[("a", a.addr, 1)]),
        &format!("token = \"{TOKEN}\""),
    ));
    let good = format!("Bearer {TOKEN}");
    let bad = "Bearer 0123456789abcdef0124".to_string();
    for pair in [[&good, &bad], [&bad, &good], [&good, &good]] {
        let req = http::Request::get(t.admin_url("/api/v1/status"))
            .header(http::header::AUTHORIZATION, pair[0].as_str())
            .header(http::header::AUTHORIZATION, pair[1].as_str())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (s, body) = send(&client(), req).await;
        assert_eq!(s, 400, "{pair:?}: {body}");
        assert!(body.contains("more than one Authorization"), "{body}");
        assert!(!body.contains(TOKEN), "{body}");
    }
    assert_eq!(call(&t, "GET", "/api/v1/status", Some(&good)).await.0, 200);

    // Forwarded unchanged, both of them, in order: plain HTTP/1.1 and HTTP/2.
    let req = http::Request::get(t.url("/headers"))
        .header(http::header::AUTHORIZATION, "Basic b25l")
        .header(http::header::AUTHORIZATION, "Basic dHdv")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), req).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("\"authorization\":\"Basic b25l, Basic dHdv\""),
        "{body}"
    );
    let mut h2 = h2c(&t).await;
    let req = http::Request::get(t.url("/headers"))
        .header(http::header::AUTHORIZATION, "Basic b25l")
        .header(http::header::AUTHORIZATION, "Basic dHdv")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = h2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("\"authorization\":\"Basic b25l, Basic dHdv\""),
        "{body}"
    );
}

#[tokio::test]
async fn a_reload_that_removes_the_token_keeps_the_token_in_force() {
    let a = Backend::start("a").await;
    let open = config("", &[("a", a.addr, 1)]);
    let t = Tango::start_with(
        &with_admin(&open, &format!("token = \"{TOKEN}\"")),
        &["--log-format", "json"],
    );
    // SIGHUP to a file without a token.
    t.write_config(&open);
    t.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while authed_json(&t, "/api/v1/status").await["generation"] != 2 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, body) = call(&t, "POST", "/api/v1/reload", None).await;
    assert_eq!(s, 401, "a reload without the token was accepted: {body}");
    let (s, body) = call(&t, "GET", "/api/v1/config", None).await;
    assert_eq!(s, 401, "{body}");
    let (s, body) = call(
        &t,
        "POST",
        "/api/v1/reload",
        Some(&format!("bearer {TOKEN}")),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let warnings: Vec<_> = json_log(&t)
        .into_iter()
        .filter(|l| l["level"] == "WARN")
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the reloaded configuration has no admin token"))
        })
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "one per generation without it:\n{}",
        t.log()
    );
    assert_eq!(
        warnings[0]["message"],
        "the reloaded configuration has no admin token; the admin API keeps requiring the token it started with (admin.token) until tango restarts"
    );
    assert_eq!(warnings[0]["generation"], 2);
    assert!(!t.log().contains(TOKEN), "the token is in the log");
}

#[tokio::test]
async fn the_token_can_come_from_a_file_or_the_environment() {
    let a = Backend::start("a").await;
    let base = config("", &[("a", a.addr, 1)]);
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("admin-token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let t = Tango::start(&with_admin(
        &base,
        &format!("token_file = \"{}\"", file.display()),
    ));
    assert_eq!(call(&t, "GET", "/api/v1/status", None).await.0, 401);
    assert_eq!(authed_json(&t, "/api/v1/status").await["generation"], 1);
    drop(t);

    // The environment wins over the file; the token is scrubbed even from a comment.
    let other = "fedcba9876543210fedc";
    let cfg = with_admin(
        &base,
        &format!("token = \"{other}\"\n# ops note: the live token is {TOKEN}"),
    );
    let t = Tango::start_env(&cfg, &[], &[("TANGO_ADMIN_TOKEN", TOKEN)]);
    let (s, _) = call(
        &t,
        "GET",
        "/api/v1/status",
        Some(&format!("Bearer {other}")),
    )
    .await;
    assert_eq!(s, 401, "the file's token is overridden");
    let (s, text) = call(
        &t,
        "GET",
        "/api/v1/config",
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(text, cfg.replace(other, REDACTED).replace(TOKEN, REDACTED));

    // A token file that cannot be read stops tango at start, naming it.
    let missing = secrets.path().join("missing");
    let (ok, err) = run_to_exit(&with_admin(
        &base,
        &format!("token_file = \"{}\"", missing.display()),
    ));
    assert!(!ok);
    assert_eq!(
        err.lines().next().unwrap_or(""),
        format!(
            "error: cannot read admin.token_file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    // At its line, with a fix, as a mistake in the file is told.
    assert!(err.contains("admin.token_file"), "{err}");
    assert!(
        err.contains("help: make the file readable by tango"),
        "{err}"
    );
    // So is a state directory that cannot be made (nothing can be made under /proc).
    let (ok, err) = run_to_exit(&with_admin(&base, "state_dir = \"/proc/tango-state\""));
    assert!(!ok);
    assert!(
        err.starts_with("error: cannot create state_dir /proc/tango-state"),
        "{err}"
    );
    assert!(err.contains("admin.state_dir"), "{err}");
    assert!(err.contains("help: create the directory"), "{err}");
}

#[test]
fn token_and_token_file_together_are_refused_at_their_line() {
    let cfg = with_admin(
        &config("", &[("a", dead_addr(), 1)]),
        &format!("token = \"{TOKEN}\"\ntoken_file = \"/etc/tango/token\""),
    );
    let (ok, err) = run_to_exit(&cfg);
    assert!(!ok, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "error: admin.token and admin.token_file are both set"
    );
    assert!(
        lines[1].trim_start().starts_with("--> ") && lines[1].ends_with("tango.toml:3:14"),
        "{err}"
    );
}

#[tokio::test]
async fn ready_is_open_and_turns_503_while_draining() {
    let b = Backend::start("a").await;
    let token_cfg = with_admin(
        &config("", &[("a", b.addr, 1)]),
        &format!("token = \"{TOKEN}\""),
    );
    let mut t = Tango::start(&token_cfg);
    assert_eq!(
        call(&t, "GET", "/ready", None).await,
        (200, "ready\n".into())
    );
    let slow = {
        let url = t.url("/slow?ms=1500");
        tokio::spawn(async move { get(&client(), &url).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.hits() == 0 {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.signal("TERM");
    // The request keeps the drain going; the admin API answers through it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, body) = call(&t, "GET", "/ready", None).await;
        if s == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert_eq!((s, body.as_str()), (200, "ready\n"));
        assert!(Instant::now() < deadline, "/ready never said draining");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(slow.await.unwrap(), (200, "a\n".to_string()));
    let status = t.wait_exit(Duration::from_secs(10)).expect("tango exits");
    assert!(status.success(), "{status:?}\n{}", t.log());
}

/// Run `tango run` on `cfg`, expecting it to stop by itself; its success and stderr.
fn run_to_exit(cfg: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tango.toml");
    std::fs::write(&path, cfg).unwrap();
    let err = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("TANGO_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tango started with a configuration it should refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), std::fs::read_to_string(&err).unwrap())
}

/// A refusal under `/api/` is JSON with an `error`, whoever refuses: an unknown path, a
/// method the path does not take, a query that is not a number, a body over the limit,
/// as much as the API's own refusals. The page and `/metrics` are not the API's.
#[tokio::test]
async fn every_refusal_of_the_api_is_json() {
    use http_body_util::BodyExt as _;
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    let big = vec![b'a'; 3 << 20];
    let cases: [(&str, &str, &[u8], u16, &str); 5] = [
        ("GET", "/api/v1/nope", b"", 404, "not found"),
        ("POST", "/api/v1/status", b"", 405, "method not allowed"),
        ("GET", "/api/v1/journal?from_ms=abc", b"", 400, "from_ms"),
        ("POST", "/api/v1/reload", &big, 413, "length limit"),
        (
            "POST",
            "/api/v1/reload",
            b"{\"force\": 1}",
            400,
            "not a reload request",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let req = http::Request::builder()
            .method(method)
            .uri(t.admin_url(path))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let resp = client().request(req).await.unwrap();
        assert_eq!(resp.status(), status, "{method} {path}");
        let ct = resp.headers()[http::header::CONTENT_TYPE].clone();
        assert_eq!(ct, "application/json", "{method} {path}");
        if status == 405 {
            assert_eq!(resp.headers()[http::header::ALLOW], "GET,HEAD");
        }
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text:?}"));
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {v}");
    }
    assert_eq!(call(&t, "GET", "/nope", None).await.0, 404);
}
