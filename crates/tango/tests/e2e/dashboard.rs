//! The dashboard in a real browser: a weight typo ships through a running tango (with
//! an admin token), and headless Chromium (Debian's `chromium`, which scripts/test.sh
//! installs) loads the admin listener's `/` and shows the culprit's share bar and the
//! alert's cause. A screenshot is kept under the test target's temporary directory.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "dashboard-e2e-token-0123";

/// About 300 requests per second until `stop`, for at most 90 s.
fn drive(url: String, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = client();
        let limit = Arc::new(tokio::sync::Semaphore::new(32));
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / 300));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let end = Instant::now() + Duration::from_secs(90);
        while !stop.load(Relaxed) && Instant::now() < end {
            tick.tick().await;
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let (c, url, sent) = (c.clone(), url.clone(), sent.clone());
            tokio::spawn(async move {
                let _ = get(&c, &url).await;
                sent.fetch_add(1, Relaxed);
                drop(permit);
            });
        }
    })
}

/// `GET /api/v1/<path>` with the token.
async fn api(t: &Tango, path: &str) -> serde_json::Value {
    let req = http::Request::get(t.admin_url(&format!("/api/v1/{path}")))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (s, body) = send(&client(), req).await;
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Poll `path` (every 200 ms, up to `limit`) until `f` finds something in it.
async fn wait_api<T>(
    t: &Tango,
    path: &str,
    limit: Duration,
    what: &str,
    f: impl Fn(&serde_json::Value) -> Option<T>,
) -> T {
    let end = Instant::now() + limit;
    loop {
        let v = api(t, path).await;
        if let Some(x) = f(&v) {
            return x;
        }
        assert!(
            Instant::now() < end,
            "{what} within {limit:?}: {v:#}\nlog:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The cause sentence of the open incident headed by b2 when the API groups alerts
/// into incidents (`incidents`, or `open`), else of b2's active over_share alert.
fn culprit_cause(v: &serde_json::Value) -> Option<String> {
    let sentence = |x: &serde_json::Value| x["cause"]["sentence"].as_str().map(str::to_string);
    if let Some(open) = v["incidents"].as_array().or(v["open"].as_array()) {
        let i = open
            .iter()
            .find(|i| i["headline"] == "b2" && i["resolved_ms"].is_null())?;
        return sentence(i);
    }
    let a = v["active"]
        .as_array()?
        .iter()
        .find(|a| a["evidence"]["backend"] == "b2" && a["evidence"]["kind"] == "over_share")?;
    sentence(a)
}

/// Run headless Chromium on `url` with `extra` arguments (at most 90 s); its stdout.
fn chromium(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = profile.path().join("stdout");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=6000",
            "--window-size=1400,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `chromium` ({e}): install Debian's chromium package (scripts/test.sh does)")
        });
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(out).unwrap()
}

/// `chromium` off the test's async workers, which keep the load going meanwhile.
async fn browse(url: &str, extra: &[&str]) -> String {
    let url = url.to_string();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        chromium(&url, &extra)
    })
    .await
    .unwrap()
}

/// The start tag of the first element carrying every one of `attrs` (`name="value"`).
fn tag_with<'a>(dom: &'a str, attrs: &[&str]) -> Option<&'a str> {
    let mut rest = dom;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>')? + i;
        let tag = &rest[i..=end];
        if attrs.iter().all(|a| tag.contains(a)) {
            return Some(tag);
        }
        rest = &rest[end + 1..];
    }
    None
}

/// The number in attribute `name` of start tag `tag`.
fn attr(tag: &str, name: &str) -> f64 {
    let key = format!(" {name}=\"");
    let i = tag.find(&key).unwrap_or_else(|| panic!("{name} in {tag}")) + key.len();
    let v = &tag[i..i + tag[i..].find('"').unwrap()];
    v.parse()
        .unwrap_or_else(|_| panic!("{name}={v:?} in {tag}"))
}

/// The text of the element that `open` starts (no nested elements).
fn text_after<'a>(dom: &'a str, open: &str) -> Option<&'a str> {
    let i = dom.find(open)? + open.len();
    Some(&dom[i..i + dom[i..].find('<')?])
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_weight_typo_s_culprit_and_cause() {
    let bs = [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
        Backend::start("b4").await,
    ];
    let cfg = |w2: u32| {
        let spec: Vec<(&str, _, u32)> = bs
            .iter()
            .map(|b| (b.name.as_str(), b.addr, if b.name == "b2" { w2 } else { 1 }))
            .collect();
        // The guard would refuse the typo: this is about what the dashboard shows when
        // one ships (the watch tests do the same).
        config("", &spec) + "\n[guard]\nenabled = false\nrollback = false\n"
    };
    let mut t = Tango::start_env(&cfg(1), &[], &[("TANGO_ADMIN_TOKEN", TOKEN)]);
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let load = drive(t.url("/"), stop.clone(), sent.clone());

    let cause = ship_the_typo(&mut t, &cfg(10)).await;
    the_page_holds_nothing_without_the_token(&t).await;
    let admin = t.admin_url("/");

    let url = format!("{admin}?token={TOKEN}");
    let dom = browse(&url, &["--dump-dom"]).await;
    std::fs::write(artifact("dashboard.html"), &dom).unwrap();
    the_shares_show_the_typo(&dom);
    the_incident_names_the_culprit_and_cause(&dom, &cause);
    screenshot(&url).await;

    stop.store(true, Relaxed);
    load.await.unwrap();
    assert!(sent.load(Relaxed) > 0);
    t.signal("TERM");
    t.wait_exit(Duration::from_secs(10));
}

/// Balanced traffic first, so the chart has a before; then the typo (`typo`, b2's
/// weight 1 to 10) ships by SIGHUP. Returns the alert's cause once b2's observed share
/// has moved.
async fn ship_the_typo(t: &mut Tango, typo: &str) -> String {
    wait_api(
        t,
        "history",
        Duration::from_secs(15),
        "balanced traffic",
        |v| {
            let n = v["points"]
                .as_array()?
                .iter()
                .filter(|p| p["pools"][0]["rate_rps"].as_f64() > Some(100.0))
                .count();
            (n >= 8).then_some(())
        },
    )
    .await;
    t.write_config(typo);
    t.signal("HUP");
    let cause = wait_api(
        t,
        "alerts",
        Duration::from_secs(20),
        "an over_share alert on b2",
        culprit_cause,
    )
    .await;
    // The detector's observed share has moved to the typo's split (10 of 13).
    wait_api(
        t,
        "history",
        Duration::from_secs(20),
        "b2's observed share above 60%",
        |v| {
            let last = v["points"].as_array()?.last()?;
            let b2 = last["pools"][0]["backends"]
                .as_array()?
                .iter()
                .find(|b| b["backend"] == "b2")?;
            (b2["observed"].as_f64()? > 0.6).then_some(())
        },
    )
    .await;
    cause
}

/// Without the token the page is served but holds no data, its data is refused, and
/// the page asks for a token.
async fn the_page_holds_nothing_without_the_token(t: &Tango) {
    let admin = t.admin_url("/");
    let (status, page) = get(&client(), &admin).await;
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    let (status, _) = get(&client(), &t.admin_url("/api/v1/history")).await;
    assert_eq!(status, 401);
    let dom = browse(&admin, &["--dump-dom"]).await;
    assert!(
        tag_with(&dom, &["id=\"login\""]).is_some_and(|t| !t.contains("hidden")),
        "{dom}"
    );
    assert_eq!(tag_with(&dom, &["data-backend="]), None, "{dom}");
}

/// The culprit's bars: configured and effective 10/13, observed near it; the rest small.
fn the_shares_show_the_typo(dom: &str) {
    let row = tag_with(
        dom,
        &["class=\"share\"", "data-backend=\"b2\"", "data-configured="],
    )
    .unwrap_or_else(|| panic!("no share row for b2: {dom}"));
    assert!(
        (attr(row, "data-configured") - 10.0 / 13.0).abs() < 1e-9,
        "{row}"
    );
    assert!(
        (attr(row, "data-effective") - 10.0 / 13.0).abs() < 1e-9,
        "{row}"
    );
    assert!(attr(row, "data-observed") > 0.6, "{row}");
    for other in ["b1", "b3", "b4"] {
        let r = tag_with(
            dom,
            &[
                "class=\"share\"",
                &format!("data-backend=\"{other}\""),
                "data-observed=",
            ],
        )
        .unwrap();
        assert!(
            (attr(r, "data-configured") - 1.0 / 13.0).abs() < 1e-9,
            "{r}"
        );
        assert!(attr(r, "data-observed") < 0.15, "{r}");
    }
}

/// One incident (the alerts on b1, b3 and b4 share its cause), headed by its cause
/// sentence, with b2's evidence at several times its old share; the reload is among the
/// guard's decisions and on the timeline.
fn the_incident_names_the_culprit_and_cause(dom: &str, cause: &str) {
    assert_eq!(dom.matches("<div class=\"cause\">").count(), 1, "{dom}");
    assert_eq!(
        text_after(dom, "<div class=\"cause\">"),
        Some(html_escape(cause).as_str()),
        "{dom}"
    );
    assert!(
        cause.contains("b2") && cause.contains("weight from 1 to 10"),
        "{cause}"
    );
    let ev = tag_with(dom, &["class=\"evidence\"", "data-backend=\"b2\""]).unwrap();
    assert!(
        attr(ev, "data-observed") > 2.0 * attr(ev, "data-expected"),
        "{ev}"
    );
    let guard = &dom[dom.find("id=\"guard\"").unwrap()..dom.find("id=\"timeline\"").unwrap()];
    assert!(guard.contains("b2 weight: 1 → 10"), "{guard}");
}

/// A screenshot of the signed-in page, kept as an artifact.
async fn screenshot(url: &str) {
    let shot = artifact("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(url, &[&format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    eprintln!("screenshot: {}", shot.display());
}
