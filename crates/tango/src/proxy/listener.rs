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
//!
//! The accept loop is `accept.rs`'s; the sockets, and the open-file limit they count
//! against, are `sockets.rs`'s.

mod accept;
mod sockets;

use super::access::AccessLog;
use super::conn::{Shared, Shutdown};
use super::idle::Conns;
use super::spread::Spread;
use super::tls::{self, CertSet, Resolver};
use crate::runtime::Runtime;
use accept::accept_loop;
use sockets::{bind_all, raise_fd_limit};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tango_core::config::{Config, Listener};
use tokio::net::TcpListener;
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
