//! Incidents: one event, one alert. A pool's concurrent signals (both detectors' share
//! alerts, latency and error outliers) about one event are grouped into one [`Incident`]
//! with one id and a headline backend, opened, updated and resolved as a whole.
//!
//! # Grouping
//! A fired signal joins an open incident of its pool when the incident already concerns
//! its backend, when its onset lies within `group_ms` of the onset of a signal already
//! in it, or when its cause is health and a backend of the incident is down (the others
//! taking more while a backend is out, by chance past the alert ratio now and then, are
//! that outage's doing); otherwise it starts a new incident. The share detector and the shift
//! detector reporting the same backend and kind are one signal with two sources; the
//! signal is active while either source is.
//!
//! # The headline
//! The backend whose change explains the rest, in this order:
//! 1. a backend that the journal names as the cause of the incident's signals (a weight
//!    change to it, its ejection or health transition, the backend itself);
//! 2. a backend with a latency or error signal (its own trouble moves the others);
//! 3. a backend taking more than its share (the culprit of a weight typo);
//! 4. the backend furthest under its share.
//!
//! Ties go to the larger `|z|`. So an innocent backend under its share is never the
//! headline while anything else in the incident explains it.
//!
//! # The first word
//! An incident is announced ([`IncidentEvent::Opened`]) once its headline is one of 1-3,
//! or `confirm_ms` after its first signal: under-share signals alone wait that long for
//! the over-share they usually precede (the shift and share detectors may report a few
//! ticks apart), so the first line names the culprit. An incident whose signals all
//! resolve before it is announced is dropped without a word. An announced incident
//! reports [`IncidentEvent::Updated`] when its set of active signals or its headline
//! changes, and [`IncidentEvent::Resolved`] when no signal is active and none of its
//! backends is down (a backend that is down stays in the incident until it is back or
//! removed from the pool).
//!
//! # A flapping backend
//! A backend in and out of rotation every few seconds (a flapping health check, an
//! outlier ejected again as soon as it returns) is one story, not an incident opened and
//! resolved per flap, nor re-told at every flap. An incident with a backend that was
//! down, or blamed on health, is reopened (same id, told as updated) when a signal of
//! that backend fires within `settle_ms` of its resolution; one reopened, or whose
//! backend went down again while it was open, flaps: it stays open until its signals
//! have been over and its backends back for `settle_ms`, and is re-told only when its members or headline change
//! (`settle.rs`).

use crate::alert::{
    AlertEvent, AlertKind, Cause, Evidence, Incident, IncidentEvent, Signal, SuspectedCause,
};
use crate::journal::{attribute, Event};

/// How signals are grouped into incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentConfig {
    /// Signals whose onsets are this close belong to one event.
    pub group_ms: u64,
    /// How long under-share signals alone wait for a headline before they are announced.
    pub confirm_ms: u64,
    /// How long a resolved incident whose backend was down may be reopened by that
    /// backend's signals, and how long a reopened one stays open after the backends are
    /// back.
    pub settle_ms: u64,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        Self {
            group_ms: 30_000,
            confirm_ms: 3_000,
            settle_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Tracked {
    incident: Incident,
    announced: bool,
    /// (backend, kind, active) of each signal, the headline and the backends down when
    /// last reported.
    reported: Vec<(String, AlertKind, bool)>,
    reported_headline: String,
    reported_down: Vec<String>,
    /// The last tick a backend of it was down, and whether one was at the last tick.
    down_ms: Option<u64>,
    was_down: bool,
    /// The last tick a signal of it was active or a backend of it down.
    busy_ms: u64,
    /// Reopened by a backend that went down again: it settles before it resolves.
    flapping: bool,
}

/// Groups one pool's alert events into incidents. Feed it every tick, with or without
/// events: announcing and resolving also follow time and the backends that are down.
#[derive(Debug, Clone)]
pub struct IncidentTracker {
    pool: String,
    cfg: IncidentConfig,
    open: Vec<Tracked>,
    /// Resolved incidents whose backend was down, for `settle_ms`: reopened if it goes
    /// down again.
    settled: Vec<Tracked>,
    last_id: Option<u64>,
}

impl IncidentTracker {
    /// A tracker for `pool`.
    pub fn new(pool: impl Into<String>, cfg: IncidentConfig) -> Self {
        Self {
            pool: pool.into(),
            cfg,
            open: Vec::new(),
            settled: Vec::new(),
            last_id: None,
        }
    }

    /// The incidents announced and not yet resolved.
    pub fn open(&self) -> Vec<Incident> {
        self.open
            .iter()
            .filter(|t| t.announced)
            .map(|t| t.incident.clone())
            .collect()
    }

    /// Nothing tracked, announced or not: a tick without alerts has nothing to do and
    /// needs no journal.
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
    }

    /// One tick: `alerts` are this tick's events of the pool's detectors (share and
    /// shift), `journal` the recent journal, oldest first (for the causes: each signal's
    /// from the events up to when it fired), `down` the pool's backends that are
    /// unhealthy or ejected now.
    pub fn tick(
        &mut self,
        now_ms: u64,
        alerts: &[AlertEvent],
        journal: &[Event],
        down: &[String],
    ) -> Vec<IncidentEvent> {
        for ev in alerts {
            match ev {
                AlertEvent::Fired(e) => self.fired(e, now_ms),
                AlertEvent::Resolved {
                    evidence,
                    resolved_ms,
                } => self.resolved(evidence, *resolved_ms),
            }
        }
        self.forget_settled(now_ms);
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for mut t in std::mem::take(&mut self.open) {
            let inc = &mut t.incident;
            inc.down = down
                .iter()
                .filter(|d| inc.signals.iter().any(|s| s.evidence.backend == **d))
                .cloned()
                .collect();
            let down = !inc.down.is_empty();
            // Down again after it was back: its backend flaps.
            t.flapping |= down && !t.was_down && t.down_ms.is_some();
            t.was_down = down;
            if down {
                t.down_ms = Some(now_ms);
            }
            let active = inc.signals.iter().any(|s| s.active);
            if active || down {
                t.busy_ms = now_ms;
            }
            if !active && !down && !self.settling(&t, now_ms) {
                if t.announced {
                    out.push(self.resolve(t, now_ms));
                }
                continue;
            }
            out.extend(self.tell(&mut t, now_ms, journal));
            keep.push(t);
        }
        self.open = keep;
        out
    }

    /// Announces an open incident once its headline is known (or `confirm_ms` after its
    /// first signal), and tells it again when it changed.
    fn tell(&mut self, t: &mut Tracked, now_ms: u64, journal: &[Event]) -> Option<IncidentEvent> {
        let confident = choose_headline(&mut t.incident, journal);
        let news = t.news();
        let inc = &mut t.incident;
        let told = if !t.announced {
            if !confident && now_ms < inc.opened_ms + self.cfg.confirm_ms {
                return None;
            }
            t.announced = true;
            inc.opened_ms = now_ms;
            inc.id = self.next_id(now_ms);
            IncidentEvent::Opened
        } else if news {
            IncidentEvent::Updated
        } else {
            return None;
        };
        inc.updated_ms = now_ms;
        t.reported = shape(inc);
        t.reported_headline = inc.headline.clone();
        t.reported_down = inc.down.clone();
        Some(told(inc.clone()))
    }

    fn next_id(&mut self, now_ms: u64) -> String {
        let mut s = now_ms / 1000;
        if let Some(last) = self.last_id {
            s = s.max(last + 1);
        }
        self.last_id = Some(s);
        format!("{}-{s}", self.pool)
    }

    fn fired(&mut self, e: &Evidence, now_ms: u64) {
        let group = self.cfg.group_ms;
        // The same backend and kind from the other detector: one signal, two sources.
        for t in &mut self.open {
            if let Some(s) = t
                .incident
                .signals
                .iter_mut()
                .find(|s| s.evidence.backend == e.backend && s.evidence.kind == e.kind)
            {
                if !s.sources.contains(&e.basis) {
                    s.sources.push(e.basis);
                }
                if !s.active {
                    s.active = true;
                    s.resolved_ms = None;
                    s.evidence = e.clone();
                }
                return;
            }
        }
        let signal = Signal {
            evidence: e.clone(),
            sources: vec![e.basis],
            active: true,
            resolved_ms: None,
        };
        if self.reopen(e, &signal, now_ms) {
            return;
        }
        let joins = self.open.iter_mut().find(|t| {
            (e.cause == Cause::Health && !t.incident.down.is_empty())
                || t.incident.signals.iter().any(|s| {
                    s.evidence.backend == e.backend
                        || s.evidence.onset_ms.abs_diff(e.onset_ms) <= group
                })
        });
        match joins {
            Some(t) => {
                t.incident.onset_ms = t.incident.onset_ms.min(e.onset_ms);
                t.incident.signals.push(signal);
            }
            None => self.open.push(Tracked {
                incident: Incident {
                    id: String::new(),
                    pool: self.pool.clone(),
                    headline: e.backend.clone(),
                    kind: e.kind,
                    cause: SuspectedCause {
                        class: e.cause,
                        generation: None,
                        change: None,
                        at_ms: None,
                        backend: None,
                        sentence: String::new(),
                        clause: String::new(),
                        series: None,
                    },
                    onset_ms: e.onset_ms,
                    opened_ms: now_ms,
                    updated_ms: now_ms,
                    resolved_ms: None,
                    signals: vec![signal],
                    down: Vec::new(),
                },
                announced: false,
                reported: Vec::new(),
                reported_headline: String::new(),
                reported_down: Vec::new(),
                down_ms: None,
                was_down: false,
                busy_ms: now_ms,
                flapping: false,
            }),
        }
    }

    fn resolved(&mut self, e: &Evidence, resolved_ms: u64) {
        for t in &mut self.open {
            for s in &mut t.incident.signals {
                if s.evidence.backend == e.backend && s.evidence.kind == e.kind && s.active {
                    s.sources.retain(|b| *b != e.basis);
                    if s.sources.is_empty() {
                        s.active = false;
                        s.resolved_ms = Some(resolved_ms);
                    }
                }
            }
        }
    }
}

/// The signals' states, in a fixed order (the headline order may change every tick).
fn shape(inc: &Incident) -> Vec<(String, AlertKind, bool)> {
    let mut v: Vec<(String, AlertKind, bool)> = inc
        .signals
        .iter()
        .map(|s| (s.evidence.backend.clone(), s.evidence.kind, s.active))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.as_str().cmp(b.1.as_str())));
    v
}

/// How strongly a signal claims the headline (lower first), by the rules in the module
/// documentation; `named` are the backends the causes name.
fn rank(s: &Signal, named: &[String]) -> (u8, f64) {
    let e = &s.evidence;
    let tier = if named.contains(&e.backend) {
        0
    } else {
        match e.kind {
            AlertKind::Latency | AlertKind::Errors => 1,
            AlertKind::OverShare => 2,
            AlertKind::UnderShare => 3,
        }
    };
    // Within the last tier, the furthest under its share; else the strongest evidence.
    let strength = if tier == 3 { e.ratio } else { -e.z.abs() };
    (u8::from(!s.active) * 10 + tier, strength)
}

/// Picks the headline and its cause, orders the signals headline first; returns whether
/// the headline is more than an under-share signal alone.
fn choose_headline(inc: &mut Incident, journal: &[Event]) -> bool {
    // Each signal's cause is what was known when it fired: a fix journaled later (the
    // revert, the rollback) never becomes the cause of what it fixed.
    let sorted = journal.is_sorted_by_key(|e| e.ts_ms);
    let causes: Vec<SuspectedCause> = inc
        .signals
        .iter()
        .map(|s| {
            let at = s.evidence.at_ms;
            if sorted {
                attribute(
                    &s.evidence,
                    &journal[..journal.partition_point(|e| e.ts_ms <= at)],
                )
            } else {
                let known: Vec<Event> = journal.iter().filter(|e| e.ts_ms <= at).cloned().collect();
                attribute(&s.evidence, &known)
            }
        })
        .collect();
    let named: Vec<String> = causes
        .iter()
        .filter_map(|c| c.backend.clone())
        .filter(|b| inc.signals.iter().any(|s| s.evidence.backend == *b))
        .collect();
    let mut order: Vec<usize> = (0..inc.signals.len()).collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (
            rank(&inc.signals[*a], &named),
            rank(&inc.signals[*b], &named),
        );
        ra.0.cmp(&rb.0).then(ra.1.total_cmp(&rb.1))
    });
    let head = order[0];
    let (tier, _) = rank(&inc.signals[head], &named);
    inc.headline = inc.signals[head].evidence.backend.clone();
    inc.kind = inc.signals[head].evidence.kind;
    inc.cause = causes[head].clone();
    let mut sorted: Vec<Signal> = order.iter().map(|i| inc.signals[*i].clone()).collect();
    std::mem::swap(&mut inc.signals, &mut sorted);
    tier % 10 <= 2
}

mod settle;

#[cfg(test)]
mod tests;
