//! The listeners: each configured address bound (before a reload commits, so a bind
//! failure can reject it), reconciled with each configuration, and their accept loops.
//! Every worker (`crate::worker`) has a socket of its own per address, bound with
//! `SO_REUSEPORT` so the kernel spreads new connections across them, and its own accept
//! loop, which serves what it accepts on that worker, or, when that worker has more of
//! the listener's connections than another, hands it to the emptiest (`spread`).
//!
//! Listeners are known by name, never by address (several may be configured on port
//! 0): a reload keeps a listener's socket when its name and address stay, or when
//! another name takes over its fixed address (`Listeners::kept_by`). Each configuration
//! hands its settings for a listener to that listener's accept loops, so a reload
//! changes them for new connections without rebinding. A TLS listener's certificates
//! are read again for each configuration and swapped into its acceptor
//! (`tls::Resolver`), also without rebinding; when they expire is published for
//! `/metrics` each time the listeners take a configuration. Turning a kept listener's TLS on or off
//! hands its sockets (nothing queued on them is lost) to new accept loops in the new
//! mode, and its connections in the old mode drain as a removed listener's do. At
//! `max_connections`, a total over the
//! listener's workers (they share one `Conns`), the connection idle longest is closed
//! to make room (`idle`); when none is idle the newcomer is answered `503` and closed,
//! never queued. A listener a reload removes closes its sockets, and its connections
//! drain as at shutdown (`Conns::stop`).

use super::access::AccessLog;
use super::conn::{connection, Accepted, Admitted, Shared, Shutdown};
use super::idle::Conns;
use super::spread::Spread;
use super::tls::{self, CertSet, Resolver};
use crate::runtime::Runtime;
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
    /// The address configured (port 0: any the kernel chose).
    listen: SocketAddr,
    /// The address actually bound (differs from the configured one for port 0).
    local: SocketAddr,
    /// What its accept loops follow: its settings, replaced by each configuration that
    /// keeps it (a rename too); `None` stops them.
    settings: watch::Sender<Option<Arc<Listener>>>,
    /// Its certificates, replaced on reload; `None`: plain text.
    tls: Option<Arc<Resolver>>,
    /// Its sockets, one per worker in worker order, shared with the accept loops so a
    /// change of TLS mode can hand them to new ones.
    sockets: Vec<Arc<TcpListener>>,
}

/// The set of bound listeners, reconciled with each configuration.
pub(crate) struct Listeners {
    rt: Arc<Runtime>,
    shutdown: Shutdown,
    /// By name: names are unique in a configuration, and several listeners may be
    /// configured on port 0 of one address.
    running: HashMap<String, Running>,
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
    sockets: Vec<Arc<TcpListener>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    resolver: Option<Arc<Resolver>>,
    /// The running listener whose sockets these are, when its TLS was turned on or off:
    /// it stops, and its connections drain, when this one starts.
    replaces: Option<String>,
}

/// A running listener a configuration keeps, socket and connections, with its settings
/// there.
struct Kept {
    /// Its name among the running listeners; `listener.name` differs when it was renamed.
    was: String,
    listener: Listener,
    /// A TLS listener's certificates, read again.
    certs: Option<CertSet>,
}

/// What a configuration needs before it commits: the listeners it adds, bound, and those
/// it keeps, with the certificates of the TLS ones read (so a bad one rejects it).
pub(crate) struct Prepared {
    bound: Vec<Bound>,
    kept: Vec<Kept>,
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

    /// Shutdown has begun: a listener bound now would stop at once.
    pub(crate) fn draining(&self) -> bool {
        self.shutdown.is_draining()
    }

    /// Bind the listeners `config` adds and read the certificates of every TLS listener
    /// it keeps (see [`Listeners::kept_by`] for which it keeps). A kept listener whose
    /// TLS is turned on or off is prepared as a new one on the same sockets. Nothing
    /// starts yet.
    pub(crate) async fn prepare(&self, config: &Config) -> anyhow::Result<Prepared> {
        let mut bound = Vec::new();
        let mut kept = Vec::new();
        for (index, (l, was)) in config
            .listeners
            .iter()
            .zip(self.kept_by(config))
            .enumerate()
        {
            let Some((was, r)) = was.and_then(|n| self.running.get_key_value(n)) else {
                bound.push(self.bind(index, l)?);
                continue;
            };
            if l.tls.is_some() != r.tls.is_some() {
                bound.push(Self::rebind(l, was, r)?);
                continue;
            }
            let certs = match &l.tls {
                Some(t) => Some(tls::load_for(&l.name, t)?),
                None => None,
            };
            kept.push(Kept {
                was: was.clone(),
                listener: l.clone(),
                certs,
            });
        }
        Ok(Prepared { bound, kept })
    }

    /// `l` on the sockets of the running listener `was`, whose TLS it turns on or off.
    fn rebind(l: &Listener, was: &str, r: &Running) -> anyhow::Result<Bound> {
        let (tls, resolver) = acceptor_for(l)?;
        Ok(Bound {
            listener: l.clone(),
            sockets: r.sockets.clone(),
            tls,
            resolver,
            replaces: Some(was.to_string()),
        })
    }

    /// For each of `config`'s listeners, the running listener it keeps (`None`: it is
    /// bound anew). First the one of the same name on the same configured address;
    /// then, for a listener on a fixed port, the one left on that address under another
    /// name (a listener renamed, or two that traded addresses), since the address
    /// cannot be bound twice. A listener on port 0 is kept only under its name: its
    /// address names no socket. A running listener no one keeps stops.
    fn kept_by<'a>(&'a self, config: &Config) -> Vec<Option<&'a str>> {
        let mut taken: Vec<&str> = Vec::new();
        let mut out: Vec<Option<&str>> = (config.listeners.iter())
            .map(|l| {
                let (name, r) = self.running.get_key_value(&l.name)?;
                (r.listen == l.listen).then(|| {
                    taken.push(name);
                    name.as_str()
                })
            })
            .collect();
        for (l, kept) in config.listeners.iter().zip(&mut out) {
            if kept.is_some() || l.listen.port() == 0 {
                continue;
            }
            let same = (self.running.iter())
                .find(|(n, r)| r.listen == l.listen && !taken.contains(&n.as_str()));
            if let Some((n, _)) = same {
                taken.push(n);
                *kept = Some(n);
            }
        }
        out
    }

    /// One socket per worker for `l`, the configuration's listener `index`, and its TLS
    /// acceptor.
    fn bind(&self, index: usize, l: &Listener) -> anyhow::Result<Bound> {
        let (tls, resolver) = acceptor_for(l)?;
        let sockets = bind_all(l.listen, &self.workers).map_err(|error| BindError {
            index,
            name: l.name.clone(),
            listen: l.listen,
            error,
        })?;
        Ok(Bound {
            listener: l.clone(),
            sockets: sockets.into_iter().map(Arc::new).collect(),
            tls,
            resolver,
            replaces: None,
        })
    }

    /// Give the listeners kept their settings (and names) and certificates, stop those
    /// left out, and start what was bound, each socket's accept loop on its worker.
    pub(crate) fn commit(&mut self, prepared: Prepared) {
        let mut old = std::mem::take(&mut self.running);
        for k in prepared.kept {
            // Always there: the caller holds the listeners from `prepare` to here.
            let Some(r) = old.remove(&k.was) else {
                continue;
            };
            if let (Some(set), Some(resolver)) = (k.certs, &r.tls) {
                resolver.swap(set);
            }
            let name = k.listener.name.clone();
            if name != k.was {
                tracing::info!(listener = %name, was = %k.was, address = %r.local,
                    "listener renamed; its socket and connections are kept");
            }
            r.settings.send_replace(Some(Arc::new(k.listener)));
            self.running.insert(name, r);
        }
        for (name, r) in old {
            let handed = (prepared.bound.iter()).find(|b| b.replaces.as_deref() == Some(&name));
            match handed {
                Some(b) => {
                    tracing::info!(listener = %b.listener.name, was = %name, address = %r.local,
                    tls = b.tls.is_some(), "listener's TLS turned on or off; connections opened before drain")
                }
                None => {
                    tracing::info!(listener = %name, address = %r.local, "listener removed; open connections drain")
                }
            }
            r.settings.send_replace(None);
        }
        for b in prepared.bound {
            self.start(b);
        }
        self.publish_certificate_dates();
    }

    /// What `/metrics` says of the certificates served: those of the running listeners.
    fn publish_certificate_dates(&self) {
        let mut dates = Vec::new();
        for (name, r) in &self.running {
            let Some(resolver) = &r.tls else { continue };
            dates.extend((resolver.expiry().into_iter()).map(|(n, at)| (name.clone(), n, at)));
        }
        self.rt.certificate_dates.set(dates);
    }

    /// Run a listener just bound: an accept loop per worker.
    fn start(&mut self, b: Bound) {
        let local = b
            .sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(b.listener.listen);
        tracing::info!(listener = %b.listener.name, address = %local, tls = b.tls.is_some(),
            workers = b.sockets.len(), "listening");
        if let Some(limit) = self
            .fd_limit
            .filter(|l| b.listener.max_connections as u64 >= *l)
        {
            tracing::warn!(listener = %b.listener.name, max_connections = b.listener.max_connections, open_file_limit = limit,
                "max_connections is above the open-file limit: accepts will fail before it is reached");
        }
        let name = b.listener.name.clone();
        let listen = b.listener.listen;
        let (settings, settings_rx) = watch::channel(Some(Arc::new(b.listener)));
        // One per listener, shared by its workers' accept loops: `max_connections`
        // and the idle queue span them all.
        let ctx = Arc::new(Shared {
            rt: self.rt.clone(),
            shutdown: self.shutdown.clone(),
            tls: b.tls,
            conns: Conns::default(),
            access_log: self.access_log.clone(),
            spread: Arc::new(Spread::new(self.workers.len())),
            workers: self.workers.clone(),
        });
        for (socket, worker) in b.sockets.iter().zip(&self.workers) {
            worker.spawn(accept_loop(
                ctx.clone(),
                socket.clone(),
                settings_rx.clone(),
            ));
        }
        self.running.insert(
            name,
            Running {
                listen,
                local,
                settings,
                tls: b.resolver,
                sockets: b.sockets,
            },
        );
    }

    /// (listener name, bound address) of every running listener, in `config`'s order.
    pub(crate) fn addresses(&self, config: &Config) -> Vec<(String, SocketAddr)> {
        config
            .listeners
            .iter()
            .filter_map(|l| self.running.get(&l.name).map(|r| (l.name.clone(), r.local)))
            .collect()
    }
}

/// A listener's address could not be bound: which of the configuration's listeners, so
/// the error can be told at its `listen` key.
#[derive(Debug, thiserror::Error)]
#[error("binding listener `{name}` on {listen}: {error}")]
pub(crate) struct BindError {
    /// Its index in the configuration's listeners.
    pub(crate) index: usize,
    name: String,
    listen: SocketAddr,
    /// Not a `source`: the message says it, and `{:#}` would say it twice.
    error: std::io::Error,
}

/// `l`'s TLS acceptor and certificate resolver, its certificates read now; `None` for a
/// plain-text listener.
type Acceptor = (Option<tokio_rustls::TlsAcceptor>, Option<Arc<Resolver>>);

fn acceptor_for(l: &Listener) -> anyhow::Result<Acceptor> {
    let Some(t) = &l.tls else {
        return Ok((None, None));
    };
    let (a, r) = tls::acceptor(tls::load_for(&l.name, t)?)?;
    Ok((Some(a), Some(r)))
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
/// tango shuts down. `settings` are the listener's, as the configuration in force
/// gives them; `None` stops the loop.
async fn accept_loop(
    ctx: Arc<Shared>,
    socket: Arc<TcpListener>,
    mut settings: watch::Receiver<Option<Arc<Listener>>>,
) {
    let worker = crate::worker::id();
    let mut shutdown = ctx.shutdown.subscribe();
    let Some(mut lcfg) = settings.borrow_and_update().clone() else {
        return;
    };
    loop {
        // Biased, settings first: once a reload has handed the listener new settings
        // (or stopped this loop, its sockets gone to loops in another TLS mode), no
        // connection is accepted under the old ones.
        let (stream, peer) = tokio::select! {
            biased;
            changed = settings.changed() => {
                match changed.ok().and_then(|()| settings.borrow_and_update().clone()) {
                    Some(l) => {
                        lcfg = l;
                        continue;
                    }
                    None => break,
                }
            },
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %lcfg.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
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
        let local = match ctx.rt.current().sends_proxy {
            true => stream.local_addr().unwrap_or(lcfg.listen),
            false => lcfg.listen,
        };
        let open = Admitted::new(ctx.clone(), slot);
        let placed = ctx.spread.place(worker);
        tracing::debug!(listener = %lcfg.name, worker, serves = placed.worker, %peer, "accepted");
        let to = ctx.workers[placed.worker].clone();
        let stream = match placed.worker == worker {
            true => stream,
            false => match move_to(&to, stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = %lcfg.name, error = %e, "could not move a connection to another worker");
                    // Dropping `open` gives its place back.
                    continue;
                }
            },
        };
        let a = Accepted {
            open,
            stream,
            peer,
            local,
            lcfg: lcfg.clone(),
            placed,
        };
        to.spawn(connection(a));
    }
    if ctx.shutdown.is_draining() {
        // Engine connections waiting for a request close now; busy ones after their
        // response.
        ctx.conns.wake_all();
    } else {
        // Removed by a reload: its connections drain as at shutdown (idle ones close
        // now, busy ones after their response), since nothing else would end a
        // keep-alive connection to an address no longer served, nor wake an idle one
        // when shutdown begins.
        ctx.conns.stop();
    }
    tracing::debug!(listener = %lcfg.name, worker, "accept loop stopped");
}

/// A socket this worker accepted, registered with the poller of the worker `to`
/// instead (a connection goes to the worker with the fewest, see `spread`).
fn move_to(to: &Handle, stream: TcpStream) -> std::io::Result<TcpStream> {
    // In the other worker's runtime, `from_std` registers with its poller.
    let _there = to.enter();
    stream.into_std().and_then(TcpStream::from_std)
}

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
