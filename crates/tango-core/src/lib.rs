//! tango-core: every decision tango makes, and none of its I/O.
//!
//! Configuration, HTTP/1 request framing, the PROXY protocol, balancing policies, health and outlier state,
//! the skew detector, the configuration checklist, the simulator and the reload guard's
//! judgement all live here as pure functions of data and an injected `now`, so they are
//! tested quickly and deterministically.

#![warn(missing_docs)]

mod alert;
pub mod config;
pub mod detector;
pub mod diag;
pub mod diff;
pub mod guard;
pub mod health;
pub mod http1;
pub mod journal;
pub mod lint;
pub mod outlier;
pub mod policy;
pub mod proxy_protocol;
pub mod retry;
pub mod rewrite;
pub mod simulate;
pub mod sketch;
