//! `[guard]`: the reload gates' settings and the canary after an applied reload.

use super::fields::{span, V};
use crate::config::file::{GuardFile, S};
use crate::config::{Guard, Pool};

pub(super) fn guard(v: &mut V<'_>, g: Option<&S<GuardFile>>, pools: &[Pool]) -> Guard {
    let d = Guard::default();
    let Some(g) = g else { return d };
    let g = g.get_ref();
    let mut allow_shift = Vec::new();
    for (i, p) in g.allow_shift.iter().enumerate() {
        let name = p.get_ref().trim();
        if !pools.iter().any(|x| x.name == name) {
            v.err(
                &format!("guard.allow_shift[{i}]"),
                span(p),
                format!("pool `{name}` is not defined"),
                "name a pool defined with [[pool]]",
            );
        }
        allow_shift.push(name.to_string());
    }
    let mut t = v.table("guard");
    Guard {
        enabled: g.enabled.as_ref().map_or(d.enabled, |b| *b.get_ref()),
        max_shift_points: t.float("max_shift", &g.max_shift, 0.0..=100.0, d.max_shift_points),
        canary: t.duration("canary", &g.canary, d.canary),
        rollback: g.rollback.as_ref().map_or(d.rollback, |b| *b.get_ref()),
        // Past 10 standard errors no sample could ever show a move; 0 takes every
        // sampled move at face value.
        noise_sigmas: t.float("noise_sigmas", &g.noise_sigmas, 0.0..=10.0, d.noise_sigmas),
        // The sample ring holds the latest 10,000 requests: a larger minimum could
        // never be met, and every hash pool would be predicted from the key space.
        min_sample: t.int("min_sample", &g.min_sample, 0..=10_000, d.min_sample),
        allow_shift,
    }
}
