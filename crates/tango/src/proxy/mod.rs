//! The data plane: listeners (`listener`), connections (`conn`, with the socket
//! wrapper `conn_io`, the framing guard `framing` and the idle-connection queue `idle`),
//! and the per-request service (`service`: route, pick with `keys`, forward, retry,
//! count with `accounting`), with the bodies, headers, errors and access log it uses.
//!
//! It uses the crate root's shared state (`runtime`, `upstream`, `stats`, `journal`)
//! and never the control plane or the command line.

pub(crate) mod access;
pub(crate) mod accounting;
pub(crate) mod body;
pub(crate) mod conn;
mod conn_io;
pub(crate) mod error;
mod framing;
pub(crate) mod headers;
mod idle;
pub(crate) mod keys;
pub(crate) mod listener;
pub(crate) mod preflight;
mod proxy_protocol;
pub(crate) mod service;
mod tls;
