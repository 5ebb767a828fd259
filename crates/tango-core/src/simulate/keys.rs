//! Where simulated requests' hash keys come from: a list of key values, an access log in
//! common or combined format, or a synthetic population (uniform or Zipf over K keys).
//!
//! A source holds raw values; each pool hashes them for its own hash key with the very
//! functions the proxy uses (`hash_bytes` on the value, `hash_ip` on a client address),
//! so a key lands on the same backend in the simulation as in a running instance.

use super::rng::Rng;
use crate::config::HashKey;
use crate::policy::{hash_bytes, hash_ip, key_hash};
use std::net::IpAddr;

/// The keys of the simulated requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum KeySource {
    /// Every request carries a new random key: hash pools show their key-space ownership.
    #[default]
    Random,
    /// One key value per line, as the request carries it (an empty line: no key). Read in
    /// order and repeated when more requests are simulated than there are lines.
    List(Vec<String>),
    /// Requests read from an access log, in order, repeated like a list.
    AccessLog(Vec<LogRecord>),
    /// Keys drawn uniformly from `distinct` keys.
    Uniform {
        /// How many keys.
        distinct: u64,
    },
    /// Keys drawn from `distinct` keys with Zipf's law: the key of rank r is drawn with
    /// probability proportional to 1 / r^s, so a few hot keys carry much of the traffic.
    Zipf {
        /// The exponent: 0 is uniform, 1 classic Zipf.
        s: f64,
        /// How many keys.
        distinct: u64,
    },
    /// Requests a running instance sampled, in order, repeated like a list: the key is
    /// read from each with the pool's own hash key.
    Requests(std::sync::Arc<[super::SampledRequest]>),
}

/// What the simulator needs from one access log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Line number in the log, for messages.
    pub line: usize,
    /// The first field: the client's address as the server logged it.
    pub client: String,
    /// The request target (`/path?query`), `None` when the request line is `-` or garbled.
    pub target: Option<String>,
}

/// Why keys could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    /// An access log line that is not common or combined log format.
    #[error("line {line}: not a common or combined log line ({reason})")]
    BadLogLine {
        /// The line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    #[error(
        "line {line}: `{value}` is not an IP address, but pool `{pool}` hashes on the client address"
    )]
    /// A logged client that is not an IP address, for a pool hashing on it.
    BadAddress {
        /// The pool.
        pool: String,
        /// The line number.
        line: usize,
        /// The first field as logged.
        value: String,
    },
    #[error(
        "pool `{pool}` hashes on {key}, which common and combined access logs do not record; \
         give the key values with --keys FILE (one per line) instead"
    )]
    /// The pool hashes on something access logs do not record.
    NotInLog {
        /// The pool.
        pool: String,
        /// Its hash key, described.
        key: String,
    },
    /// A synthetic population of no keys.
    #[error("a synthetic key population needs at least one key (got {distinct})")]
    NoKeys {
        /// The count given.
        distinct: u64,
    },
    /// A Zipf exponent that is negative or not finite.
    #[error("the Zipf exponent must be a finite number >= 0 (got {s})")]
    BadExponent {
        /// The exponent given.
        s: f64,
    },
    /// The source gave no keys (an empty list or log).
    #[error("the key source is empty")]
    Empty,
}

/// Lines of a key list: the value per line, without the line ending.
pub fn parse_key_list(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_string()).collect()
}

/// Parse an access log in common (`host ident user [date] "request" status bytes`) or
/// combined (the same plus `"referer" "user-agent"`) format. Blank lines are skipped.
pub fn parse_access_log(text: &str) -> Result<Vec<LogRecord>, KeyError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_log_line(line, n + 1).map_err(|reason| KeyError::BadLogLine {
            line: n + 1,
            reason,
        })?;
        out.push(record);
    }
    Ok(out)
}

fn parse_log_line(line: &str, number: usize) -> Result<LogRecord, &'static str> {
    let (client, rest) = line
        .trim_start()
        .split_once(' ')
        .ok_or("no fields after the client address")?;
    let open = rest.find('[').ok_or("no [date] field")?;
    let close = open + rest[open..].find(']').ok_or("unterminated [date] field")?;
    let after = rest[close + 1..].trim_start();
    let request = after
        .strip_prefix('"')
        .ok_or("no quoted request line after the date")?;
    let end = closing_quote(request).ok_or("unterminated request line")?;
    let mut parts = request[..end].split(' ');
    let target = match (parts.next(), parts.next()) {
        (Some(_method), Some(t)) if !t.is_empty() => Some(origin_form(t).to_string()),
        _ => None,
    };
    Ok(LogRecord {
        line: number,
        client: client.to_string(),
        target,
    })
}

/// The index of the first `"` not escaped by a backslash (servers escape quotes inside
/// the request line that way).
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `http://host/p?q` (absolute form, as forward proxies log it) becomes `/p?q`.
fn origin_form(target: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    target
}

/// The path (without the query) and the query (without `?`) of a request target.
fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = target.split('#').next().unwrap_or("");
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// The raw value of the first query parameter `name`, as `policy::key` reads it.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn non_empty(v: &str) -> Option<u64> {
    (!v.is_empty()).then(|| hash_bytes(v.as_bytes()))
}

/// Parse `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678` or `[2001:db8::1]:5678`.
fn parse_ip(v: &str) -> Option<IpAddr> {
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    let host = match v.strip_prefix('[') {
        Some(rest) => &rest[..rest.find(']')?],
        None => v.rsplit_once(':')?.0,
    };
    host.parse().ok()
}

/// Keys resolved for one pool: hashes ready for the selector.
#[derive(Debug)]
pub(super) enum KeyStream {
    /// The pool does not hash: keys are irrelevant.
    Unused,
    Random,
    /// Hashes in order, repeated (`None`: the request has no key).
    Cycle {
        hashes: Vec<Option<u64>>,
        next: usize,
    },
    /// Draws from a population; `cdf` is `None` for uniform draws.
    Population {
        hashes: Vec<u64>,
        cdf: Option<Vec<f64>>,
    },
}

impl KeyStream {
    /// Resolve `source` for a pool hashing on `key` (`None`: the pool does not hash).
    pub(super) fn new(
        source: &KeySource,
        key: Option<&HashKey>,
        pool: &str,
    ) -> Result<Self, KeyError> {
        let Some(key) = key else {
            return Ok(KeyStream::Unused);
        };
        let cycle = |hashes: Vec<Option<u64>>| match hashes.is_empty() {
            true => Err(KeyError::Empty),
            false => Ok(KeyStream::Cycle { hashes, next: 0 }),
        };
        match source {
            KeySource::Random => Ok(KeyStream::Random),
            KeySource::List(values) => cycle(hash_list(values, key, pool)?),
            KeySource::AccessLog(records) => cycle(hash_log(records, key, pool)?),
            // The client address in a sample is already resolved: no proxy to trust.
            KeySource::Requests(reqs) => {
                cycle(reqs.iter().map(|r| key_hash(key, r, &[])).collect())
            }
            KeySource::Uniform { distinct } => Ok(KeyStream::Population {
                hashes: population(*distinct)?,
                cdf: None,
            }),
            KeySource::Zipf { s, distinct } => {
                if !s.is_finite() || *s < 0.0 {
                    return Err(KeyError::BadExponent { s: *s });
                }
                let hashes = population(*distinct)?;
                let mut acc = 0.0;
                let cdf = (1..=hashes.len())
                    .map(|r| {
                        acc += (r as f64).powf(-s);
                        acc
                    })
                    .collect();
                Ok(KeyStream::Population {
                    hashes,
                    cdf: Some(cdf),
                })
            }
        }
    }

    /// The next request's key hash (`None` for no key, or when the pool does not hash).
    pub(super) fn next(&mut self, rng: &Rng) -> Option<u64> {
        match self {
            KeyStream::Unused => None,
            KeyStream::Random => Some(rng.next()),
            KeyStream::Cycle { hashes, next } => {
                let h = hashes[*next];
                *next = (*next + 1) % hashes.len();
                h
            }
            KeyStream::Population { hashes, cdf: None } => {
                Some(hashes[rng.below(hashes.len() as u64) as usize])
            }
            KeyStream::Population {
                hashes,
                cdf: Some(cdf),
            } => {
                let total = cdf[cdf.len() - 1];
                let u = rng.unit() * total;
                let i = cdf.partition_point(|&c| c <= u).min(hashes.len() - 1);
                Some(hashes[i])
            }
        }
    }
}

/// Synthetic keys `key-0`, `key-1`, ... hashed like request values.
fn population(distinct: u64) -> Result<Vec<u64>, KeyError> {
    if distinct == 0 {
        return Err(KeyError::NoKeys { distinct });
    }
    Ok((0..distinct)
        .map(|i| hash_bytes(format!("key-{i}").as_bytes()))
        .collect())
}

fn hash_list(values: &[String], key: &HashKey, pool: &str) -> Result<Vec<Option<u64>>, KeyError> {
    values
        .iter()
        .enumerate()
        .map(|(n, v)| match key {
            HashKey::ClientAddress if v.is_empty() => Ok(None),
            HashKey::ClientAddress => match parse_ip(v) {
                Some(ip) => Ok(Some(hash_ip(ip))),
                None => Err(KeyError::BadAddress {
                    pool: pool.to_string(),
                    line: n + 1,
                    value: v.clone(),
                }),
            },
            _ => Ok(non_empty(v)),
        })
        .collect()
}

pub(super) fn hash_log(
    records: &[LogRecord],
    key: &HashKey,
    pool: &str,
) -> Result<Vec<Option<u64>>, KeyError> {
    if matches!(key, HashKey::Header(_) | HashKey::Cookie(_)) {
        return Err(KeyError::NotInLog {
            pool: pool.to_string(),
            key: key.describe(),
        });
    }
    records
        .iter()
        .map(|r| {
            let target = r.target.as_deref().map(split_target);
            Ok(match key {
                HashKey::ClientAddress => match parse_ip(&r.client) {
                    Some(ip) => Some(hash_ip(ip)),
                    None => {
                        return Err(KeyError::BadAddress {
                            pool: pool.to_string(),
                            line: r.line,
                            value: r.client.clone(),
                        })
                    }
                },
                HashKey::Path => target.and_then(|(p, _)| non_empty(p)),
                HashKey::Query(name) => target
                    .and_then(|(_, q)| q)
                    .and_then(|q| query_param(q, name))
                    .and_then(non_empty),
                HashKey::Header(_) | HashKey::Cookie(_) => None,
            })
        })
        .collect()
}
