use super::*;
use crate::lint::report::{self, exit_code, EXIT_CLEAN, EXIT_PROBLEMS};

fn sample() -> (Loaded, Lint) {
    lint_text(&pool(&format!(
        "{QUIET}[[pool.backend]]\naddress = \"10.0.0.1:80\"\nweight = 10\n[[pool.backend]]\naddress = \"10.0.0.2:80\"\n[[allow]]\nrule = \"TNG014\"\nreason = \"capped upstream\"\n"
    )))
}

#[test]
fn human_report_lists_findings_allowed_and_a_summary() {
    let (l, r) = sample();
    let out = report::human(&l.source, &r.problems, &r.allowed);
    assert!(
        out.contains("warning[TNG001]: 10.0.0.1:80 has weight 10"),
        "{out}"
    );
    assert!(out.contains(" --> t.toml:9:10"), "{out}");
    assert!(
        out.contains("= help: if this is a typo, set it near 1"),
        "{out}"
    );
    assert!(out.contains("allowed[TNG014]:"), "{out}");
    assert!(out.contains("= reason: capped upstream"), "{out}");
    assert!(
        out.ends_with("t.toml: 0 errors, 1 warning, 0 infos; 1 allowed\n"),
        "{out}"
    );
}

#[test]
fn json_report_has_codes_and_positions_for_lint_and_validation() {
    let (l, r) = sample();
    let v = report::json(&l.source, &r.problems, &r.allowed);
    assert_eq!(v["findings"][0]["code"], "TNG001");
    assert_eq!(v["findings"][0]["rule"], "weight-outlier");
    assert_eq!(v["findings"][0]["line"], 9);
    assert_eq!(v["findings"][0]["col"], 10);
    assert_eq!(v["findings"][0]["end_col"], 12);
    assert_eq!(v["allowed"][0]["reason"], "capped upstream");
    assert_eq!(v["summary"]["warnings"], 1);
    let e = parse(
        "t.toml",
        "[[listener]]\nlisten = \"nope\"\n",
        Path::new("."),
    )
    .unwrap_err();
    let v = report::json(e.source().unwrap(), e.diagnostics(), &[]);
    assert_eq!(v["findings"][0]["code"], "TNG000");
    assert_eq!(v["findings"][0]["line"], 2);
}

#[test]
fn sarif_report_has_rules_results_regions_and_suppressions() {
    let (l, r) = sample();
    let s: serde_json::Value =
        serde_json::from_str(&report::sarif(&l.source, &r.problems, &r.allowed)).unwrap();
    let run = &s["runs"][0];
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "tango");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), RULES.len() + 1);
    let res = &run["results"][0];
    assert_eq!(res["ruleId"], "TNG001");
    assert_eq!(
        rules[res["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "TNG001"
    );
    assert_eq!(res["level"], "warning");
    let region = &res["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(9), Some(10))
    );
    assert_eq!(
        res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "t.toml"
    );
    let allowed = &run["results"][1];
    assert_eq!(allowed["ruleId"], "TNG014");
    assert_eq!(allowed["level"], "note");
    assert_eq!(
        allowed["suppressions"][0]["justification"],
        "capped upstream"
    );
}

#[test]
fn exit_code_counts_errors_and_optionally_warnings() {
    let (_, r) = sample();
    assert_eq!(exit_code(&r.problems, false), EXIT_CLEAN);
    assert_eq!(exit_code(&r.problems, true), EXIT_PROBLEMS);
    let e = Diagnostic::error("k", None, "bad");
    assert_eq!(exit_code(&[e], false), EXIT_PROBLEMS);
    assert_eq!(exit_code(&[], true), EXIT_CLEAN);
}
