use super::*;
use crate::config::{parse, Loaded};
use crate::guard::{judge, Input, Overrides, Refusal};
use std::path::Path;
use std::sync::Arc;

/// Pools `wide` (w1..w4), `pair` (p1, p2) and `solo` (s1), then `routes`.
fn file(routes: &str, tail: &str) -> Loaded {
    let mut s = String::from("[[listener]]\nlisten = \"127.0.0.1:8080\"\n");
    let pools: [(&str, &[&str]); 3] = [
        ("wide", &["w1", "w2", "w3", "w4"]),
        ("pair", &["p1", "p2"]),
        ("solo", &["s1"]),
    ];
    for (k, (pool, backends)) in pools.iter().enumerate() {
        s.push_str(&format!("\n[[pool]]\nname = \"{pool}\"\n"));
        for (i, b) in backends.iter().enumerate() {
            s.push_str(&format!(
                "[[pool.backend]]\nname = \"{b}\"\naddress = \"10.0.{k}.{}:80\"\n",
                i + 1
            ));
        }
    }
    s.push_str(routes);
    s.push_str(tail);
    match parse("t.toml", &s, Path::new(".")) {
        Ok(l) => l,
        Err(e) => panic!("{}", e.render()),
    }
}

fn routes(table: &[(&str, &str)]) -> String {
    (table.iter())
        .map(|(path, pool)| match *path {
            "" => format!("\n[[route]]\npool = \"{pool}\"\n"),
            p => format!("\n[[route]]\npath_prefix = \"{p}\"\npool = \"{pool}\"\n"),
        })
        .collect()
}

fn req(path: &str) -> SampledRequest {
    let headers: Vec<(&str, &[u8])> = vec![("host", b"shop.example:8080")];
    SampledRequest::new("10.9.0.1".parse().unwrap(), path, None, headers.into_iter())
}

/// A pool's observation: its rate and its sampled requests, `n` of each path.
fn seen(rate: f64, paths: &[(&str, usize)]) -> PoolObservation {
    let sample: Vec<SampledRequest> = (paths.iter())
        .flat_map(|(p, n)| (0..*n).map(move |_| req(p)))
        .collect();
    PoolObservation {
        rate_rps: rate,
        latency: Some(std::time::Duration::from_millis(2)),
        sample: (!sample.is_empty()).then(|| Arc::from(sample)),
    }
}

fn run(live: &Loaded, new: &Loaded, o: &Overrides, obs: &[(&str, PoolObservation)]) -> Judgement {
    let observed: HashMap<String, PoolObservation> = (obs.iter())
        .map(|(p, o)| (p.to_string(), o.clone()))
        .collect();
    judge(Input {
        live,
        new,
        settings: &live.config.guard,
        overrides: o,
        observed: &observed,
    })
}

/// `/api` and `/static` on `wide`, everything else on `solo`: 350 requests/s to wide,
/// 7 in 8 of them `/api`, and 50 to solo.
fn busy_api(api: &str) -> (Loaded, Loaded, Vec<(&'static str, PoolObservation)>) {
    let live = file(
        &routes(&[("/api", "wide"), ("/static", "wide"), ("", "solo")]),
        "",
    );
    let new = file(
        &routes(&[("/api", api), ("/static", "wide"), ("", "solo")]),
        "",
    );
    let obs = vec![
        (
            "wide",
            seen(350.0, &[("/api/items", 280), ("/static/a.css", 40)]),
        ),
        ("solo", seen(50.0, &[("/", 60)])),
    ];
    (live, new, obs)
}

fn route_refusal(j: &Judgement) -> &RouteShift {
    let r = j.refusals.iter().find_map(|r| match r {
        Refusal::Route(r) => Some(r),
        _ => None,
    });
    r.unwrap_or_else(|| panic!("no route refusal: {:?}", j.reasons()))
}

#[test]
fn a_busy_route_moved_to_a_one_backend_pool_is_refused_naming_route_pools_and_backend() {
    let (live, new, obs) = busy_api("solo");
    let j = run(&live, &new, &Overrides::default(), &obs);
    // Each pool's own split is the same: only the route gate sees it.
    assert!(j.pools.iter().all(|p| !p.moves.over), "{:?}", j.pools);
    assert_eq!(j.refusals.len(), 1, "{:?}", j.reasons());
    let r = route_refusal(&j);
    assert_eq!(r.moved.route, "host * path /api");
    assert_eq!(r.moved.was_route, r.moved.route);
    assert_eq!(r.moved.from_pool.as_deref(), Some("wide"));
    assert_eq!(r.moved.to_pool.as_deref(), Some("solo"));
    assert_eq!((r.backend.as_str(), r.pool.as_str()), ("s1", "solo"));
    // s1 serves solo's 50 of 400 requests/s today; /api is 7/8 of wide's 350.
    assert!((r.from_pct - 12.5).abs() < 0.01, "{}", r.from_pct);
    assert!((r.to_pct - 89.0625).abs() < 0.01, "{}", r.to_pct);
    assert!((r.busiest_pct - 21.875).abs() < 0.1, "{}", r.busiest_pct);
    assert_eq!(r.requests, 380);
    assert!(
        r.noise_points > 1.0 && r.noise_points < 10.0,
        "{}",
        r.noise_points
    );
    let s = j.reasons()[0].clone();
    assert!(
        s.starts_with("route host * path /api would send its requests (77% of all requests) to pool solo instead of pool wide: s1 (pool solo) would take 89% of all requests instead of 13% (+67.2 points over the busiest backend's 22% today, limit 10; about 356 of the 400 requests/s; predicted from 380 sampled requests, noise ±"),
        "{s}"
    );
    assert!(
        j.next_steps()[0].contains("`tango reload --allow-shift solo`"),
        "{:?}",
        j.next_steps()
    );
}

#[test]
fn the_route_move_applies_when_the_gaining_pool_is_allowed_to_shift_or_forced() {
    let (live, new, obs) = busy_api("solo");
    let allow = Overrides {
        force: false,
        allow_shift: vec!["solo".into()],
    };
    let j = run(&live, &new, &allow, &obs);
    assert!(!j.refused(), "{:?}", j.reasons());
    let p = j.routes.as_ref().unwrap();
    assert_eq!((p.over, p.allowed), (true, Some(ShiftAllowance::Request)));
    assert!(
        j.overrides()
            .contains(&"shift allowed (by the request): s1 (pool solo) takes 89% of all requests instead of 13% after the route change".to_string()),
        "{:?}",
        j.overrides()
    );
    // Allowing the pool it leaves says nothing about where it goes.
    let wrong = Overrides {
        force: false,
        allow_shift: vec!["wide".into()],
    };
    assert!(run(&live, &new, &wrong, &obs).refused());
    let force = Overrides {
        force: true,
        allow_shift: Vec::new(),
    };
    let j = run(&live, &new, &force, &obs);
    assert!(!j.refused());
    assert!(j.routes.as_ref().unwrap().forced);
    assert!(j.overrides()[0].starts_with("forced: route host * path /api"));
}

#[test]
fn a_route_moved_to_a_wider_pool_spreads_its_traffic_and_passes() {
    let live = file(
        &routes(&[("/api", "pair"), ("/static", "wide"), ("", "solo")]),
        "",
    );
    let new = file(
        &routes(&[("/api", "wide"), ("/static", "pair"), ("", "solo")]),
        "",
    );
    let obs = [
        ("pair", seen(300.0, &[("/api/items", 300)])),
        ("wide", seen(60.0, &[("/static/a.css", 100)])),
        ("solo", seen(40.0, &[("/", 50)])),
    ];
    let j = run(&live, &new, &Overrides::default(), &obs);
    assert!(!j.refused(), "{:?}", j.reasons());
    let p = j.routes.as_ref().unwrap();
    assert!(!p.over);
    // The wide pool's backends each rise (from 3.75% to 18.75%), none to the busiest
    // backend's share today (p1 and p2 at 37.5%).
    assert!((p.busiest_pct - 37.5).abs() < 0.1, "{p:?}");
    let w1 = p.backends.iter().find(|b| b.backend == "w1").unwrap();
    assert!(w1.to_pct - w1.from_pct > 10.0, "{w1:?}");
    assert!(p.rise_points(w1) < 0.0, "{w1:?}");
    assert_eq!(p.moves.len(), 2, "{:?}", p.moves);
}

#[test]
fn a_route_match_narrowed_so_a_one_backend_catch_all_takes_its_requests_is_refused() {
    let live = file(&routes(&[("/api", "wide"), ("", "solo")]), "");
    let new = file(&routes(&[("/api/v2", "wide"), ("", "solo")]), "");
    let obs = [
        (
            "wide",
            seen(360.0, &[("/api/v1/items", 300), ("/api/v2/items", 20)]),
        ),
        ("solo", seen(40.0, &[("/", 50)])),
    ];
    let j = run(&live, &new, &Overrides::default(), &obs);
    let r = route_refusal(&j);
    assert_eq!(
        (r.moved.was_route.as_str(), r.moved.route.as_str()),
        ("host * path /api", "host * path /")
    );
    assert_eq!(r.backend, "s1");
    assert!(
        j.reasons()[0].starts_with("requests route host * path /api sends to pool wide (84% of all requests) would take route host * path / to pool solo: s1 (pool solo) would take 94% of all requests instead of 10%"),
        "{:?}",
        j.reasons()
    );
}

#[test]
fn a_route_change_with_no_live_sample_is_said_to_be_unpredicted_not_guessed() {
    let (live, new, _) = busy_api("solo");
    let j = run(
        &live,
        &new,
        &Overrides::default(),
        &[("wide", seen(0.0, &[]))],
    );
    assert!(!j.refused(), "{:?}", j.reasons());
    assert_eq!(
        j.notes(),
        vec!["the routes change, and where they would send the traffic could not be predicted: no live traffic observed in the last 10 s".to_string()]
    );
    let j = run(
        &live,
        &new,
        &Overrides::default(),
        &[("wide", seen(300.0, &[]))],
    );
    assert!(
        j.notes()[0].ends_with("no live requests sampled yet"),
        "{:?}",
        j.notes()
    );
}

#[test]
fn unchanged_routes_are_not_predicted_and_a_route_no_live_request_takes_moves_nothing() {
    let (live, _, obs) = busy_api("solo");
    let j = run(&live, &live, &Overrides::default(), &obs);
    assert_eq!(j.routes, None);
    let new = file(
        &routes(&[
            ("/new", "solo"),
            ("/api", "wide"),
            ("/static", "wide"),
            ("", "solo"),
        ]),
        "",
    );
    let j = run(&live, &new, &Overrides::default(), &obs);
    let p = j.routes.as_ref().unwrap();
    assert_eq!(p.basis, RouteBasis::LiveSample { requests: 380 });
    assert!(p.moves.is_empty() && !p.over);
}

#[test]
fn a_host_route_reads_the_sampled_host_without_its_port() {
    let live = file(&routes(&[("/api", "wide"), ("", "solo")]), "");
    let host = "\n[[route]]\nhost = \"shop.example\"\npool = \"solo\"\n";
    let new = file(
        &format!("{host}{}", routes(&[("/api", "wide"), ("", "solo")])),
        "",
    );
    let obs = [
        ("wide", seen(360.0, &[("/api/items", 300)])),
        ("solo", seen(40.0, &[("/", 50)])),
    ];
    let r = route_refusal(&run(&live, &new, &Overrides::default(), &obs)).clone();
    assert_eq!(r.moved.route, "host shop.example path /");
    assert!((r.to_pct - 100.0).abs() < 0.01, "{r:?}");
}

#[test]
fn an_access_log_predicts_a_route_move_as_the_live_sample_does() {
    let (live, new, _) = busy_api("solo");
    let line = |n: usize, path: &str| {
        format!(
            "10.0.0.{} - - [10/Oct/2026:13:55:36 +0000] \"GET {path} HTTP/1.1\" 200 5\n",
            n % 200 + 1
        )
    };
    let text: String = (0..400)
        .map(|i| line(i, if i % 8 == 0 { "/" } else { "/api/items?x=1" }))
        .collect();
    let records = crate::simulate::parse_access_log(&text).unwrap();
    let observed = observed_from_log(&live.config, &records);
    assert_eq!(observed["wide"].rate_rps, 350.0);
    let p = predict_route_change(&live.config, &new.config, &observed, &live.config.guard).unwrap();
    assert!(p.over, "{p:?}");
    let w = p.worst().unwrap();
    assert_eq!(
        (w.backend.as_str(), w.from_pct.round(), w.to_pct.round()),
        ("s1", 13.0, 100.0)
    );
    assert_eq!(p.moves[0].route, "host * path /api");
}
