use super::*;
use crate::config::parse;
use crate::journal::ChangeKind;
use std::path::Path;

fn config(extra: &str, weights: &[u32]) -> Config {
    let mut s =
        String::from("[[listener]]\nlisten = \"127.0.0.1:8080\"\n\n[[pool]]\nname = \"web\"\n");
    s.push_str(extra);
    s.push('\n');
    for (i, w) in weights.iter().enumerate() {
        s.push_str(&format!(
            "[[pool.backend]]\nname = \"web-{}\"\naddress = \"10.0.0.{}:80\"\nweight = {w}\n",
            i + 1,
            i + 1
        ));
    }
    match parse("t.toml", &s, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

fn opts() -> DiffOptions {
    DiffOptions {
        sim: SimOptions {
            requests: 20_000,
            ..SimOptions::default()
        },
        ..DiffOptions::default()
    }
}

#[test]
fn the_postmortem_weight_typo_moves_a_backend_from_25_to_77_percent_and_fails() {
    let old = config("policy = \"round_robin\"", &[1, 1, 1, 1]);
    let new = config("policy = \"round_robin\"", &[1, 1, 10, 1]);
    let r = diff(&old, &new, &opts()).unwrap();
    assert_eq!(r.verdict, DiffVerdict::Fail);
    let b = &r.pools[0].backends[2];
    assert_eq!(b.name, "web-3");
    assert_eq!(b.old_pct.map(|p| p.round()), Some(25.0));
    assert_eq!(b.new_pct.map(|p| p.round()), Some(77.0));
    assert!(
        (b.delta_points - (1000.0 / 13.0 - 25.0)).abs() < 0.1,
        "{b:?}"
    );
    assert!(r.pools[0].fails);
    assert!(matches!(
        r.changes[0].kind,
        ChangeKind::Weight { from: 1, to: 10 }
    ));
}

#[test]
fn an_allowed_pool_or_a_higher_threshold_passes() {
    let old = config("policy = \"round_robin\"", &[1, 1, 1, 1]);
    let new = config("policy = \"round_robin\"", &[1, 1, 10, 1]);
    let mut o = opts();
    o.allow_shift = vec!["web".into()];
    let r = diff(&old, &new, &o).unwrap();
    assert_eq!(r.verdict, DiffVerdict::Pass);
    assert!(r.pools[0].allowed && !r.pools[0].fails);
    let mut o = opts();
    o.max_shift_points = 60.0;
    assert_eq!(diff(&old, &new, &o).unwrap().verdict, DiffVerdict::Pass);
}

#[test]
fn each_move_over_the_limit_is_marked_and_only_those() {
    // web-3 goes from 25% to 40% (+15 points), each other backend from 25% to 20%.
    let old = config("policy = \"round_robin\"", &[1, 1, 1, 1]);
    let new = config("policy = \"round_robin\"", &[1, 1, 2, 1]);
    let m = &diff(&old, &new, &opts()).unwrap().pools[0].moves;
    let over: Vec<&str> = (m.kept.iter().filter(|k| k.over))
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(over, ["web-3"], "{m:?}");
    assert!(m.over);
    // The pool is over exactly when one of its moves is.
    let mut o = opts();
    o.max_shift_points = 20.0;
    let m = &diff(&old, &new, &o).unwrap().pools[0].moves;
    assert!(!m.over && m.kept.iter().all(|k| !k.over), "{m:?}");
}

#[test]
fn a_small_change_passes_and_an_unchanged_config_moves_nothing() {
    let old = config("policy = \"random\"", &[2, 2, 2, 2]);
    let r = diff(&old, &old, &opts()).unwrap();
    assert!(r.changes.is_empty() && r.other_changes.is_empty());
    assert_eq!(r.pools[0].moves.largest_shift_points, 0.0);
    let new = config("policy = \"random\"", &[2, 2, 2, 3]);
    let r = diff(&old, &new, &opts()).unwrap();
    assert_eq!(r.verdict, DiffVerdict::Pass);
    assert!(
        r.pools[0].moves.largest_shift_points > 2.0,
        "{:?}",
        r.pools[0]
    );
}

#[test]
fn added_and_removed_backends_are_matched_by_address() {
    let old = config("policy = \"round_robin\"", &[1, 1, 1]);
    let new = config("policy = \"round_robin\"", &[1, 1]);
    let r = diff(&old, &new, &opts()).unwrap();
    let gone = r.pools[0]
        .backends
        .iter()
        .find(|b| b.address == "10.0.0.3:80")
        .unwrap();
    assert_eq!(gone.new_pct, None);
    assert!((gone.delta_points + 100.0 / 3.0).abs() < 0.1);
    // 33 -> 50 for the survivors, but among themselves they stay at half each: the
    // removed backend leaves its own share, which is no shift of the others (as the
    // reload guard judges it).
    assert!(r.pools[0].moves.membership_changed);
    assert_eq!(r.pools[0].moves.largest_shift_points, 0.0);
    assert_eq!(r.verdict, DiffVerdict::Pass);
}

#[test]
fn a_backend_added_is_judged_against_the_median_share_of_those_it_joins() {
    let old = config("policy = \"round_robin\"", &[1, 1, 1, 1]);
    // At the weight of its peers it takes 20% as each of them does: no shift.
    let r = diff(
        &old,
        &config("policy = \"round_robin\"", &[1, 1, 1, 1, 1]),
        &opts(),
    )
    .unwrap();
    assert_eq!(r.verdict, DiffVerdict::Pass, "{:?}", r.pools[0]);
    let m = &r.pools[0].moves;
    assert_eq!(m.joined.len(), 1);
    assert_eq!(m.joined[0].name, "web-5");
    assert!(m.joined[0].move_points().abs() < 0.1, "{m:?}");
    // At four times their weight it takes 50% where each of them takes 12.5%.
    let r = diff(
        &old,
        &config("policy = \"round_robin\"", &[1, 1, 1, 1, 4]),
        &opts(),
    )
    .unwrap();
    assert_eq!(r.verdict, DiffVerdict::Fail);
    let w = r.pools[0].moves.worst().unwrap();
    assert_eq!(w.name, "web-5");
    assert!(r.pools[0].moves.joins(w));
    assert!((w.move_points() - 37.5).abs() < 0.1, "{w:?}");
}

#[test]
fn a_new_pool_does_not_fail_the_review() {
    let old = config("policy = \"round_robin\"", &[1]);
    let mut new = old.clone();
    let mut extra = new.pools[0].clone();
    extra.name = "api".into();
    new.pools.push(extra);
    let r = diff(&old, &new, &opts()).unwrap();
    assert_eq!(r.pools[1].status, PoolStatus::Added);
    assert_eq!(r.verdict, DiffVerdict::Pass);
}

#[test]
fn membership_changes_only_in_a_kept_pool_whose_backends_change() {
    let old = config("policy = \"round_robin\"", &[1, 1]);
    let mut new = old.clone();
    let mut extra = new.pools[0].clone();
    extra.name = "api".into();
    new.pools.push(extra);
    // "web" is kept with its backends; "api" is added whole, and removed whole the
    // other way round: neither pool's membership changed.
    let membership = |old: &Config, new: &Config| -> Vec<(String, PoolStatus, bool)> {
        (diff(old, new, &opts()).unwrap().pools.into_iter())
            .map(|p| (p.pool, p.status, p.moves.membership_changed))
            .collect()
    };
    assert_eq!(
        membership(&old, &new),
        [
            ("web".into(), PoolStatus::Kept, false),
            ("api".into(), PoolStatus::Added, false)
        ]
    );
    assert_eq!(
        membership(&new, &old),
        [
            ("web".into(), PoolStatus::Kept, false),
            ("api".into(), PoolStatus::Removed, false)
        ]
    );
    // A backend added to a kept pool changes its membership.
    let grown = config("policy = \"round_robin\"", &[1, 1, 1]);
    assert_eq!(
        membership(&old, &grown),
        [("web".into(), PoolStatus::Kept, true)]
    );
}

#[test]
fn new_findings_are_those_whose_rule_and_key_are_new() {
    use crate::diag::Severity;
    let d = |code, key: &str| Diagnostic {
        severity: Severity::Warning,
        code: Some(code),
        message: "m".into(),
        key: key.into(),
        span: None,
        why: None,
        hint: None,
    };
    let old = [d("TNG001", "pool[web]"), d("TNG002", "pool[web]")];
    let new = [
        d("TNG001", "pool[web]"),
        d("TNG001", "pool[api]"),
        d("TNG003", "pool[web]"),
    ];
    let found = new_findings(&old, &new);
    let keys: Vec<_> = found.iter().map(|d| (d.code, d.key.as_str())).collect();
    assert_eq!(
        keys,
        [(Some("TNG001"), "pool[api]"), (Some("TNG003"), "pool[web]")]
    );
}

#[test]
fn an_address_change_and_a_rename_are_one_row_each() {
    let old = config("policy = \"round_robin\"", &[1, 1, 1]);
    let text = "[[listener]]\nlisten = \"127.0.0.1:8080\"\n[[pool]]\nname = \"web\"\n\
                policy = \"round_robin\"\n\
                [[pool.backend]]\nname = \"web-1\"\naddress = \"10.0.0.1:80\"\n\
                [[pool.backend]]\nname = \"web-two\"\naddress = \"10.0.0.2:80\"\n\
                [[pool.backend]]\nname = \"web-3\"\naddress = \"10.0.0.33:80\"\n";
    let new = parse("t.toml", text, Path::new(".")).unwrap().config;
    let r = diff(&old, &new, &opts()).unwrap();
    let rows: Vec<(&str, &str, Option<&str>, Option<&str>)> = r.pools[0]
        .backends
        .iter()
        .map(|b| {
            (
                b.name.as_str(),
                b.address.as_str(),
                b.renamed_from.as_deref(),
                b.moved_from.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("web-1", "10.0.0.1:80", None, None),
            ("web-two", "10.0.0.2:80", Some("web-2"), None),
            ("web-3", "10.0.0.33:80", None, Some("10.0.0.3:80")),
        ]
    );
    for b in &r.pools[0].backends {
        assert!(b.old_pct.is_some() && b.new_pct.is_some(), "{b:?}");
        assert!(b.delta_points.abs() < 1.0, "{b:?}");
    }
    assert_eq!(r.verdict, DiffVerdict::Pass);
}

fn routed(routes: &str, pool_extra: &str) -> Config {
    let s = format!(
        "[[listener]]\nlisten = \"127.0.0.1:8080\"\n\n{routes}\n[[pool]]\nname = \"web\"\n{pool_extra}\n[[pool.backend]]\naddress = \"10.0.0.1:80\"\n"
    );
    match parse("t.toml", &s, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

const TO_WEB: &str =
    "[[route]]\nhost = \"old.example\"\npool = \"web\"\n[[route]]\npool = \"web\"\n";
const REDIRECTED: &str = "[[route]]\nhost = \"old.example\"\nredirect = { host = \"new.example\", status = 301 }\n[[route]]\npool = \"web\"\n";

#[test]
fn a_route_turning_into_a_redirect_and_back_is_a_split_change() {
    let (old, new) = (routed(TO_WEB, ""), routed(REDIRECTED, ""));
    let r = diff(&old, &new, &opts()).unwrap();
    assert_eq!(
        r.split_changes,
        ["route host old.example path /: its requests leave pool web for a redirect 301 to host new.example"]
    );
    assert!(r.other_changes.is_empty(), "{:?}", r.other_changes);
    let back = diff(&new, &old, &opts()).unwrap();
    assert_eq!(
        back.split_changes,
        ["route host old.example path /: its requests go to pool web instead of a redirect 301 to host new.example"]
    );
    assert_eq!(
        redirected_routes(&new),
        ["route host old.example path /: redirect 301 to host new.example"]
    );
}

#[test]
fn edits_redirects_and_upstream_protocols_are_configuration_changes() {
    let old = routed(REDIRECTED, "");
    let routes = REDIRECTED.replace("status = 301", "status = 308").replace(
        "[[route]]\npool = \"web\"\n",
        "[[route]]\npool = \"web\"\nheaders = { response = { set = { x-a = \"1\" } } }\n",
    );
    // (A PROXY header goes with HTTP/1.1 only, so the protocol change is to TLS.)
    let new = routed(&routes, "send_proxy_protocol = \"v2\"\ntls = {}");
    let r = diff(&old, &new, &opts()).unwrap();
    assert!(r.split_changes.is_empty(), "{:?}", r.split_changes);
    assert_eq!(
        r.other_changes,
        [
            "changed route host old.example path /'s redirect from 301 to host new.example to 308 to host new.example",
            "changed route host * path /'s header edits (no traffic moves)",
            "changed pool web's tls, send_proxy_protocol (how requests reach its backends; no traffic moves)",
        ]
    );
    assert_eq!(r.verdict, DiffVerdict::Pass);
}
