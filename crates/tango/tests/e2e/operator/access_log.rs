//! The access log: every field operators expect, in JSON and in the combined format,
//! and a new file after logrotate's SIGUSR1.

use super::*;
use crate::backend::Backend;
use serde_json::{json, Value};

/// Pool `p` with backend `a`, and `/gone` routed to pool `gone`, whose two backends
/// refuse connections.
fn two_pools(a: std::net::SocketAddr) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[route]]\npath_prefix = \"/gone\"\npool = \"gone\"\n\n[[route]]\npool = \"p\"\n\n\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\nname = \"a\"\naddress = \"{a}\"\n\n\
         [[pool]]\nname = \"gone\"\nmax_attempts = 2\n\
         [[pool.backend]]\nname = \"d1\"\naddress = \"{}\"\n[[pool.backend]]\nname = \"d2\"\naddress = \"{}\"\n",
        dead_addr(),
        dead_addr()
    )
}

fn start(cfg: &str, format: &str) -> (Tango, tempfile::TempDir, std::path::PathBuf) {
    start_logged(cfg, format, &[])
}

/// Milliseconds with at most three decimals, as the log writes them.
fn ms(v: &Value) -> f64 {
    let s = v.to_string();
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= 3, "{s} has more than three decimals");
    v.as_f64().unwrap_or_else(|| panic!("{s} is not a number"))
}

#[tokio::test]
async fn json_lines_carry_every_field() {
    let a = Backend::start("a").await;
    let (t, _dir, path) = start(&two_pools(a.addr), "json");
    let (resp, port) = raw(
        t.addr(),
        "POST /sink?a=1&b=2 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: probe/1.0\r\n\
         Referer: http://ref.test/\r\nX-Request-Id: req-42\r\nContent-Length: 11\r\n\
         Connection: close\r\n\r\nhello world",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n11"), "{resp}");
    let lines = wait_lines(&path, 1);
    let mut v: Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    let obj = v.as_object_mut().unwrap();
    let ts = obj.remove("ts").unwrap();
    humantime::parse_rfc3339(ts.as_str().unwrap()).expect("ts is RFC 3339");
    let upstream = ms(&obj.remove("upstream_ms").unwrap());
    let total = ms(&obj.remove("total_ms").unwrap());
    assert!(upstream > 0.0 && total >= upstream, "{upstream} {total}");
    assert_eq!(
        v,
        json!({
            "request_id": "req-42", "listener": "main",
            "client": "127.0.0.1", "client_port": port,
            "method": "POST", "path": "/sink", "query": "a=1&b=2", "protocol": "HTTP/1.1",
            "host": "example.test", "status": 200, "bytes_in": 11, "bytes_out": 2,
            "user_agent": "probe/1.0", "referer": "http://ref.test/",
            "pool": "p", "backend": "a", "backend_address": a.addr.to_string(), "tries": 1,
        })
    );

    // Nothing answers: two tries, no upstream time, tango's own 502 body counted.
    let (resp, port) = raw(
        t.addr(),
        "GET /gone HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    let body_len = resp.split_once("\r\n\r\n").unwrap().1.len() as u64;
    let lines = wait_lines(&path, 2);
    let v: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(v["client_port"], port);
    assert_eq!(v["status"], 502);
    assert_eq!(v["pool"], "gone");
    assert_eq!(v["tries"], 2);
    assert_eq!(v["upstream_ms"], Value::Null);
    assert_eq!(v["bytes_in"], 0);
    assert_eq!(v["bytes_out"], body_len);
    assert_eq!(v["user_agent"], Value::Null);
    assert_eq!(v["query"], Value::Null);
    assert!(v["backend"] == "d1" || v["backend"] == "d2", "{v}");
}

#[tokio::test]
async fn combined_lines_read_as_nginx_combined_with_tango_fields() {
    let a = Backend::start("a").await;
    let (t, _dir, path) = start(&two_pools(a.addr), "combined");
    let (resp, _) = raw(
        t.addr(),
        "GET /source?n=100000 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: probe \"2\"\r\n\
         X-Request-Id: req-43\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let lines = wait_lines(&path, 1);
    let line = &lines[0];
    // 127.0.0.1 - - [29/Nov/2026:18:46:37 +0000] "GET ..." 200 100000 "-" "..." k=v ...
    let (head, rest) = line.split_once(" [").unwrap();
    assert_eq!(head, "127.0.0.1 - -");
    let (date, rest) = rest.split_once("] ").unwrap();
    assert_eq!(date.len(), "29/Nov/2026:18:46:37 +0000".len(), "{date}");
    assert!(date.ends_with(" +0000"), "{date}");
    let (fields, upstream) = rest.split_once(" upstream_ms=").unwrap();
    assert_eq!(
        fields,
        format!(
            "\"GET /source?n=100000 HTTP/1.1\" 200 100000 \"-\" \"probe \\\"2\\\"\" \
             request_id=req-43 listener=main host=example.test pool=p backend=a \
             backend_address={} tries=1 bytes_in=0",
            a.addr
        )
    );
    let (up, total) = upstream.split_once(" total_ms=").unwrap();
    for t in [up, total] {
        let (_, decimals) = t.split_once('.').unwrap();
        assert_eq!(decimals.len(), 3, "{t}");
        t.parse::<f64>().unwrap();
    }
    // `tango simulate` reads the file as an access log.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["simulate", t.config.to_str().unwrap(), "--pool", "p"])
        .arg("--access-log")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("pool p (round_robin), 1 requests"),
        "{stdout}"
    );
}

#[tokio::test]
async fn sigusr1_reopens_the_file_after_it_is_moved() {
    let a = Backend::start("a").await;
    let (t, dir, path) = start(&config("", &[("a", a.addr, 1)]), "json");
    let c = client();
    assert_eq!(get(&c, &t.url("/first")).await.0, 200);
    wait_lines(&path, 1);
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    t.signal("USR1");
    wait_log(&t, "access log reopened");
    assert_eq!(get(&c, &t.url("/second")).await.0, 200);
    let new = wait_lines(&path, 1);
    let old = wait_lines(&rotated, 1);
    let paths = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["path"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(paths(&old), ["/first"]);
    assert_eq!(paths(&new), ["/second"]);
    // And tango is still running.
    assert_eq!(get(&c, &t.url("/third")).await.0, 200);
}

/// An absolute-form target's host is the request's host (RFC 9112 3.2.2): the one it
/// was routed by, and the one logged, not a Host field that differs. On the engine
/// (plain) and on hyper's path (TLS) alike.
#[tokio::test]
async fn the_logged_host_is_the_absolute_target_s_not_the_host_field() {
    let a = Backend::start("a").await;
    let request =
        b"GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\n\
         listen = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"p\"\n[[pool.backend]]\n\
         name = \"a\"\naddress = \"{}\"\n",
        a.addr
    );
    let (t, _dir, path) = start(&cfg, "json");
    let mut c = crate::framing::Raw::connect(t.addr()).await;
    c.send(request).await;
    assert_eq!(c.status().await, Some(200));
    let certs = tempfile::tempdir().unwrap();
    let (tls, ck) = crate::protocols::tls_config(&cfg, certs.path());
    let (tt, _tdir, tpath) = start(&tls, "json");
    let mut c =
        crate::framing::Raw::new(crate::protocols::tls_connect(&tt, &ck, b"http/1.1").await);
    c.send(request).await;
    assert_eq!(c.status().await, Some(200));
    for (name, path) in [("plain", &path), ("tls", &tpath)] {
        let v: Value = serde_json::from_str(&wait_lines(path, 1)[0]).expect("a JSON line");
        assert_eq!(v["host"], "b.example", "{name}: {v}");
    }
}
