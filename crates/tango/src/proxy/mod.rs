//! The data plane: listeners (`listener`, spreading connections evenly over the
//! workers with `spread`), connections (`conn`, with the socket wrapper `conn_io`, the
//! framing guard `framing`, the idle-connection queue `idle` and an HTTP/2 connection's
//! lingering close `linger`),
//! the HTTP/1.1 engine that serves plain connections (`h1`, borrowing buffers from
//! `bufpool`), the per-request service hyper calls for TLS and HTTP/2 (`service`:
//! route, pick with `keys`, forward, retry, count with `accounting`), the upstream
//! side both share (`exchange`), the tunnels a `101` or a `2xx` to CONNECT opens on
//! either (`tunnel`), and the bodies, headers, trailers, errors and access log they use;
//! `grpc` answers a gRPC request tango itself fails.
//!
//! It uses the crate root's shared state (`runtime`, `upstream`, `stats`, `journal`)
//! and never the control plane or the command line.

pub(crate) mod access;
pub(crate) mod accounting;
pub(crate) mod body;
mod bufpool;
pub(crate) mod conn;
mod conn_io;
pub(crate) mod error;
mod exchange;
mod framing;
mod grpc;
mod h1;
pub(crate) mod headers;
mod idle;
pub(crate) mod keys;
mod linger;
pub(crate) mod listener;
pub(crate) mod preflight;
mod proxy_protocol;
mod rules;
pub(crate) mod service;
mod shutdown;
mod spread;
mod tls;
mod trailers;
mod tunnel;

/// What each data-plane worker sets up on its own thread before serving: its send ring
/// and the task that submits it (`h1::ring`), where the kernel allows one.
pub(crate) fn on_worker_start() {
    if h1::ring::start() {
        tokio::spawn(h1::ring::flusher());
    }
}
