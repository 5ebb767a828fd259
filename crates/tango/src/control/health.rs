//! Active health checks: one probe task per backend of every pool with `[pool.health]`.
//! A supervisor reconciles the tasks with each configuration generation, so probes start
//! for new backends and stop for backends that left. Decisions (rise/fall, expected
//! status) are tango-core's; this module only probes and applies.

use crate::runtime::Runtime;
use crate::upstream::{self, Dialer};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tango_core::config::{HealthCheck, HealthKind};
use tango_core::health::{evaluate_http, next_probe_delay, HealthState, Probe};

/// Keep one probe task per (pool, address) that has health checks configured.
pub(crate) async fn supervise(rt: Arc<Runtime>, events: crate::journal::Sink) {
    let mut tasks: HashMap<(String, String), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut seen_generation = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let snap = rt.current();
        if snap.generation == seen_generation {
            continue;
        }
        seen_generation = snap.generation;
        let mut want = Vec::new();
        for p in &snap.pools {
            if p.cfg.health.is_some() {
                for b in &p.cfg.backends {
                    want.push((p.cfg.name.clone(), b.address.clone()));
                }
            }
        }
        tasks.retain(|k, t| {
            let keep = want.contains(k);
            if !keep {
                t.abort();
            }
            keep
        });
        for k in want {
            tasks
                .entry(k.clone())
                .or_insert_with(|| tokio::spawn(probe_loop(rt.clone(), k.0, k.1, events.clone())));
        }
        // A backend without health checks is healthy by definition.
        for p in snap.pools.iter().filter(|p| p.cfg.health.is_none()) {
            for b in &p.backends {
                b.assume_healthy();
            }
        }
    }
}

async fn probe_loop(rt: Arc<Runtime>, pool: String, address: String, events: crate::journal::Sink) {
    let mut state: Option<HealthState> = None;
    loop {
        // Read the current configuration each round: settings may have been reloaded.
        let (cfg, backend, dial) = {
            let snap = rt.current();
            let Some(p) = snap.pools.iter().find(|p| p.cfg.name == pool) else {
                return;
            };
            let Some(i) = p.cfg.backends.iter().position(|b| b.address == address) else {
                return;
            };
            let Some(cfg) = p.cfg.health.clone() else {
                return;
            };
            (cfg, p.backends[i].clone(), p.dial.clone())
        };
        let st = state.get_or_insert_with(|| HealthState::new(&cfg));
        st.reconfigure(cfg.rise, cfg.fall);
        tokio::time::sleep(next_probe_delay(
            cfg.interval,
            cfg.jitter,
            crate::rng::next_u64(),
        ))
        .await;
        let probe = probe(&address, &cfg, &dial).await;
        if let Some(t) = st.record(probe, rt.elapsed()) {
            // Back in service, slow start ramps it up from now.
            backend.set_healthy(t.healthy, rt.now_ms());
            if t.healthy {
                tracing::info!(pool = %pool, backend = %backend.name, reason = %t.reason, "backend healthy");
            } else {
                tracing::warn!(pool = %pool, backend = %backend.name, reason = %t.reason, "backend unhealthy");
            }
            events.health(&pool, &backend.name, t.healthy, &t.reason);
            let snap = rt.current();
            if let Some(p) = snap.pools.iter().find(|p| p.cfg.name == pool) {
                if let Some(entered) = crate::control::upkeep::update_panic(p) {
                    events.record(tango_core::journal::EventKind::PanicMode {
                        pool: pool.clone(),
                        entered,
                    });
                }
            }
        }
    }
}

async fn probe(address: &str, cfg: &HealthCheck, dial: &Dialer) -> Probe {
    match tokio::time::timeout(cfg.timeout, probe_once(address, cfg, dial)).await {
        Ok(p) => p,
        Err(_) => Probe::fail(format!(
            "no answer within {}",
            humantime::format_duration(cfg.timeout)
        )),
    }
}

/// One probe, over a connection opened as the pool's requests open theirs (its PROXY
/// header telling of the probe's own addresses, then TLS with the pool's settings).
async fn probe_once(address: &str, cfg: &HealthCheck, dial: &Dialer) -> Probe {
    // A probe that speaks HTTP/1.1 offers only it by ALPN (`protocol = "auto"`).
    let http1_only = cfg.kind != HealthKind::Tcp;
    let stream = match upstream::open(address, dial, None, cfg.timeout, http1_only).await {
        Ok(s) => s,
        Err(e) => return Probe::fail(format!("connect: {e}")),
    };
    if cfg.kind == HealthKind::Tcp {
        return Probe::Pass;
    }
    let (mut tx, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(e) => return Probe::fail(format!("handshake: {e}")),
    };
    tokio::spawn(conn);
    let host = cfg.host.clone().unwrap_or_else(|| address.to_string());
    let req = http::Request::builder()
        .method(cfg.method.as_str())
        .uri(cfg.path.as_str())
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "tango-health-check")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<bytes::Bytes>::new());
    let Ok(req) = req else {
        return Probe::fail("invalid health check request");
    };
    match tx.send_request(req).await {
        Ok(resp) => evaluate_http(resp.status().as_u16(), &cfg.expect),
        Err(e) => Probe::fail(format!("request: {e}")),
    }
}
