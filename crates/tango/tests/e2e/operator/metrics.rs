//! `/metrics` in the format the scraper asks for, accepted by `promtool check metrics`.

use super::*;
use crate::backend::Backend;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A scrape: the content type and the body.
async fn scrape(t: &Tango, accept: Option<&str>) -> (String, String) {
    let mut req = http::Request::get(t.admin_url("/metrics"));
    if let Some(a) = accept {
        req = req.header(http::header::ACCEPT, a);
    }
    let resp = client()
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, String::from_utf8(body.to_vec()).unwrap())
}

/// Every family named in a `# TYPE` line has a `# HELP` line.
fn families_without_help(text: &str) -> Vec<String> {
    let named = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|r| r.split(' ').next())
            .map(str::to_string)
            .collect()
    };
    let helped = named("# HELP ");
    named("# TYPE ")
        .into_iter()
        .filter(|f| !helped.contains(f))
        .collect()
}

async fn tango_with_traffic() -> (Tango, Backend) {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    let c = client();
    for _ in 0..3 {
        assert_eq!(get(&c, &t.url("/")).await.0, 200);
    }
    (t, a)
}

#[tokio::test]
async fn promtool_check_metrics_accepts_a_real_scrape() {
    let (t, _a) = tango_with_traffic().await;
    let (ct, text) = scrape(&t, None).await;
    assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");
    assert_eq!(families_without_help(&text), Vec::<String>::new());
    assert!(
        text.lines()
            .any(|l| l == "# TYPE tango_backend_requests_total counter"),
        "{text}"
    );
    promtool_accepts(&text);
}

/// `promtool check metrics` on `text`: no error, no remark.
fn promtool_accepts(text: &str) {
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs it)");
    use std::io::Write as _;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool: {said}\n{text}");
    assert_eq!(said, "", "promtool has remarks");
}

/// A backend's name may hold any character; in a label value a quote, a backslash and
/// a newline are escaped (both formats spell them alike), or the whole scrape fails.
#[tokio::test]
async fn backend_names_with_quotes_backslashes_and_newlines_are_escaped() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    // As written in the TOML file (basic strings): the names are `say "hi"`,
    // `back\slash` and `two` newline `lines ünï—日本`; the label values spell them alike.
    let t = Tango::start(&config(
        "",
        &[
            (r#"say \"hi\""#, a.addr, 1),
            (r"back\\slash", b.addr, 1),
            (r"two\nlines ünï—日本", c.addr, 1),
        ],
    ));
    let cl = client();
    for _ in 0..6 {
        assert_eq!(get(&cl, &t.url("/")).await.0, 200);
    }
    let (_, text) = scrape(&t, None).await;
    promtool_accepts(&text);
    for name in [r#"say \"hi\""#, r"back\\slash", r"two\nlines ünï—日本"] {
        let line =
            format!("tango_backend_requests_total{{pool=\"p\",backend=\"{name}\",code=\"2xx\"}} 2");
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let (_, om) = scrape(&t, Some(PROMETHEUS_ACCEPT)).await;
    assert!(
        om.lines()
            .any(|l| l.starts_with(r#"tango_backend_healthy{pool="p",backend="say \"hi\""} "#)),
        "{om}"
    );
}

#[tokio::test]
async fn openmetrics_when_the_scraper_asks_for_it_with_an_inf_bucket() {
    let (t, _a) = tango_with_traffic().await;
    let (ct, text) = scrape(&t, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(text.lines().last(), Some("# EOF"));
    assert_eq!(families_without_help(&text), Vec::<String>::new());
    let inf: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("le=\""))
        .filter(|l| l.contains("Inf"))
        .collect();
    assert_eq!(
        inf,
        ["tango_backend_request_duration_seconds_bucket{le=\"+Inf\",pool=\"p\",backend=\"a\"} 3"]
    );
    // The same in the Prometheus text format.
    let (_, text) = scrape(&t, Some("text/plain;version=0.0.4")).await;
    assert!(text.lines().any(|l| {
        l == "tango_backend_request_duration_seconds_bucket{le=\"+Inf\",pool=\"p\",backend=\"a\"} 3"
    }));
}
