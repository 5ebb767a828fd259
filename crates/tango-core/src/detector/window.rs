//! Per-backend history of tick samples and running sums over each sliding window.

use std::collections::VecDeque;

/// One tick of one backend: additive, so windows are running sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// The pool's requests in the tick.
    pub total: u64,
    pub n: u64,
    /// Expected count and binomial variance against the effective shares.
    pub e_eff: f64,
    pub v_eff: f64,
    /// The same against the configured shares.
    pub e_conf: f64,
    pub v_conf: f64,
    pub errors: u64,
    /// Failed tries that reached clients as failures (see `BackendSample::client_errors`).
    pub client_errors: u64,
    pub lat_sum: f64,
    pub lat_count: u64,
    /// Latency histogram: counts per bucket of `DetectorConfig::latency_bounds_ms`, the
    /// last bucket unbounded.
    pub hist: Hist,
}

/// Buckets a latency histogram can have (bounds beyond `HIST_LEN - 1` fold into the last).
pub(crate) const HIST_LEN: usize = 16;
pub(crate) type Hist = [u64; HIST_LEN];

/// Copies a caller's histogram, folding any buckets past the capacity into the last.
pub(crate) fn to_hist(buckets: &[u64]) -> Hist {
    let mut h = [0; HIST_LEN];
    for (i, n) in buckets.iter().enumerate() {
        h[i.min(HIST_LEN - 1)] += n;
    }
    h
}

impl Sample {
    pub(crate) fn new(total: u64, n: u64, p_eff: f64, p_conf: f64) -> Self {
        let t = total as f64;
        Self {
            total,
            n,
            e_eff: t * p_eff,
            v_eff: t * p_eff * (1.0 - p_eff),
            e_conf: t * p_conf,
            v_conf: t * p_conf * (1.0 - p_conf),
            ..Self::default()
        }
    }

    fn add(&mut self, o: &Sample) {
        self.total += o.total;
        self.n += o.n;
        self.e_eff += o.e_eff;
        self.v_eff += o.v_eff;
        self.e_conf += o.e_conf;
        self.v_conf += o.v_conf;
        self.errors += o.errors;
        self.client_errors += o.client_errors;
        self.lat_sum += o.lat_sum;
        self.lat_count += o.lat_count;
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }

    fn sub(&mut self, o: &Sample) {
        self.total -= o.total;
        self.n -= o.n;
        // Floating sums drift by rounding; never let them go below zero.
        self.e_eff = (self.e_eff - o.e_eff).max(0.0);
        self.v_eff = (self.v_eff - o.v_eff).max(0.0);
        self.e_conf = (self.e_conf - o.e_conf).max(0.0);
        self.v_conf = (self.v_conf - o.v_conf).max(0.0);
        self.errors -= o.errors;
        self.client_errors -= o.client_errors;
        self.lat_sum = (self.lat_sum - o.lat_sum).max(0.0);
        self.lat_count -= o.lat_count;
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a -= b;
        }
    }

    /// Expected count and variance for a basis.
    pub(crate) fn expectation(&self, configured: bool) -> (f64, f64) {
        if configured {
            (self.e_conf, self.v_conf)
        } else {
            (self.e_eff, self.v_eff)
        }
    }
}

/// The last `max(lengths)` samples and one running sum per window length.
#[derive(Debug, Clone)]
pub(crate) struct Windows {
    lengths: Vec<u32>,
    history: VecDeque<Sample>,
    sums: Vec<Sample>,
}

impl Windows {
    pub(crate) fn new(lengths: &[u32]) -> Self {
        Self {
            lengths: lengths.to_vec(),
            history: VecDeque::new(),
            sums: vec![Sample::default(); lengths.len()],
        }
    }

    pub(crate) fn push(&mut self, s: Sample) {
        self.history.push_front(s);
        for (len, sum) in self.lengths.iter().zip(self.sums.iter_mut()) {
            sum.add(&s);
            if let Some(old) = self.history.get(*len as usize) {
                sum.sub(old);
            }
        }
        let max = self.lengths.iter().copied().max().unwrap_or(1) as usize;
        self.history.truncate(max);
    }

    /// Ticks of history held (windows longer than this are partial).
    pub(crate) fn held(&self) -> usize {
        self.history.len()
    }

    /// `(effective length in ticks, sums)` for each window, shortest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Sample)> + '_ {
        let held = self.history.len() as u32;
        self.lengths
            .iter()
            .zip(self.sums.iter())
            .map(move |(len, s)| ((*len).min(held), s))
    }

    /// The newest `len` ticks, newest first.
    pub(crate) fn recent(&self, len: u32) -> impl Iterator<Item = &Sample> + '_ {
        self.history.iter().take(len as usize)
    }

    /// The sums of the window of exactly `len` ticks, if configured.
    pub(crate) fn window(&self, len: u32) -> Option<(u32, &Sample)> {
        self.iter()
            .zip(self.lengths.iter())
            .find(|(_, l)| **l == len)
            .map(|(w, _)| w)
    }
}
