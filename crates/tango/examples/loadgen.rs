//! A small fixed-rate, open-loop HTTP/1.1 load generator for the benchmarks in `bench/`.
//!
//! Requests are scheduled at `start + i / rate` whatever the responses do, so a slow
//! backend cannot lower the offered load, and each latency is measured from the
//! request's scheduled time rather than from when it was actually sent: time a request
//! spent waiting behind the generator itself counts (no coordinated omission). At most
//! `--connections` requests are in flight; a request due while all are busy is dropped
//! and counted, never queued. Every response body is counted by its text, which is how
//! the benchmarks read each backend's share (demo backends answer with their name).
//!
//! Loopback targets only; the run is bounded by `--warmup + --duration` plus a short
//! drain. Prints one human line on stderr and one JSON object on stdout:
//!
//! ```text
//! cargo run --release -p tango --example loadgen -- --url http://127.0.0.1:28310/ --rate 1000 --duration 20
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Distinct response bodies counted by name; past this, bodies count as "(other)" so a
/// target answering unique bodies cannot grow the table without bound.
const MAX_BODIES: usize = 64;
/// Longest body text kept as a name.
const MAX_BODY_NAME: usize = 64;

#[derive(clap::Parser)]
#[command(about = "Fixed-rate open-loop HTTP/1.1 load generator (loopback only)")]
struct Args {
    /// Target URL (http, loopback host).
    #[arg(long)]
    url: String,
    /// Requests per second, scheduled evenly.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before the measurement, at the same rate, not recorded.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Most requests in flight at once (and most connections); a request due while all
    /// are busy is dropped.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Per-request timeout in seconds; a request past it counts as an error.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

/// Outcomes of the measured requests.
#[derive(Default)]
struct Record {
    /// Microseconds from scheduled time to the end of the response body.
    latencies_us: Vec<u64>,
    /// Microseconds from scheduled time to the actual send: the generator's own lag.
    lag_us: Vec<u64>,
    errors: u64,
    dropped: u64,
    bodies: BTreeMap<String, u64>,
}

impl Record {
    fn count_body(&mut self, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let mut name = text.trim().to_string();
        if name.len() > MAX_BODY_NAME || name.is_empty() {
            name = "(other)".into();
        }
        if !self.bodies.contains_key(&name) && self.bodies.len() >= MAX_BODIES {
            name = "(other)".into();
        }
        *self.bodies.entry(name).or_insert(0) += 1;
    }
}

fn main() {
    if let Err(e) = try_main() {
        eprintln!("loadgen: {e}");
        std::process::exit(2);
    }
}

fn try_main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let uri: hyper::Uri = args.url.parse()?;
    check_target(&uri)?;
    anyhow::ensure!(
        args.rate > 0.0 && args.rate <= 1_000_000.0,
        "--rate must be in (0, 1e6]"
    );
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= 3600.0 && (0.0..=600.0).contains(&args.warmup),
        "--duration must be in (0, 3600] and --warmup in [0, 600]"
    );
    anyhow::ensure!(
        (1..=65_536).contains(&args.connections),
        "--connections must be 1..=65536"
    );
    // One I/O worker thread (plus the scheduling thread): at the rates the benchmarks
    // use this is far from the limit, and it leaves the other core to the proxy.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let rec = run(&rt, &args, uri);
    report(&args, &rec);
    Ok(())
}

/// Refuse anything but a loopback address: this tool is for benchmarks on this machine.
fn check_target(uri: &hyper::Uri) -> anyhow::Result<()> {
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "only http:// URLs are supported"
    );
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
    anyhow::ensure!(loopback, "target host {host:?} is not a loopback address");
    Ok(())
}

/// Schedule every request from this thread with `std::thread::sleep`, which wakes
/// within tens of microseconds, and run the requests on `rt`'s thread. (tokio's own
/// timer ticks in whole milliseconds, which would add up to two of them of send lag to
/// every latency.)
fn run(rt: &tokio::runtime::Runtime, args: &Args, uri: hyper::Uri) -> Record {
    let _guard = rt.enter();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.connections)
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    let slots = Arc::new(Semaphore::new(args.connections));
    let rec = Arc::new(Mutex::new(Record::default()));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let total = ((args.warmup + args.duration) * args.rate).round() as u64;
    let measured_from = (args.warmup * args.rate).round() as u64;
    let timeout = Duration::from_secs_f64(args.timeout);
    let start = Instant::now() + Duration::from_millis(10);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let measured = i >= measured_from;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if measured {
                lock(&rec).dropped += 1;
            }
            continue;
        };
        let (client, uri, rec) = (client.clone(), uri.clone(), rec.clone());
        rt.spawn(async move {
            let lag = due.elapsed();
            let req = hyper::Request::get(uri)
                .body(Empty::<Bytes>::new())
                .expect("a GET with a parsed URI is a valid request");
            let outcome = tokio::time::timeout(timeout, async {
                let resp = client.request(req).await.ok()?;
                let ok = resp.status().is_success();
                let body = resp.into_body().collect().await.ok()?.to_bytes();
                ok.then_some(body)
            })
            .await;
            let took = due.elapsed();
            if measured {
                let mut r = lock(&rec);
                match outcome {
                    Ok(Some(body)) => {
                        r.latencies_us.push(took.as_micros() as u64);
                        r.lag_us.push(lag.as_micros() as u64);
                        r.count_body(&body);
                    }
                    _ => r.errors += 1,
                }
            }
            // Released only once recorded: holding every slot means every result is in.
            drop(permit);
        });
    }
    // Every request ends by its own timeout; holding every slot means all have ended.
    let all = u32::try_from(args.connections).expect("bounded by the argument check");
    rt.block_on(async {
        let _ = tokio::time::timeout(timeout * 2, slots.acquire_many(all)).await;
    });
    let taken = std::mem::take(&mut *lock(&rec));
    taken
}

fn lock(rec: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    rec.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    round2(sorted[idx] as f64 / 1000.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn report(args: &Args, rec: &Record) {
    let mut lat = rec.latencies_us.clone();
    lat.sort_unstable();
    let mut lag = rec.lag_us.clone();
    lag.sort_unstable();
    let ok = lat.len() as u64;
    let achieved = round2(ok as f64 / args.duration);
    let (p50, p90, p99, max) = (
        pct_ms(&lat, 50.0),
        pct_ms(&lat, 90.0),
        pct_ms(&lat, 99.0),
        pct_ms(&lat, 100.0),
    );
    let shares: BTreeMap<&str, f64> = rec
        .bodies
        .iter()
        .map(|(k, v)| (k.as_str(), round2(100.0 * *v as f64 / ok.max(1) as f64)))
        .collect();
    eprintln!(
        "{}: {achieved} req/s ok (asked {}), p50 {p50} ms, p90 {p90} ms, p99 {p99} ms, max {max} ms, \
         errors {}, dropped {}, send lag p99 {} ms, shares % {shares:?}",
        args.url,
        args.rate,
        rec.errors,
        rec.dropped,
        pct_ms(&lag, 99.0),
    );
    let json = serde_json::json!({
        "url": args.url,
        "rate": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "ok": ok,
        "errors": rec.errors,
        "dropped": rec.dropped,
        "achieved_rps": achieved,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "send_lag_p99_ms": pct_ms(&lag, 99.0),
        "bodies": rec.bodies,
    });
    println!("{json}");
}
