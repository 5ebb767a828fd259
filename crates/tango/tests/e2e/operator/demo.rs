//! `tango demo` on free ports (`--port-base 0`), its headed per-second rows, and the
//! summary split into before, during and after the incident.

/// One run of `tango demo --incident` on free ports, shared by the tests below (it takes
/// 16 s): its standard output.
fn incident_demo() -> &'static str {
    static OUT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
            .args([
                "demo",
                "--port-base",
                "0",
                "--rps",
                "200",
                "--duration",
                "16s",
            ])
            .args([
                "--incident",
                "--incident-after",
                "2s",
                "--incident-patience",
                "10s",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("tango demo runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    })
}

#[test]
fn the_demo_moves_its_ports_and_splits_its_summary_by_phase() {
    let text = incident_demo();
    let lines: Vec<&str> = text.lines().collect();
    // Free ports, not the defaults.
    let proxy = lines[1]
        .strip_prefix("  proxy    http://127.0.0.1:")
        .unwrap();
    assert_ne!(proxy, "28200/", "{text}");
    let header = lines
        .iter()
        .position(|l| l.trim_start().starts_with("time"))
        .unwrap_or_else(|| panic!("no header:\n{text}"));
    assert_eq!(
        lines[header..header + 2],
        [
            "  time  demo-1          demo-2          demo-3          demo-4           total",
            "   (s)  req/s   share   req/s   share   req/s   share   req/s   share    req/s",
        ],
        "{text}"
    );
    // Each second's row: the second, then requests and share per backend, then the total.
    let rows: Vec<Vec<&str>> = lines[header + 2..]
        .iter()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.trim_start().starts_with(">>") && !l.trim_start().starts_with("!!"))
        .filter(|l| !l.trim_start().starts_with("ok resolved"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.len() >= 4, "{text}");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 10, "{r:?}");
        assert_eq!(r[0], (i + 1).to_string());
        let counts: Vec<u64> = [1, 3, 5, 7]
            .iter()
            .map(|&c| r[c].parse().unwrap())
            .collect();
        assert_eq!(r[9].parse::<u64>().unwrap(), counts.iter().sum::<u64>());
        for c in [2, 4, 6, 8] {
            assert!(r[c].ends_with('%'), "{r:?}");
        }
    }
    let summary = lines
        .iter()
        .position(|l| *l == "pool demo: share of requests by phase")
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    let table: Vec<Vec<&str>> = lines[summary + 1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        table[0],
        ["phase", "seconds", "demo-1", "demo-2", "demo-3", "demo-4", "requests"]
    );
    assert_eq!(
        table[1],
        ["configured", "-", "12.5%", "12.5%", "25.0%", "50.0%", "-"]
    );
    let phases: Vec<&str> = table[2..].iter().map(|r| r[0]).collect();
    assert_eq!(phases, ["before", "during", "after", "whole"], "{text}");
    let share =
        |row: usize, col: usize| -> f64 { table[row][col].trim_end_matches('%').parse().unwrap() };
    // demo-2's share: its weight, 10 of 17 while the typo is live, 1 of 8 otherwise.
    assert!(share(2, 3) < 30.0, "before: {text}");
    assert!(share(3, 3) > 40.0, "during: {text}");
    assert!(share(4, 3) < 30.0, "after: {text}");
    let requests = |row: usize| -> u64 { table[row].last().unwrap().parse().unwrap() };
    assert_eq!(requests(2) + requests(3) + requests(4), requests(5));
}

/// `tango demo --incident` tells the guard's story in order: the typo refused, the same
/// reload forced past the guard, then rolled back by the canary on its own.
#[test]
fn the_incident_demo_shows_refuse_force_rollback_in_order() {
    let text = incident_demo();
    let steps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(">> ["))
        .filter_map(|l| l.split_once("] ").map(|(_, what)| what))
        .collect();
    let at = |prefix: &str| {
        steps
            .iter()
            .position(|s| s.starts_with(prefix))
            .unwrap_or_else(|| panic!("no step `{prefix}`:\n{text}"))
    };
    let refused = at("refused by the guard");
    let forced = at("reload --force");
    let rolled = at("rolled back by the canary");
    assert!(refused < forced && forced < rolled, "{text}");
    // The refusal names the finding and the predicted share.
    assert!(
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix(">>"))
            .any(|l| l
                .trim_start()
                .starts_with("demo-2 would take 59% of pool demo instead of 12%")),
        "{text}"
    );
}
