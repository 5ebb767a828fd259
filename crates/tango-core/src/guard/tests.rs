mod canary;
mod noise;

use super::canary::{changed_pools, Canary, ScopePool};
use super::*;
use crate::config::defaults::guard::MIN_SAMPLE as MIN_SAMPLE_TO_PREDICT;
use crate::config::{parse, Loaded};
use crate::detector::{Basis, Cause, Evidence};
use crate::journal::SuspectedCause;
use crate::simulate::SampledRequest;
use std::path::Path;
use std::sync::Arc;

/// A file with one pool `web` of four backends b1..b4 with these weights.
fn file(extra_pool: &str, weights: [u32; 4], tail: &str) -> Loaded {
    let mut s =
        String::from("[[listener]]\nlisten = \"127.0.0.1:8080\"\n\n[[pool]]\nname = \"web\"\n");
    s.push_str(extra_pool);
    s.push('\n');
    for (i, w) in weights.iter().enumerate() {
        s.push_str(&format!(
            "[[pool.backend]]\nname = \"b{n}\"\naddress = \"10.0.0.{n}:80\"\nweight = {w}\n",
            n = i + 1
        ));
    }
    s.push_str(tail);
    match parse("t.toml", &s, Path::new(".")) {
        Ok(l) => l,
        Err(e) => panic!("{}", e.render()),
    }
}

fn observed(rate: f64) -> HashMap<String, PoolObservation> {
    let mut m = HashMap::new();
    m.insert(
        "web".to_string(),
        PoolObservation {
            rate_rps: rate,
            latency: Some(std::time::Duration::from_millis(2)),
            sample: None,
        },
    );
    m
}

fn run(
    live: &Loaded,
    new: &Loaded,
    o: &Overrides,
    obs: &HashMap<String, PoolObservation>,
) -> Judgement {
    judge(Input {
        live,
        new,
        settings: &live.config.guard,
        overrides: o,
        observed: obs,
    })
}

const ALLOW_TNG001: &str =
    "[[allow]]\nrule = \"TNG001\"\npool = \"web\"\nreason = \"b2 is the big machine\"\n";

#[test]
fn the_weight_typo_is_refused_naming_the_finding_and_the_predicted_share() {
    let live = file("", [1, 1, 1, 1], "");
    let new = file("", [1, 10, 1, 1], "");
    let j = run(&live, &new, &Overrides::default(), &observed(500.0));
    assert!(j.refused());
    assert_eq!(
        j.reasons(),
        vec![
            "new warning TNG001 at t.toml:14:10: b2 has weight 10, 10x the median of its peers (1): it will get 77% of the pool's traffic".to_string(),
            "b2 would take 77% of pool web instead of 25% (+51.9 points, limit 10; about 385 of the pool's 500 requests/s)".to_string(),
        ]
    );
    assert_eq!(j.next_steps().len(), 2);
    assert!(j.next_steps()[0].contains("[[allow]] rule = \"TNG001\" pool = \"web\""));
    assert!(j.next_steps()[1].contains("tango reload --allow-shift web"));
    assert_eq!(j.pools.len(), 1);
    assert_eq!(j.pools[0].basis, KeyBasis::Weights);
    assert!(j.pools[0].moves.over && !j.pools[0].forced);
    // Findings the live file already had (no health check, ...) are reported, not new.
    assert!(j.findings.iter().any(|f| !f.new));
    assert_eq!(j.findings.iter().filter(|f| f.new).count(), 1);
}

#[test]
fn an_allowed_finding_and_an_allowed_shift_apply_and_the_new_split_is_expected() {
    let live = file("", [1, 1, 1, 1], "");
    let new = file("", [1, 10, 1, 1], ALLOW_TNG001);
    let o = Overrides {
        force: false,
        allow_shift: vec!["web".into()],
    };
    let j = run(&live, &new, &o, &observed(0.0));
    assert!(!j.refused(), "{:?}", j.reasons());
    assert!(j.overridden.is_empty());
    assert_eq!(
        j.overrides(),
        vec!["shift allowed (by the request): b2 moves +51.9 points in pool web".to_string()]
    );
    let allowed = j.findings.iter().find(|f| f.allowed.is_some()).unwrap();
    assert_eq!(allowed.allowed.as_deref(), Some("b2 is the big machine"));
    let (pool, shares) = &j.expectations()[0];
    assert_eq!(pool, "web");
    let b2 = shares.iter().find(|(n, _)| n == "b2").unwrap().1;
    assert!((b2 - 10.0 / 13.0).abs() < 0.01, "{b2}");
}

#[test]
fn allowing_a_shift_in_a_pool_the_file_does_not_have_is_refused_naming_its_pools() {
    let live = file("", [1, 1, 1, 1], "");
    let o = Overrides {
        force: false,
        allow_shift: vec!["wbe".into()],
    };
    let j = run(&live, &file("", [1, 1, 1, 1], ""), &o, &observed(0.0));
    assert!(j.refused());
    assert_eq!(
        j.reasons(),
        vec!["allow_shift names pool wbe, which the new file does not have (its pools: web)"]
    );
    assert!(j.next_steps()[0].contains("--allow-shift NAME"));
}

#[test]
fn force_lets_warnings_and_shifts_through_but_never_errors() {
    let live = file("", [1, 1, 1, 1], "");
    let o = Overrides {
        force: true,
        allow_shift: Vec::new(),
    };
    let j = run(&live, &file("", [1, 10, 1, 1], ""), &o, &observed(0.0));
    assert!(!j.refused());
    assert_eq!(j.overridden.len(), 2);
    assert!(j.pools[0].forced);
    assert!(
        j.expectations().is_empty(),
        "a forced shift is not expected"
    );
    assert!(j.overrides()[0].starts_with("forced: new warning TNG001"));

    let drained = run(&live, &file("", [0, 0, 0, 0], ""), &o, &observed(0.0));
    assert!(drained.refused());
    assert!(
        drained.reasons()[0].starts_with("new error TNG004 at t.toml:5:8"),
        "{:?}",
        drained.reasons()
    );
    assert!(drained.next_steps()[0].contains("never forced"));
}

#[test]
fn findings_the_live_configuration_already_had_never_block() {
    let live = file("", [1, 10, 1, 1], "");
    let new = file("try_timeout = \"3s\"", [1, 10, 1, 1], "");
    let j = run(&live, &new, &Overrides::default(), &observed(0.0));
    assert!(!j.refused(), "{:?}", j.reasons());
    assert!(j
        .findings
        .iter()
        .any(|f| f.diagnostic.code == Some("TNG001") && !f.new));
    // The pool changed (a timeout) but its split does not move.
    assert_eq!(j.pools.len(), 1);
    assert!(j.pools[0].moves.largest_shift_points < 0.5);
}

#[test]
fn the_files_allow_shift_counts_only_for_the_reload_that_adds_the_pool() {
    let live = file("", [1, 1, 1, 1], "");
    let tail = format!("{ALLOW_TNG001}[guard]\nallow_shift = [\"web\"]\n");
    let new = file("", [1, 10, 1, 1], &tail);
    let j = run(&live, &new, &Overrides::default(), &observed(0.0));
    assert!(!j.refused(), "{:?}", j.reasons());
    assert_eq!(j.pools[0].allowed, Some(ShiftAllowance::File));
    // Once in force, the same entry allows nothing more.
    let later = file("", [1, 1, 1, 1], &tail);
    let j = run(&new, &later, &Overrides::default(), &observed(0.0));
    assert!(j.refused());
    assert!(
        matches!(j.refusals[0], Refusal::Shift { .. }),
        "{:?}",
        j.reasons()
    );
    // The way on for SIGHUP is not to add what the file already has.
    let step = j.refusals[0].next_step();
    assert!(
        !step.contains("add \"web\" to [guard] allow_shift"),
        "{step}"
    );
    assert!(
        step.contains("already lists \"web\" in [guard] allow_shift"),
        "{step}"
    );
    assert!(step.contains("reload once without the entry"), "{step}");
}

#[test]
fn a_disabled_guard_refuses_nothing_and_still_reports_findings() {
    let live = file(
        "",
        [1, 1, 1, 1],
        "[guard]\nenabled = false\nrollback = false\n",
    );
    let j = run(
        &live,
        &file("", [1, 10, 1, 1], ""),
        &Overrides::default(),
        &observed(0.0),
    );
    assert!(!j.refused());
    assert!(j.pools.is_empty(), "nothing needs a prediction");
    // With the canary on, the predictions tell it what to expect.
    let live = file("", [1, 1, 1, 1], "[guard]\nenabled = false\n");
    let j = run(
        &live,
        &file("", [1, 10, 1, 1], ""),
        &Overrides::default(),
        &observed(0.0),
    );
    assert!(!j.refused() && j.overridden.is_empty());
    assert_eq!(j.expectations().len(), 1);
    assert!(j
        .findings
        .iter()
        .any(|f| f.new && f.diagnostic.code == Some("TNG001")));
}

fn sample(n: usize) -> Arc<[SampledRequest]> {
    (0..n)
        .map(|i| {
            let user = format!("user-{i}");
            let headers: Vec<(&str, &[u8])> =
                vec![("x-user", user.as_bytes()), ("x-tenant", b"acme")];
            SampledRequest::new("10.1.1.1".parse().unwrap(), "/", None, headers.into_iter())
        })
        .collect()
}

#[test]
fn a_hash_key_change_that_collapses_the_live_keys_is_refused() {
    let ring = |name: &str| {
        format!("policy = \"ring_hash\"\nhash_key = {{ source = \"header\", name = \"{name}\" }}\non_missing_key = \"random\"\nmax_load_factor = 1.25")
    };
    let live = file(&ring("x-user"), [1, 1, 1, 1], "");
    let new = file(&ring("x-tenant"), [1, 1, 1, 1], "");
    let mut obs = observed(300.0);
    obs.get_mut("web").unwrap().sample = Some(sample(2000));
    let j = run(&live, &new, &Overrides::default(), &obs);
    assert_eq!(j.pools[0].basis, KeyBasis::LiveSample { requests: 2000 });
    assert_eq!(j.refusals.len(), 1, "{:?}", j.reasons());
    let Refusal::Shift {
        to_pct, from_pct, ..
    } = &j.refusals[0]
    else {
        panic!("{:?}", j.reasons())
    };
    assert_eq!(*to_pct, 100.0);
    assert!((15.0..35.0).contains(from_pct), "{from_pct}");
    // With no live requests the prediction falls back to key-space ownership, which a
    // change of key does not move: only the live sample shows the collapse.
    let j = run(&live, &new, &Overrides::default(), &observed(300.0));
    assert_eq!(j.pools[0].basis, KeyBasis::KeySpace { sampled: 0 });
    assert!(!j.refused(), "{:?}", j.reasons());
}

#[test]
fn unchanged_pools_are_not_predicted_and_the_scope_names_changed_backends() {
    let live = file("", [1, 1, 1, 1], "");
    let same = run(
        &live,
        &file("", [1, 1, 1, 1], ""),
        &Overrides::default(),
        &observed(0.0),
    );
    assert!(same.pools.is_empty() && same.scope.is_empty());
    let new = file("", [1, 2, 1, 1], "");
    assert_eq!(
        changed_pools(&live.config, &new.config),
        vec![ScopePool {
            pool: "web".into(),
            backends: Some(vec!["b2".into()]),
        }]
    );
    let policy = file("policy = \"random\"", [1, 1, 1, 1], "");
    assert_eq!(
        changed_pools(&live.config, &policy.config)[0].backends,
        None
    );
}

fn alert(kind: AlertKind, backend: &str) -> Evidence {
    Evidence {
        pool: "web".into(),
        backend: backend.into(),
        kind,
        basis: Basis::Baseline,
        observed: 0.7,
        expected: 0.25,
        ratio: 2.8,
        z: 20.0,
        window_ms: 2000,
        requests: 700,
        pool_requests: 1000,
        phi: 1.0,
        onset_ms: 1_000,
        at_ms: 3_000,
        cause: Cause::Config,
        detail: None,
        client_errors: None,
    }
}

fn cause(generation: Option<u64>) -> SuspectedCause {
    SuspectedCause {
        class: if generation.is_some() {
            Cause::Config
        } else {
            Cause::Health
        },
        generation,
        change: None,
        at_ms: None,
        sentence: String::new(),
        clause: String::new(),
        backend: None,
        series: None,
    }
}

use crate::detector::AlertKind;

#[test]
fn the_canary_blames_only_alerts_attributed_to_its_reload_in_what_it_changed() {
    let c = Canary {
        generation: 2,
        until_ms: 30_000,
        longest_until_ms: 30_000,
        pools: vec![ScopePool {
            pool: "web".into(),
            backends: Some(vec!["b2".into()]),
        }],
        shares: vec![0.25],
    };
    let over = alert(AlertKind::OverShare, "b2");
    assert!(c.caused(&over, &cause(Some(2)), 3_000));
    // A share alert on any backend of the pool counts: the others lose what b2 gains.
    assert!(c.caused(&alert(AlertKind::UnderShare, "b1"), &cause(Some(2)), 3_000));
    assert!(
        !c.caused(&over, &cause(Some(1)), 3_000),
        "another generation"
    );
    assert!(
        !c.caused(&over, &cause(None), 3_000),
        "health, not the reload"
    );
    assert!(
        !c.caused(&over, &cause(Some(2)), 30_001),
        "after the window"
    );
    assert!(c.caused(&alert(AlertKind::Errors, "b2"), &cause(Some(2)), 3_000));
    assert!(
        !c.caused(&alert(AlertKind::Latency, "b3"), &cause(Some(2)), 3_000),
        "an outlier on a backend the reload did not touch"
    );
    let mut other = over.clone();
    other.pool = "api".into();
    assert!(!c.caused(&other, &cause(Some(2)), 3_000));
}

#[test]
fn adding_or_removing_backends_is_no_shift_of_the_others() {
    let live = file("", [1, 1, 1, 1], "");
    let add = "[[pool.backend]]\nname = \"b5\"\naddress = \"10.0.0.5:80\"\n";
    let new = file("", [1, 1, 1, 1], add);
    let j = run(&live, &new, &Overrides::default(), &observed(0.0));
    assert!(!j.refused(), "{:?}", j.reasons());
    let p = &j.pools[0];
    assert!(p.moves.membership_changed && p.moves.largest_shift_points < 1.0);
    let b5 = p.backends.iter().find(|b| b.name == "b5").unwrap();
    assert_eq!(b5.old_pct, None);
    assert!((b5.new_pct.unwrap() - 20.0).abs() < 0.5);
    // A typo among the kept backends still shows, measured among them.
    let typo = file("", [1, 10, 1, 1], &format!("{add}{ALLOW_TNG001}"));
    let j = run(&live, &typo, &Overrides::default(), &observed(500.0));
    assert_eq!(
        j.reasons(),
        vec!["b2 would take 77% of what pool web's kept backends get instead of 25% (+51.9 points, limit 10)".to_string()]
    );
}

/// A backend added at weight 4 beside four at weight 1 takes half the pool: no kept
/// backend's share among the kept ones moves, and it is under TNG001's bar, but it is
/// the weight typo on a new backend. At its peers' weight it passes.
#[test]
fn a_backend_added_far_above_its_peers_share_is_refused() {
    let live = file("", [1, 1, 1, 1], "");
    let add = |w: u32| {
        format!("[[pool.backend]]\nname = \"b5\"\naddress = \"10.0.0.5:80\"\nweight = {w}\n")
    };
    let j = run(
        &live,
        &file("", [1, 1, 1, 1], &add(4)),
        &Overrides::default(),
        &observed(200.0),
    );
    assert!(j.findings.iter().all(|f| !f.new), "{:?}", j.findings);
    let reasons = j.reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with(
            "b5 would join pool web taking 50% of it, where the backends it joins take 12"
        ) && reasons[0]
            .contains("(+37.5 points, limit 10; about 100 of the pool's 200 requests/s)"),
        "{}",
        reasons[0]
    );
    match &j.refusals[0] {
        Refusal::Shift { backend, joins, .. } => assert!(backend == "b5" && *joins),
        r => panic!("{r:?}"),
    }
    // Allowed for this reload, it passes and is expected.
    let o = Overrides {
        allow_shift: vec!["web".into()],
        ..Overrides::default()
    };
    let j = run(
        &live,
        &file("", [1, 1, 1, 1], &add(4)),
        &o,
        &observed(200.0),
    );
    assert!(!j.refused() && j.pools[0].allowed.is_some());
    // At its peers' weight it is an ordinary addition.
    let j = run(
        &live,
        &file("", [1, 1, 1, 1], &add(1)),
        &Overrides::default(),
        &observed(200.0),
    );
    assert!(!j.refused(), "{:?}", j.reasons());
}
