//! The listeners: each configured address bound (before a reload commits, so a bind
//! failure can reject it), reconciled with each configuration, and their accept loops.
//! Every worker (`crate::worker`) has a socket of its own per address, bound with
//! `SO_REUSEPORT` so the kernel spreads new connections across them, and its own accept
//! loop, which serves what it accepts on that worker, or, when that worker has more of
//! the listener's connections than another, hands it to the emptiest (`spread`). Listener settings are read from
//! the current snapshot at accept time, so a reload changes them for new connections
//! without rebinding. A TLS listener's certificates are read again for each
//! configuration and swapped into its acceptor (`tls::Resolver`), also without
//! rebinding. At `max_connections`, a total over the listener's workers (they share one
//! `Conns`), the connection idle longest is closed to make room (`idle`); when none is
//! idle the newcomer is answered `503` and closed, never queued.

use super::access::AccessLog;
use super::conn::{connection, Accepted, Shared, Shutdown};
use super::idle::Conns;
use super::spread::Spread;
use super::tls::{self, CertSet, Resolver};
use crate::runtime::{Runtime, Snapshot};
use anyhow::Context as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::{Config, Listener};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;

struct Running {
    /// The address actually bound (differs from the configured one for port 0).
    local: SocketAddr,
    stop: watch::Sender<bool>,
    /// Its certificates, replaced on reload; `None`: plain text.
    tls: Option<Arc<Resolver>>,
}

/// The set of bound listeners, reconciled with each configuration.
pub(crate) struct Listeners {
    rt: Arc<Runtime>,
    shutdown: Shutdown,
    running: HashMap<SocketAddr, Running>,
    access_log: Option<Arc<AccessLog>>,
    /// The open-file limit after raising it (`None`: unknown).
    fd_limit: Option<u64>,
    /// Each worker's runtime, by worker index.
    workers: Vec<Handle>,
}

/// A listener bound ahead of a reload, so a bind failure can reject the reload.
pub(crate) struct Bound {
    listener: Listener,
    /// One socket per worker, in worker order, each registered with its worker's runtime.
    sockets: Vec<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    resolver: Option<Arc<Resolver>>,
}

/// What a configuration needs before it commits: the listeners it adds, bound, and the
/// certificates of TLS listeners already running, read (so a bad one rejects it).
pub(crate) struct Prepared {
    bound: Vec<Bound>,
    renew: Vec<(SocketAddr, CertSet)>,
}

impl Listeners {
    /// Listeners whose accept loops run on `workers` (each worker's runtime).
    pub(crate) fn new(
        rt: Arc<Runtime>,
        shutdown: Shutdown,
        access_log: Option<Arc<AccessLog>>,
        workers: Vec<Handle>,
    ) -> Self {
        assert!(!workers.is_empty(), "listeners need a worker");
        Self {
            rt,
            shutdown,
            running: HashMap::new(),
            access_log,
            fd_limit: raise_fd_limit(),
            workers,
        }
    }

    /// Bind the listeners `config` adds and read every TLS listener's certificates.
    /// Nothing starts yet. A listener whose address is already bound keeps its socket;
    /// turning its TLS on or off takes a restart.
    pub(crate) async fn prepare(&self, config: &Config) -> anyhow::Result<Prepared> {
        let mut out = Vec::new();
        let mut renew = Vec::new();
        for l in &config.listeners {
            if let Some(r) = self.running.get(&l.listen) {
                match (&l.tls, r.tls.is_some()) {
                    (Some(t), true) => renew.push((l.listen, tls::load_for(&l.name, t)?)),
                    (None, false) => {}
                    _ => tracing::warn!(listener = %l.name,
                        "turning TLS on or off for an address already bound takes effect on restart"),
                }
                continue;
            }
            let (tls, resolver) = match &l.tls {
                Some(t) => {
                    let (a, r) = tls::acceptor(tls::load_for(&l.name, t)?)?;
                    (Some(a), Some(r))
                }
                None => (None, None),
            };
            let sockets = bind_all(l.listen, &self.workers)
                .with_context(|| format!("binding listener `{}` on {}", l.name, l.listen))?;
            out.push(Bound {
                listener: l.clone(),
                sockets,
                tls,
                resolver,
            });
        }
        Ok(Prepared { bound: out, renew })
    }

    /// Start what was bound, each socket's accept loop on its worker, serve the
    /// certificates read, and stop listeners no longer in `config`.
    pub(crate) fn commit(&mut self, config: &Config, prepared: Prepared) {
        for (addr, set) in prepared.renew {
            if let Some(r) = self.running.get(&addr).and_then(|r| r.tls.as_ref()) {
                r.swap(set);
            }
        }
        for b in prepared.bound {
            let (stop, stop_rx) = watch::channel(false);
            let addr = b.listener.listen;
            let local = b
                .sockets
                .first()
                .and_then(|s| s.local_addr().ok())
                .unwrap_or(addr);
            tracing::info!(listener = %b.listener.name, address = %local, tls = b.tls.is_some(),
                workers = b.sockets.len(), "listening");
            if let Some(limit) = self
                .fd_limit
                .filter(|l| b.listener.max_connections as u64 >= *l)
            {
                tracing::warn!(listener = %b.listener.name, max_connections = b.listener.max_connections, open_file_limit = limit,
                    "max_connections is above the open-file limit: accepts will fail before it is reached");
            }
            self.running.insert(
                addr,
                Running {
                    local,
                    stop,
                    tls: b.resolver,
                },
            );
            // One per listener, shared by its workers' accept loops: `max_connections`
            // and the idle queue span them all.
            let ctx = Arc::new(Shared {
                rt: self.rt.clone(),
                shutdown: self.shutdown.clone(),
                name: Arc::from(b.listener.name.as_str()),
                tls: b.tls,
                conns: Conns::default(),
                access_log: self.access_log.clone(),
                spread: Arc::new(Spread::new(self.workers.len())),
                workers: self.workers.clone(),
            });
            for (socket, worker) in b.sockets.into_iter().zip(&self.workers) {
                worker.spawn(accept_loop(ctx.clone(), socket, stop_rx.clone()));
            }
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

/// One listening socket per worker on `addr`, each registered with its worker's runtime
/// (so its accept loop must run there). With port 0 the first socket gets a port from
/// the kernel and the others join it.
///
/// `SO_REUSEPORT` would also let another process of the same user join the group and
/// quietly take a share of the connections (a second tango started with the same
/// file), so a socket without it is bound first: it fails, as binding always did, when
/// anything already listens on the address.
fn bind_all(addr: SocketAddr, workers: &[Handle]) -> std::io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        let probe = socket_for(addr)?;
        probe.bind(addr)?;
    }
    let mut addr = addr;
    let mut out = Vec::with_capacity(workers.len());
    for worker in workers {
        let socket = socket_for(addr)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        // `listen` registers the socket with the runtime entered.
        let _entered = worker.enter();
        let listener = socket.listen(4096)?;
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

fn socket_for(addr: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

/// Every connection one worker accepts for one listener, until the listener stops or
/// tango shuts down.
async fn accept_loop(ctx: Arc<Shared>, socket: TcpListener, mut stop: watch::Receiver<bool>) {
    let worker = crate::worker::id();
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
        // The address the client reached, for PROXY headers to backends: asked of the
        // socket only when a pool sends them (a system call other connections skip).
        let sends_proxy = cached.as_ref().is_some_and(|(s, _)| s.sends_proxy);
        let local = match sends_proxy {
            true => stream.local_addr().unwrap_or(lcfg.listen),
            false => lcfg.listen,
        };
        ctx.shutdown.connection_opened();
        let placed = ctx.spread.place(worker);
        tracing::debug!(listener = %ctx.name, worker, serves = placed.worker, %peer, "accepted");
        let to = ctx.workers[placed.worker].clone();
        let stream = match placed.worker == worker {
            true => stream,
            false => match move_to(&to, stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = %ctx.name, error = %e, "could not move a connection to another worker");
                    ctx.closed(&slot);
                    continue;
                }
            },
        };
        let a = Accepted {
            ctx: ctx.clone(),
            stream,
            peer,
            local,
            lcfg,
            slot,
            placed,
        };
        to.spawn(connection(a));
    }
    if ctx.shutdown.is_draining() {
        // Engine connections waiting for a request close now; busy ones after their
        // response.
        ctx.conns.wake_all();
    }
    tracing::debug!(listener = %ctx.name, worker, "accept loop stopped");
}

/// A socket this worker accepted, registered with the poller of the worker `to`
/// instead (a connection goes to the worker with the fewest, see `spread`).
fn move_to(to: &Handle, stream: TcpStream) -> std::io::Result<TcpStream> {
    // In the other worker's runtime, `from_std` registers with its poller.
    let _there = to.enter();
    stream.into_std().and_then(TcpStream::from_std)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Workers;

    #[test]
    fn port_zero_binds_every_worker_to_one_port() {
        let w = Workers::start(3).unwrap();
        let socks = bind_all("127.0.0.1:0".parse().unwrap(), &w.handles()).unwrap();
        let ports: Vec<u16> = socks
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), 3);
        assert!(
            ports[0] != 0 && ports.iter().all(|p| *p == ports[0]),
            "{ports:?}"
        );
    }

    #[test]
    fn an_address_something_listens_on_is_refused_even_with_reuseport() {
        let w = Workers::start(2).unwrap();
        let first = bind_all("127.0.0.1:0".parse().unwrap(), &w.handles()).unwrap();
        // A second group on the same port (a second tango with the same file).
        let taken = first[0].local_addr().unwrap();
        let e = bind_all(taken, &w.handles()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        // Something else listening there, without SO_REUSEPORT.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = bind_all(other.local_addr().unwrap(), &w.handles()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
