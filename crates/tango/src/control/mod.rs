//! The control plane: everything that runs beside the request path and decides what it
//! serves. Server lifecycle (`server`), the reload path and its guard and canary, the
//! admin API and `/metrics`, the watch and its alert deliveries, active health checks,
//! the periodic upkeep, systemd readiness and tango's own log.
//!
//! It may use the data plane (`crate::proxy`); the data plane never uses it.

pub(crate) mod admin;
pub(crate) mod canary;
pub(crate) mod deliver;
pub(crate) mod guard;
pub(crate) mod health;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod reload;
pub(crate) mod sd;
pub(crate) mod server;
pub(crate) mod upkeep;
pub(crate) mod watch;
