//! Listeners are known by name: several on port 0 each get a port of their own, and a
//! reload keeps, starts and stops the right sockets (a kept listener's connections go
//! on), and says where each listens.

use crate::backend::Backend;
use crate::support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A configuration of `listeners` (name, address, extra settings) in front of one
/// backend. The guard is off: these reloads move no traffic between backends.
fn cfg(listeners: &[(&str, &str, &str)], backend: SocketAddr) -> String {
    let mut s = String::from("[admin]\nlisten = \"127.0.0.1:0\"\n");
    for (name, listen, extra) in listeners {
        s.push_str(&format!(
            "[[listener]]\nname = \"{name}\"\nlisten = \"{listen}\"\n{extra}\n"
        ));
    }
    s + &format!(
        "[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"{backend}\"\n\
         [guard]\nenabled = false\nrollback = false\n"
    )
}

/// The listeners the status API reports: (name, address).
async fn status_listeners(t: &Tango) -> Vec<(String, SocketAddr)> {
    let v = admin_get(t, "/api/v1/status").await;
    (v["listeners"].as_array().expect("listeners"))
        .iter()
        .map(|l| {
            let name = l["name"].as_str().unwrap().to_string();
            (name, l["address"].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

/// Where the status API says `name` listens.
async fn address_of(t: &Tango, name: &str) -> Option<SocketAddr> {
    let all = status_listeners(t).await;
    all.into_iter().find(|(n, _)| n == name).map(|(_, a)| a)
}

/// Write `text` as the configuration and reload it; it must apply.
async fn reload(t: &Tango, text: &str) {
    t.write_config(text);
    let (s, v) = admin_post(t, "/api/v1/reload").await;
    assert_eq!(
        (s, &v["result"]),
        (200, &"applied".into()),
        "{v}\n{}",
        t.log()
    );
}

/// A keep-alive connection to tango, one GET at a time.
pub struct KeepAlive(pub TcpStream);

impl KeepAlive {
    pub async fn open(addr: SocketAddr) -> KeepAlive {
        KeepAlive(TcpStream::connect(addr).await.expect("connect"))
    }

    /// GET / on this connection: the body of a `200`.
    pub async fn get(&mut self) -> String {
        let s = &mut self.0;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("the connection is open");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let read = async {
            loop {
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = (text[..end].lines())
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .expect("a length");
                    if got.len() >= end + 4 + len {
                        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                        return text[end + 4..end + 4 + len].to_string();
                    }
                }
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an answer in time")
    }
}

/// Whether connecting to `addr` is refused within 5 s (the listener's sockets closed).
async fn refused(addr: SocketAddr) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn listeners_on_port_0_get_a_port_each_and_all_serve() {
    let b = Backend::start("b").await;
    let l = [
        ("a", "127.0.0.1:0", ""),
        ("b", "127.0.0.1:0", ""),
        ("c", "127.0.0.1:0", ""),
    ];
    let t = Tango::start(&cfg(&l, b.addr));
    let names: Vec<&str> = t.listeners.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "one startup line each");
    let ports: std::collections::HashSet<u16> = t.listeners.iter().map(|(_, a)| a.port()).collect();
    assert_eq!(ports.len(), 3, "a port each: {:?}", t.listeners);
    assert_eq!(
        status_listeners(&t).await,
        t.listeners,
        "the status API agrees"
    );
    for (name, addr) in &t.listeners {
        let (s, body) = get(&client(), &format!("http://{addr}/")).await;
        assert_eq!((s, body.as_str()), (200, "b\n"), "listener {name}");
    }
}

/// The same file again, then a changed setting: every listener keeps its port and its
/// connections, and the new setting applies to new connections.
#[tokio::test]
async fn a_reload_keeps_each_listener_by_name() {
    let b = Backend::start("b").await;
    let both = [("a", "127.0.0.1:0", ""), ("b", "127.0.0.1:0", "")];
    let t = Tango::start(&cfg(&both, b.addr));
    let before = t.listeners.clone();
    let mut kept = Vec::new();
    for (_, addr) in &before {
        let mut c = KeepAlive::open(*addr).await;
        assert_eq!(c.get().await, "b\n");
        kept.push(c);
    }
    reload(&t, &cfg(&both, b.addr)).await;
    assert_eq!(
        status_listeners(&t).await,
        before,
        "the same file keeps every port"
    );
    let quick = [("a", "127.0.0.1:0", "header_timeout = \"300ms\""), both[1]];
    reload(&t, &cfg(&quick, b.addr)).await;
    assert_eq!(
        status_listeners(&t).await,
        before,
        "a changed setting keeps the port"
    );
    for c in &mut kept {
        assert_eq!(c.get().await, "b\n", "a kept listener's connection goes on");
    }
    // The new header timeout holds for a new connection on a's socket.
    let mut s = TcpStream::connect(before[0].1).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(
        r.is_ok() && started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A listener removed stops (its port refuses connections), one added on port 0 gets
/// a port of its own, and the one left keeps its port and connections.
#[tokio::test]
async fn a_reload_stops_removed_listeners_and_starts_added_ones() {
    let b = Backend::start("b").await;
    let both = [("a", "127.0.0.1:0", ""), ("b", "127.0.0.1:0", "")];
    let t = Tango::start(&cfg(&both, b.addr));
    let (a, gone) = (t.listeners[0].1, t.listeners[1].1);
    let mut kept = KeepAlive::open(a).await;
    assert_eq!(kept.get().await, "b\n");
    reload(&t, &cfg(&[both[0], ("c", "127.0.0.1:0", "")], b.addr)).await;
    assert!(refused(gone).await, "b's socket closed");
    let now = status_listeners(&t).await;
    let names: Vec<&str> = now.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(now[0].1, a, "a keeps its port");
    let c = now[1].1;
    assert!(c.port() != a.port() && c.port() != 0, "{now:?}");
    assert_eq!(get(&client(), &format!("http://{c}/")).await.1, "b\n");
    assert_eq!(get(&client(), &format!("http://{a}/")).await.1, "b\n");
    assert_eq!(kept.get().await, "b\n", "a's connection goes on");
}

/// Two free addresses on loopback for listeners on fixed ports (taken from port 0
/// together, so they differ, then released).
fn two_fixed() -> (String, String) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().to_string(),
        b.local_addr().unwrap().to_string(),
    )
}

/// A listener renamed on the same fixed address keeps its socket and connections (the
/// address cannot be bound twice), two listeners may trade addresses, and one renamed
/// on port 0 is a new listener: a new port, the old one closed.
#[tokio::test]
async fn a_renamed_listener_keeps_its_fixed_address() {
    let b = Backend::start("b").await;
    let (p, q) = two_fixed();
    let t = Tango::start(&cfg(
        &[("f", &p, ""), ("h", &q, ""), ("z", "127.0.0.1:0", "")],
        b.addr,
    ));
    let z = t.listeners[2].1;
    let mut kept = KeepAlive::open(p.parse().unwrap()).await;
    assert_eq!(kept.get().await, "b\n");
    reload(
        &t,
        &cfg(
            &[("g", &p, ""), ("h", &q, ""), ("z2", "127.0.0.1:0", "")],
            b.addr,
        ),
    )
    .await;
    assert_eq!(address_of(&t, "g").await, Some(p.parse().unwrap()));
    assert_eq!(address_of(&t, "f").await, None);
    assert_eq!(
        kept.get().await,
        "b\n",
        "the renamed listener's connection goes on"
    );
    assert_eq!(
        get(&client(), &format!("http://{p}/")).await.1,
        "b\n",
        "and it accepts"
    );
    let z2 = address_of(&t, "z2").await.expect("z2 listens");
    assert!(z2.port() != z.port(), "{z2} {z}");
    assert!(refused(z).await, "z's socket closed");
    assert_eq!(get(&client(), &format!("http://{z2}/")).await.1, "b\n");

    reload(
        &t,
        &cfg(
            &[("g", &q, ""), ("h", &p, ""), ("z2", "127.0.0.1:0", "")],
            b.addr,
        ),
    )
    .await;
    assert_eq!(address_of(&t, "g").await, Some(q.parse().unwrap()));
    assert_eq!(address_of(&t, "h").await, Some(p.parse().unwrap()));
    assert_eq!(kept.get().await, "b\n", "addresses traded, sockets kept");
    for addr in [&p, &q] {
        assert_eq!(get(&client(), &format!("http://{addr}/")).await.1, "b\n");
    }
}
