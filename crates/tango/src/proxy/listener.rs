//! The listeners: each configured address bound (before a reload commits, so a bind
//! failure can reject it), reconciled with each configuration, and its accept loop.
//! Listener settings are read from the current snapshot at accept time, so a reload
//! changes them for new connections without rebinding. At `max_connections` the
//! connection idle longest is closed to make room (`idle`); when none is idle the
//! newcomer is answered `503` and closed, never queued.

use super::access::AccessLog;
use super::conn::{connection, Shared, Shutdown};
use super::idle::Conns;
use crate::runtime::{Runtime, Snapshot};
use anyhow::Context as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::{Config, Listener};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Running {
    /// The address actually bound (differs from the configured one for port 0).
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

/// The set of bound listeners, reconciled with each configuration.
pub(crate) struct Listeners {
    rt: Arc<Runtime>,
    shutdown: Shutdown,
    running: HashMap<SocketAddr, Running>,
    access_log: Option<Arc<AccessLog>>,
    /// The open-file limit after raising it (`None`: unknown).
    fd_limit: Option<u64>,
}

/// A listener bound ahead of a reload, so a bind failure can reject the reload.
pub(crate) struct Bound {
    listener: Listener,
    socket: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listeners {
    pub(crate) fn new(
        rt: Arc<Runtime>,
        shutdown: Shutdown,
        access_log: Option<Arc<AccessLog>>,
    ) -> Self {
        Self {
            rt,
            shutdown,
            running: HashMap::new(),
            access_log,
            fd_limit: raise_fd_limit(),
        }
    }

    /// Bind the listeners `config` adds. Nothing starts yet. A listener whose address
    /// is already bound keeps its socket (and its TLS certificate until a restart).
    pub(crate) async fn prepare(&self, config: &Config) -> anyhow::Result<Vec<Bound>> {
        let mut out = Vec::new();
        for l in &config.listeners {
            if self.running.contains_key(&l.listen) {
                continue;
            }
            let tls = match &l.tls {
                Some(t) => Some(super::tls::acceptor(&t.cert, &t.key)?),
                None => None,
            };
            let socket = bind(l.listen)
                .await
                .with_context(|| format!("binding listener `{}` on {}", l.name, l.listen))?;
            out.push(Bound {
                listener: l.clone(),
                socket,
                tls,
            });
        }
        Ok(out)
    }

    /// Start what was bound and stop listeners no longer in `config`.
    pub(crate) fn commit(&mut self, config: &Config, bound: Vec<Bound>) {
        for b in bound {
            let (stop, stop_rx) = watch::channel(false);
            let addr = b.listener.listen;
            let local = b.socket.local_addr().unwrap_or(addr);
            tracing::info!(listener = %b.listener.name, address = %local, tls = b.tls.is_some(), "listening");
            if let Some(limit) = self
                .fd_limit
                .filter(|l| b.listener.max_connections as u64 >= *l)
            {
                tracing::warn!(listener = %b.listener.name, max_connections = b.listener.max_connections, open_file_limit = limit,
                    "max_connections is above the open-file limit: accepts will fail before it is reached");
            }
            self.running.insert(addr, Running { local, stop });
            let ctx = Shared {
                rt: self.rt.clone(),
                shutdown: self.shutdown.clone(),
                name: Arc::from(b.listener.name.as_str()),
                tls: b.tls,
                conns: Conns::default(),
                access_log: self.access_log.clone(),
            };
            tokio::spawn(accept_loop(ctx, b.socket, stop_rx));
        }
        let keep: Vec<SocketAddr> = config.listeners.iter().map(|l| l.listen).collect();
        self.running.retain(|addr, r| {
            let k = keep.contains(addr);
            if !k {
                tracing::info!(address = %addr, "listener removed; open connections drain");
                let _ = r.stop.send(true);
            }
            k
        });
    }

    /// (listener name, bound address) of every running listener.
    pub(crate) fn addresses(&self, config: &Config) -> Vec<(String, SocketAddr)> {
        config
            .listeners
            .iter()
            .filter_map(|l| {
                self.running
                    .get(&l.listen)
                    .map(|r| (l.name.clone(), r.local))
            })
            .collect()
    }
}

/// Raise the soft open-file limit to the hard one, as servers commonly do: every client
/// and upstream connection is a descriptor, and the usual soft default (1024) is far below
/// `max_connections`. Returns the limit in force.
fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::debug!(limit = n, "open-file limit");
            Some(n)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Every accepted connection of one listener until it stops or tango shuts down.
async fn accept_loop(ctx: Shared, socket: TcpListener, mut stop: watch::Receiver<bool>) {
    let ctx = Arc::new(ctx);
    let mut shutdown = ctx.shutdown.subscribe();
    let mut cached = None;
    loop {
        let (stream, peer) = tokio::select! {
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %ctx.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        };
        let Some(lcfg) = settings(&ctx, &mut cached) else {
            break;
        };
        // At the cap, the connection idle longest is closed to make room; only when none
        // is idle is the newcomer refused.
        let Some(slot) = ctx.conns.admit(lcfg.max_connections) else {
            tokio::spawn(refuse(stream, ctx.tls.is_some()));
            continue;
        };
        let _ = stream.set_nodelay(true);
        ctx.shutdown.connection_opened();
        tokio::spawn(connection(ctx.clone(), stream, peer, lcfg, slot));
    }
    if ctx.shutdown.is_draining() {
        // Engine connections waiting for a request close now; busy ones after their
        // response.
        ctx.conns.wake_all();
    }
    tracing::debug!(listener = %ctx.name, "accept loop stopped");
}

/// The listener's settings in the snapshot in force (shared with the connections
/// accepted under the same snapshot); `None` once it has left the configuration.
fn settings(ctx: &Shared, cached: &mut Option<Settings>) -> Option<Arc<Listener>> {
    let snap = ctx.rt.current();
    if let Some((s, l)) = cached.as_ref() {
        if Arc::ptr_eq(s, &snap) {
            return Some(l.clone());
        }
    }
    let l = snap
        .config
        .listeners
        .iter()
        .find(|l| *l.name == *ctx.name)?;
    let l = Arc::new(l.clone());
    *cached = Some((Arc::clone(&snap), l.clone()));
    Some(l)
}

/// The snapshot a listener's settings were last taken from, and those settings, shared
/// by the connections accepted under it.
type Settings = (Arc<Snapshot>, Arc<Listener>);

/// Over the connection limit: answer at once and close, never leave the client hanging.
async fn refuse(mut stream: TcpStream, tls: bool) {
    if !tls {
        let _ = stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n")
            .await;
    }
    let _ = stream.shutdown().await;
}
