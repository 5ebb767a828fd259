use super::*;
use std::time::Duration;

fn parse_ok(text: &str) -> Config {
    match parse("t.toml", text, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

fn parse_err(text: &str) -> LoadError {
    match parse("t.toml", text, Path::new(".")) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

const GOOD: &str = r#"
[admin]
listen = "127.0.0.1:9901"

[[listener]]
name = "web"
listen = "127.0.0.1:8080"
header_timeout = "5s"

[[route]]
host = "api.example.com"
pool = "api"

[[route]]
pool = "web"

[[pool]]
name = "web"
policy = "round_robin"
[[pool.backend]]
name = "w1"
address = "127.0.0.1:9001"
weight = 3
[[pool.backend]]
address = "app-2.internal:9002"

[[pool]]
name = "api"
policy = "ring_hash"
hash_key = { source = "header", name = "X-User" }
on_missing_key = "reject"
[pool.health]
path = "/healthz"
interval = "2s"
fall = 2
[[pool.backend]]
address = "127.0.0.1:9101"
"#;

#[test]
fn good_config_parses_with_defaults() {
    let c = parse_ok(GOOD);
    assert_eq!(c.listeners[0].header_timeout, Duration::from_secs(5));
    assert_eq!(c.listeners[0].idle_timeout, Duration::from_secs(60));
    assert_eq!(c.pools.len(), 2);
    assert_eq!(c.pools[0].backends[0].weight, 3);
    assert_eq!(c.pools[0].backends[1].weight, 1);
    assert_eq!(c.pools[0].backends[1].name, "app-2.internal:9002");
    assert_eq!(
        c.pools[1].hashing.as_ref().unwrap().key,
        HashKey::Header("x-user".into())
    );
    assert_eq!(c.pools[1].health.as_ref().unwrap().fall, 2);
    assert_eq!(c.routes[0].pool(), Some(1));
    assert!(c.routes[0].matches(Some("API.example.com"), "/x"));
    assert!(!c.routes[0].matches(Some("other"), "/x"));
    assert!(c.routes[1].matches(None, "/"));
}

#[test]
fn five_mistakes_are_all_reported_with_locations() {
    let text = r#"
[[listener]]
listen = "127.0.0.1:80800"
header_timeout = "5 parsecs"

[[route]]
pool = "nope"

[[pool]]
name = "web"
policy = "round_robbin"
[[pool.backend]]
address = "10.0.0.1"
[[pool.backend]]
address = "10.0.0.2:80"
weight = -1
"#;
    let e = parse_err(text);
    let d = e.diagnostics();
    let src = e.source().unwrap();
    let at: Vec<(String, usize, usize)> = d
        .iter()
        .map(|d| {
            let lc = src.line_col(d.span.unwrap().start);
            (d.key.clone(), lc.line, lc.col)
        })
        .collect();
    assert_eq!(d.len(), 6, "{}", e.render());
    for (key, line, col) in [
        ("listener[listener-0].listen", 3, 10),
        ("listener[listener-0].header_timeout", 4, 18),
        ("pool[web].policy", 11, 10),
        ("pool[web].backend[0].address", 13, 11),
        ("pool[web].backend[1].weight", 16, 10),
        ("route[0].pool", 7, 8),
    ] {
        assert!(
            at.contains(&(key.to_string(), line, col)),
            "missing {key} at {line}:{col} in {at:?}"
        );
    }
    let r = e.render();
    assert!(r.contains("use one of: round_robin"), "{r}");
    assert!(r.contains("6 problem(s) found"), "{r}");
}

#[test]
fn unknown_key_is_reported_with_location_and_did_you_mean() {
    let e = parse_err("[[listener]]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n");
    assert!(matches!(e, LoadError::Invalid { .. }));
    let d = &e.diagnostics()[0];
    assert_eq!(d.message, "unknown key `lisen` in [[listener]]");
    assert_eq!(d.hint.as_deref(), Some("did you mean `listen`?"));
    assert_eq!(e.source().unwrap().line_col(d.span.unwrap().start).line, 3);
}

#[test]
fn admin_off_loopback_needs_a_token() {
    let base = "[[listener]]\nlisten = \"127.0.0.1:1\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n";
    let e = parse_err(&format!("[admin]\nlisten = \"0.0.0.0:9901\"\n{base}"));
    assert!(e.render().contains("not on loopback and has no token"));
    parse_ok(&format!(
        "[admin]\nlisten = \"0.0.0.0:9901\"\ntoken = \"0123456789abcdef0\"\n{base}"
    ));
}

const ADMIN_BASE: &str = "[[listener]]\nlisten = \"127.0.0.1:1\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n";

fn admin_with(admin: &str, env: Option<&str>) -> Result<Loaded, LoadError> {
    let env = Env {
        admin_token: env.map(str::to_string),
    };
    parse_with(
        "t.toml",
        &format!("[admin]\n{admin}{ADMIN_BASE}"),
        Path::new("/etc/tango"),
        &env,
    )
}

#[test]
fn admin_token_and_token_file_together_are_refused_at_the_second() {
    let e = admin_with(
        "token = \"0123456789abcdef0\"\ntoken_file = \"token.txt\"\n",
        None,
    )
    .expect_err("both");
    let d = &e.diagnostics()[0];
    assert_eq!(d.key, "admin.token_file");
    assert_eq!(d.message, "admin.token and admin.token_file are both set");
    let lc = e.source().unwrap().line_col(d.span.unwrap().start);
    assert_eq!((lc.line, lc.col), (3, 14));
    assert!(e.render().contains("t.toml:3:14"), "{}", e.render());
}

#[test]
fn admin_token_sources_and_their_precedence() {
    let inline = "0123456789abcdef0";
    let c = admin_with(&format!("token = \"{inline}\"\n"), None)
        .unwrap()
        .config;
    assert_eq!(c.admin.token, Some(TokenSource::Inline(inline.into())));
    // A relative token_file is relative to the configuration file.
    let c = admin_with("token_file = \"secrets/admin\"\n", None)
        .unwrap()
        .config;
    assert_eq!(
        c.admin.token,
        Some(TokenSource::File("/etc/tango/secrets/admin".into()))
    );
    // The environment wins over either.
    let env = "fedcba9876543210fedc";
    for admin in [
        "token = \"0123456789abcdef0\"\n",
        "token_file = \"t\"\n",
        "",
    ] {
        let c = admin_with(admin, Some(env)).unwrap().config;
        assert_eq!(c.admin.token, Some(TokenSource::Env(env.into())), "{admin}");
    }
    // Off loopback, a token from the environment or a file is enough.
    admin_with("listen = \"0.0.0.0:9901\"\n", Some(env)).unwrap();
    admin_with("listen = \"0.0.0.0:9901\"\ntoken_file = \"t\"\n", None).unwrap();
    // The secret never shows in Debug output.
    let c = admin_with(&format!("token = \"{inline}\"\n"), Some(env))
        .unwrap()
        .config;
    let debug = format!("{c:?}");
    assert!(!debug.contains(inline) && !debug.contains(env), "{debug}");
}

#[test]
fn admin_tokens_must_be_long_visible_ascii() {
    let e = admin_with("token = \"short\"\n", None).expect_err("short");
    assert_eq!(
        e.diagnostics()[0].message,
        "the admin token is shorter than 16 characters"
    );
    let e = admin_with("token = \"0123456789 abcdef\"\n", None).expect_err("space");
    assert_eq!(e.diagnostics()[0].key, "admin.token");
    let e = admin_with("", Some("too-short")).expect_err("short env");
    assert_eq!(e.diagnostics()[0].key, "TANGO_ADMIN_TOKEN");
    assert_eq!(
        e.diagnostics()[0].message,
        "TANGO_ADMIN_TOKEN: the admin token is shorter than 16 characters"
    );
    let e = admin_with("token_file = \"\"\n", None).expect_err("empty path");
    assert_eq!(e.diagnostics()[0].message, "admin.token_file is empty");
    // The redaction placeholder is itself a valid token: redacted text still validates.
    assert_eq!(token_problem(REDACTED), None);
}

#[test]
fn an_empty_state_dir_is_refused_at_its_line() {
    for empty in ["\"\"", "\"  \""] {
        let e = admin_with(&format!("state_dir = {empty}\n"), None).expect_err(empty);
        let d = &e.diagnostics()[0];
        assert_eq!(d.key, "admin.state_dir");
        assert_eq!(d.message, "admin.state_dir is empty");
        let r = e.render();
        assert!(
            r.contains("t.toml:2:13") && r.contains("remove the key"),
            "{r}"
        );
    }
    // A relative one is relative to the file, as every path is.
    let c = admin_with("state_dir = \"state\"\n", None).unwrap().config;
    assert_eq!(c.admin.state_dir, Some("/etc/tango/state".into()));
}

/// A journal smaller than a few events was silently raised to 4096 bytes: it is told.
#[test]
fn a_journal_too_small_to_keep_history_is_refused_at_its_line() {
    let e = admin_with("journal_max_bytes = 1000\n", None).expect_err("too small");
    let d = &e.diagnostics()[0];
    assert_eq!(d.key, "admin.journal_max_bytes");
    assert_eq!(d.message, "1000 bytes is too small for the journal file");
    let r = e.render();
    assert!(
        r.contains("t.toml:2:21") && r.contains("use at least 4096"),
        "{r}"
    );
    let c = admin_with("journal_max_bytes = 4096\n", None)
        .unwrap()
        .config;
    assert_eq!(c.admin.journal_max_bytes, 4096);
}

#[test]
fn hash_policy_needs_key_and_allow_needs_reason() {
    let text = r#"
[[listener]]
listen = "127.0.0.1:1"
[[pool]]
name = "p"
policy = "maglev"
[[pool.backend]]
address = "127.0.0.1:2"
[[allow]]
rule = "TNG001"
"#;
    let r = parse_err(text).render();
    assert!(r.contains("needs a hash_key"), "{r}");
    assert!(r.contains("needs a stated reason"), "{r}");
}

#[test]
fn cidr_contains() {
    let c = validate::parse_cidr("10.0.0.0/8").unwrap();
    assert!(c.contains("10.1.2.3".parse().unwrap()));
    assert!(!c.contains("11.1.2.3".parse().unwrap()));
    assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
    let all = validate::parse_cidr("0.0.0.0/0").unwrap();
    assert!(all.contains("1.2.3.4".parse().unwrap()));
    assert!(validate::parse_cidr("10.0.0.0/33").is_none());
}

#[test]
fn absurd_durations_are_refused() {
    let e = parse_err(
        "[[listener]]\nlisten = \"127.0.0.1:1\"\nrequest_timeout = \"100000000years\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n",
    );
    assert!(e.render().contains("longer than a week"), "{}", e.render());
}

#[test]
fn connection_timeouts_default_and_parse() {
    let c = parse_ok(GOOD);
    // first_byte_timeout follows header_timeout unless set.
    assert_eq!(c.listeners[0].first_byte_timeout, Duration::from_secs(5));
    assert_eq!(c.listeners[0].send_timeout, Duration::from_secs(60));
    let set = GOOD.replace(
        "header_timeout = \"5s\"",
        "header_timeout = \"5s\"\nfirst_byte_timeout = \"2s\"\nsend_timeout = \"15s\"",
    );
    let c = parse_ok(&set);
    assert_eq!(c.listeners[0].first_byte_timeout, Duration::from_secs(2));
    assert_eq!(c.listeners[0].send_timeout, Duration::from_secs(15));
    let plain = parse_ok("[[listener]]\nlisten = \"127.0.0.1:1\"\n[[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"127.0.0.1:2\"\n");
    assert_eq!(plain.listeners[0].header_timeout, Duration::from_secs(10));
    assert_eq!(
        plain.listeners[0].first_byte_timeout,
        Duration::from_secs(10)
    );
}

#[test]
fn connection_timeouts_must_be_positive() {
    let bad = GOOD.replace(
        "header_timeout = \"5s\"",
        "first_byte_timeout = \"0s\"\nsend_timeout = \"soon\"",
    );
    let e = parse_err(&bad);
    let keys: Vec<&str> = e.diagnostics().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "listener[web].first_byte_timeout",
            "listener[web].send_timeout"
        ],
        "{}",
        e.render()
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever a file holds, loading it reports problems; it never panics.
        #[test]
        fn on_any_text(text in "\\PC{0,400}") {
            let _ = parse("t.toml", &text, Path::new("."));
        }

        /// Nor on a valid file with a byte range replaced by anything.
        #[test]
        fn on_a_mangled_valid_file(at in 0usize..GOOD.len(), len in 0usize..40, junk in "\\PC{0,20}") {
            let mut s = GOOD.to_string();
            let at = (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + len).min(s.len());
            let end = (end..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
            s.replace_range(at..end, &junk);
            if let Ok(loaded) = parse("t.toml", &s, Path::new(".")) {
                let _ = crate::lint::check(&loaded);
            }
        }
    }
}

#[test]
fn the_guard_is_on_by_default_and_its_settings_are_checked() {
    let c = parse_ok(GOOD);
    assert_eq!(c.guard, Guard::default());
    assert!(c.guard.enabled && c.guard.rollback);
    assert_eq!(c.guard.max_shift_points, 10.0);
    assert_eq!(c.guard.canary, Duration::from_secs(30));
    let c = parse_ok(&format!(
        "{GOOD}\n[guard]\nmax_shift = 25\ncanary = \"10s\"\nrollback = false\nallow_shift = [\"web\"]\n"
    ));
    assert_eq!(c.guard.max_shift_points, 25.0);
    assert_eq!(c.guard.canary, Duration::from_secs(10));
    assert!(!c.guard.rollback);
    assert_eq!(c.guard.allow_shift, vec!["web".to_string()]);
    let e = parse_err(&format!(
        "{GOOD}\n[guard]\nmax_shift = 120.0\ncanary = \"0s\"\nallow_shift = [\"nope\"]\n"
    ));
    let keys: Vec<&str> = e.diagnostics().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["guard.allow_shift[0]", "guard.max_shift", "guard.canary"]
    );
}

#[test]
fn the_guard_noise_settings_default_to_the_old_constants_and_are_checked() {
    let c = parse_ok(GOOD);
    assert_eq!((c.guard.noise_sigmas, c.guard.min_sample), (2.0, 400));
    let c = parse_ok(&format!(
        "{GOOD}\n[guard]\nnoise_sigmas = 0.0\nmin_sample = 12\n"
    ));
    assert_eq!((c.guard.noise_sigmas, c.guard.min_sample), (0.0, 12));
    let text = format!("{GOOD}\n[guard]\nnoise_sigmas = -1.0\nmin_sample = 20000\n");
    let e = parse_err(&text);
    let lines = text.lines().count();
    let found: Vec<(String, usize, String, String)> = e
        .diagnostics()
        .iter()
        .map(|d| {
            let at = d.span.expect("a location").start;
            let line = text[..at].lines().count();
            (
                d.key.clone(),
                line,
                d.message.clone(),
                d.hint.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "guard.noise_sigmas".into(),
                lines - 1,
                "-1 is out of range".into(),
                "use a number from 0 to 10".into()
            ),
            (
                "guard.min_sample".into(),
                lines,
                "20000 is out of range".into(),
                "use a whole number from 0 to 10000".into()
            ),
        ]
    );
    assert!(e.render().contains("t.toml:"), "{}", e.render());
    // A key misspelt is named, as for any table.
    let e = parse_err(&format!("{GOOD}\n[guard]\nnoise_sigma = 1.0\n"));
    assert!(e.render().contains("noise_sigma"), "{}", e.render());
}

#[test]
fn a_redirect_never_takes_a_request_it_would_send_back_where_it_is() {
    let c = parse_ok(
        r#"
[[listener]]
listen = "127.0.0.1:8080"

[[route]]
redirect = { scheme = "https" }

[[route]]
host = "old.example"
redirect = { host = "OLD.example", port = 8443 }

[[route]]
host = "same.example"
redirect = { host = "SAME.example" }

[[route]]
pool = "web"

[[pool]]
name = "web"
[[pool.backend]]
address = "127.0.0.1:9001"
"#,
    );
    // Plain requests go to https; those already on it go on to the next routes.
    assert_eq!(c.route_index(Some("a.example"), "/", false), Some(0));
    assert_eq!(c.route_index(Some("a.example"), "/", true), Some(3));
    // A port counts as a change (the request's own port is not known).
    assert_eq!(c.route_index(Some("old.example"), "/", true), Some(1));
    // The same host (in any case), scheme and path: served, not redirected.
    assert_eq!(c.route_index(Some("same.example"), "/x", true), Some(3));
    assert!(c.routes[2].matches(Some("same.example"), "/x"));
    assert!(!c.routes[2].takes(Some("same.example"), "/x", true));
}

/// Addresses that cannot both be bound are refused by validation, as binding would
/// refuse them at startup: a wildcard takes every address of its port (`[::]` the IPv4
/// ones too), and the admin API's clash names the admin API.
#[test]
fn listener_addresses_that_overlap_a_wildcard_or_the_admin_api_are_refused() {
    let pool = "[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"127.0.0.1:9001\"\n";
    let file = |admin: &str, a: &str, b: &str| {
        let b = if b.is_empty() {
            String::new()
        } else {
            format!("[[listener]]\nlisten = \"{b}\"\n")
        };
        format!("[admin]\nlisten = \"{admin}\"\n[[listener]]\nlisten = \"{a}\"\n{b}{pool}")
    };
    let admin = "127.0.0.1:9901";
    for (a, b) in [
        ("0.0.0.0:8080", "127.0.0.1:8080"),
        ("127.0.0.1:8080", "0.0.0.0:8080"),
        ("[::]:8080", "127.0.0.1:8080"),
        ("[::1]:8080", "[::]:8080"),
    ] {
        let e = parse_err(&file(admin, a, b));
        let r = e.render();
        assert!(
            r.contains("is already taken by another listener"),
            "{a} {b}: {r}"
        );
        assert_eq!(e.diagnostics()[0].key, "listener[listener-1].listen", "{r}");
    }
    for (a, b) in [
        ("127.0.0.1:8080", "[::1]:8080"),
        ("0.0.0.0:8080", "[::1]:8080"),
        ("0.0.0.0:8080", "0.0.0.0:8081"),
        ("0.0.0.0:0", "127.0.0.1:0"),
    ] {
        parse_ok(&file(admin, a, b));
    }
    for listen in ["127.0.0.1:9901", "0.0.0.0:9901"] {
        let e = parse_err(&file(admin, listen, ""));
        let r = e.render();
        assert!(
            r.contains("already taken by the admin API (127.0.0.1:9901)"),
            "{r}"
        );
        assert!(r.contains("move [admin] listen"), "{r}");
    }
}

/// A name is what logs, metrics, alerts and `tango simulate --down` know a backend or a
/// listener by: an empty one is refused (left out, a default is used).
#[test]
fn empty_backend_and_listener_names_are_refused() {
    let text = "[[listener]]\nname = \" \"\nlisten = \"127.0.0.1:8080\"\n[[pool]]\nname = \"web\"\n[[pool.backend]]\nname = \"\"\naddress = \"127.0.0.1:9001\"\n";
    let e = parse_err(text);
    let keys: Vec<&str> = e.diagnostics().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        ["listener[ ].name", "pool[web].backend[0].name"],
        "{}",
        e.render()
    );
    let r = e.render();
    assert!(r.contains("listener name is empty"), "{r}");
    assert!(
        r.contains("leave `name` out to name the backend by its address"),
        "{r}"
    );
}

/// Listeners are known by name (a reload keeps or stops them by it), so no two may
/// share one, whether written or the default `listener-N`.
#[test]
fn two_listeners_never_share_a_name_even_a_default_one() {
    let pool = "[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"127.0.0.1:9001\"\n";
    let two = |a: &str, b: &str| {
        format!("[[listener]]\n{a}listen = \"127.0.0.1:0\"\n[[listener]]\n{b}listen = \"127.0.0.1:0\"\n{pool}")
    };
    let e = parse_err(&two("name = \"x\"\n", "name = \"x\"\n"));
    assert!(
        e.render().contains("listener name `x` is used twice"),
        "{}",
        e.render()
    );
    // The second's default name is `listener-1`.
    let e = parse_err(&two("name = \"listener-1\"\n", ""));
    let r = e.render();
    assert!(
        r.contains("this listener's default name, `listener-1`, is another listener's name"),
        "{r}"
    );
    assert_eq!(e.diagnostics()[0].key, "listener[listener-1]", "{r}");
    let e = parse_err(&two("", "name = \"listener-0\"\n"));
    assert!(
        e.render()
            .contains("listener name `listener-0` is used twice"),
        "{}",
        e.render()
    );
    parse_ok(&two("", ""));
    parse_ok(&two("name = \"a\"\n", ""));
}

/// A whole number past 64 bits is not TOML; the message says so in TOML's terms (serde
/// spoke of an i128 and suggested quoting).
#[test]
fn a_number_past_64_bits_is_explained() {
    let text = "[[listener]]\nlisten = \"127.0.0.1:8080\"\n[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"127.0.0.1:9001\"\nweight = -99999999999999999999\n";
    let e = parse_err(text);
    let d = &e.diagnostics()[0];
    assert_eq!(
        d.message,
        "-99999999999999999999 does not fit in 64 bits, the size of TOML's whole numbers"
    );
    assert!(d.hint.as_deref().unwrap().contains("key's range"), "{d:?}");
    let lc = e.source().unwrap().line_col(d.span.unwrap().start);
    assert_eq!((lc.line, lc.col), (7, 10));
}
