//! End-to-end tests: the real `tango` binary, real backends, real sockets on loopback.
//! One test binary (areas as modules) so the suite links once.
#![allow(unreachable_pub)]

mod backend;
mod scripted;
mod support;

mod balancing;
mod caps;
mod certs;
mod check_cli;
mod codings;
mod connect;
mod conns;
mod cut_bodies;
mod dashboard;
mod desync;
mod drain;
mod drain_log;
mod drain_reload;
mod early;
mod early_held;
mod engine;
mod failures;
mod framing;
mod grpc;
mod grpc_tls;
mod guard;
mod h2_conns;
mod h2_edges;
mod h2_flow;
mod h2_health;
mod h2_hostile;
mod h2_requests;
mod hardening;
mod hash_keys;
mod lifecycle;
mod listeners;
mod operator;
mod policies;
mod protocols;
mod proxy_protocol;
mod reload;
mod resilience;
mod rules;
mod send_proxy;
mod simulate;
mod slow_start;
mod tls_edges;
mod trailers;
mod tunnels;
mod unasked;
mod upstream_framing;
mod upstream_reuse;
mod upstream_tls;
mod watch;
mod workers;
