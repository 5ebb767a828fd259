//! Golden outputs of the configuration checklist: every `tests/configs/NAME.toml` is
//! validated and linted as `tango check` does, and the human report must equal
//! `NAME.check.txt`. `UPDATE_GOLDEN=1 cargo test -p tango-core --test lint_golden`
//! rewrites the goldens after an intended change (review the diff).
//!
//! The file name prefix states intent, and is checked: `good-` configurations pass
//! `--deny-warnings`, `hazard-` ones fail it, `invalid-` ones fail validation. Every
//! configuration's SARIF output is validated against the SARIF 2.1.0 schema.

use std::path::{Path, PathBuf};
use tango_core::config;
use tango_core::lint::{self, report};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every configuration, as (name relative to the repo, text), in name order.
fn configs() -> Vec<(String, String)> {
    let dir = repo().join("tests/configs");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("tests/configs exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = format!("tests/configs/{}", p.file_name().unwrap().to_string_lossy());
            (name, std::fs::read_to_string(&p).expect("readable config"))
        })
        .collect();
    out.sort();
    out
}

struct Checked {
    human: String,
    sarif: String,
    /// `tango check --deny-warnings` exit code.
    exit_strict: i32,
    invalid: bool,
}

/// What `tango check` computes for one file.
fn check(name: &str, text: &str) -> Checked {
    let base = repo().join("tests/configs");
    match config::parse(name, text, &base) {
        Ok(loaded) => {
            let l = lint::lint(&loaded);
            Checked {
                human: report::human(&loaded.source, &l.problems, &l.allowed),
                sarif: report::sarif(&loaded.source, &l.problems, &l.allowed),
                exit_strict: report::exit_code(&l.problems, true),
                invalid: false,
            }
        }
        Err(e) => {
            let source = e.source().expect("text was given, so there is a source");
            Checked {
                human: report::human(source, e.diagnostics(), &[]),
                sarif: report::sarif(source, e.diagnostics(), &[]),
                exit_strict: report::load_exit_code(&e),
                invalid: true,
            }
        }
    }
}

#[test]
fn human_reports_match_the_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let all = configs();
    assert!(all.len() >= 20, "only {} configurations", all.len());
    let mut failures = Vec::new();
    for (name, text) in &all {
        let got = check(name, text).human;
        let golden = repo().join(name.replace(".toml", ".check.txt"));
        if update {
            std::fs::write(&golden, &got).expect("writable golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: output differs from its golden\n--- want\n{want}\n--- got\n{got}"
            )),
            Err(_) => failures.push(format!("{name}: no golden; run with UPDATE_GOLDEN=1")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn file_names_state_the_verdict() {
    for (name, text) in configs() {
        let c = check(&name, &text);
        let stem = name.trim_start_matches("tests/configs/");
        if stem.starts_with("good-") {
            assert_eq!(
                c.exit_strict, 0,
                "{name} should pass --deny-warnings:\n{}",
                c.human
            );
        } else if stem.starts_with("hazard-") {
            assert!(!c.invalid, "{name} should be valid:\n{}", c.human);
            assert_eq!(
                c.exit_strict, 1,
                "{name} should fail --deny-warnings:\n{}",
                c.human
            );
        } else if stem.starts_with("invalid-") {
            assert!(c.invalid, "{name} should fail validation:\n{}", c.human);
            assert_ne!(c.exit_strict, 0);
        } else {
            panic!("{name}: name it good-, hazard- or invalid-");
        }
    }
}

#[test]
fn the_postmortem_weight_typo_is_caught() {
    let (name, text) = configs()
        .into_iter()
        .find(|(n, _)| n.ends_with("hazard-weight-typo.toml"))
        .expect("the postmortem's configuration is among the cases");
    let c = check(&name, &text);
    assert_eq!(c.exit_strict, 1);
    assert!(
        c.human
            .contains("warning[TNG001]: web-2 has weight 10, 10x the median of its peers (1)"),
        "{}",
        c.human
    );
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/schemas/sarif-schema-2.1.0.json"))
            .expect("schema file"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles");
    let mut results = 0;
    for (name, text) in configs() {
        let sarif: serde_json::Value =
            serde_json::from_str(&check(&name, &text).sarif).expect("SARIF is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&sarif)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        results += sarif["runs"][0]["results"].as_array().map_or(0, Vec::len);
    }
    assert!(
        results > 20,
        "the cases should exercise many results, got {results}"
    );
    // The validator is not vacuous: a result without a message is rejected.
    let bad = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "tango"}},
        "results": [{"ruleId": "TNG001"}]}]});
    assert!(!validator.is_valid(&bad));
}
