//! The harness: start the real `tango` binary on loopback with a config, and real
//! backends in this process, each on port 0.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Tango {
    pub child: Child,
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub listeners: Vec<(String, SocketAddr)>,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

impl Tango {
    /// Start tango with `config` (TOML). Listener and admin addresses in the config
    /// should use port 0; the bound addresses are read from tango's stdout.
    pub fn start(config: &str) -> Tango {
        Self::start_with(config, &[])
    }

    pub fn start_with(config: &str, extra_args: &[&str]) -> Tango {
        Self::start_env(config, extra_args, &[])
    }

    /// `start_with`, with environment variables for tango (`TANGO_ADMIN_TOKEN` is
    /// removed unless given here, so the caller's environment cannot change a test).
    pub fn start_env(config: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Tango {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tango.toml");
        std::fs::write(&path, config).expect("write config");
        let log = dir.path().join("tango.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tango"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .env_remove("TANGO_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start tango");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut listeners = Vec::new();
        let admin;
        loop {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    let _ = child.wait();
                    panic!(
                        "tango exited before it was ready; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["listening", name, url] => listeners.push((name.to_string(), parse_url(url))),
                ["admin", url] => {
                    admin = parse_url(url);
                    break;
                }
                _ => {}
            }
        }
        // Keep draining stdout so tango never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Tango {
            child,
            _dir: dir,
            config: path,
            listeners,
            admin,
            log,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(&self.config, config).expect("rewrite config");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Wait for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Tango {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_url(url: &str) -> SocketAddr {
    let url = url.strip_prefix("https://").unwrap_or(url);
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("address in tango's stdout")
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(32)
        .build_http()
}

/// GET a URL; returns status and body text.
pub async fn get(c: &HttpClient, url: &str) -> (u16, String) {
    send(
        c,
        http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

pub async fn send(c: &HttpClient, req: http::Request<Full<Bytes>>) -> (u16, String) {
    let resp = tokio::time::timeout(Duration::from_secs(20), c.request(req))
        .await
        .expect("response in time")
        .expect("response");
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// POST to the admin API.
pub async fn admin_post(t: &Tango, path: &str) -> (u16, serde_json::Value) {
    let c = client();
    let (s, body) = send(
        &c,
        http::Request::post(t.admin_url(path))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    (
        s,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

pub async fn admin_get(t: &Tango, path: &str) -> serde_json::Value {
    let (s, body) = get(&client(), &t.admin_url(path)).await;
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// The status API's entry for backend `name` of the first pool.
pub fn backend_entry<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["pools"][0]["backends"]
        .as_array()
        .expect("backends in status")
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("backend {name} not in status: {status}"))
}

/// Poll the status API until `pred` holds, within `limit`; returns the status that
/// satisfied it.
pub async fn wait_status(
    t: &Tango,
    what: &str,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = admin_get(t, "/api/v1/status").await;
        if pred(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}; last status: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A minimal config around one pool of `backends` (name, address, weight).
pub fn config(pool_extra: &str, backends: &[(&str, SocketAddr, u32)]) -> String {
    let mut s = String::from(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"p\"\n",
    );
    s.push_str(pool_extra);
    s.push('\n');
    for (name, addr, w) in backends {
        s.push_str(&format!(
            "[[pool.backend]]\nname = \"{name}\"\naddress = \"{addr}\"\nweight = {w}\n"
        ));
    }
    s
}

/// An address nothing listens on (bound then released; loopback only).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `tango check` on `text`, written as `name` in `dir`: its exit code and its output
/// (stdout then stderr).
pub fn check_in(dir: &std::path::Path, name: &str, text: &str) -> (i32, String) {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("check")
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// An h2c client to tango (hyper's side of it): one connection, any number of
/// concurrent streams.
pub async fn h2c(t: &Tango) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(t.addr()).await.unwrap();
    let (h2, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    h2
}

/// GET `path` from tango on the h2c connection `h2`: status and body, within 20 s.
pub async fn h2_get(
    mut h2: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    t: &Tango,
    path: &str,
) -> (u16, String) {
    let req = http::Request::get(format!("http://{}{path}", t.addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), h2.send_request(req))
        .await
        .expect("in time")
        .expect("an answer");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// GET `path` from tango over a new h2c connection: status and body.
pub async fn h2c_get(t: &Tango, path: &str) -> (u16, String) {
    h2_get(h2c(t).await, t, path).await
}

/// Whether the first pool's first backend's in-flight count becomes `want` within
/// `within` (polled: the proxy taking up or letting go of a request shows nowhere else).
pub async fn in_flight_becomes(t: &Tango, want: u64, within: Duration) -> bool {
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        let v = admin_get(t, "/api/v1/status").await;
        if v["pools"][0]["backends"][0]["in_flight"] == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether the status API says `backend` (of the first pool) is healthy.
pub async fn healthy(t: &Tango, backend: &str) -> Option<bool> {
    let status = admin_get(t, "/api/v1/status").await;
    status["pools"][0]["backends"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == backend)?["healthy"]
        .as_bool()
}

/// tango started with `cfg` and `args`, writing its access log in `format` to a file
/// of a temporary directory: tango, the directory (kept while it lives) and the file.
pub fn start_logged(
    cfg: &str,
    format: &str,
    args: &[&str],
) -> (Tango, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut all = vec![
        "--access-log",
        path.to_str().unwrap(),
        "--access-log-format",
        format,
    ];
    all.extend_from_slice(args);
    let t = Tango::start_with(cfg, &all);
    (t, dir, path)
}
