use super::*;

const SINGLE: &str = "[[pool.backend]]\naddress = \"10.0.0.1:80\"\nmax_in_flight = 1\n";

#[test]
fn an_allowed_finding_is_listed_with_its_reason_not_as_a_problem() {
    let text = pool(&format!(
        "{QUIET}{SINGLE}[[allow]]\nrule = \"TNG003\"\nreason = \"singleton by design\"\npool = \"web\"\n"
    ));
    let (_, l) = lint_text(&text);
    assert!(l.problems.is_empty(), "{:#?}", l.problems);
    assert_eq!(l.allowed.len(), 1);
    assert_eq!(l.allowed[0].diagnostic.code, Some("TNG003"));
    assert_eq!(l.allowed[0].reason, "singleton by design");
    assert!(check(&lint_text(&text).0).is_empty());
}

#[test]
fn a_pool_scoped_allow_covers_only_that_pool() {
    let text = format!(
        "[[listener]]\nlisten = \"127.0.0.1:8080\"\n[[route]]\nhost = \"a\"\npool = \"a\"\n[[route]]\npool = \"b\"\n[[pool]]\nname = \"a\"\n{QUIET}{SINGLE}[[pool]]\nname = \"b\"\n{QUIET}{SINGLE}[[allow]]\nrule = \"TNG003\"\nreason = \"r\"\npool = \"a\"\n"
    );
    let (_, l) = lint_text(&text);
    assert_eq!(l.allowed.len(), 1);
    assert_eq!(l.problems.len(), 1, "{:#?}", l.problems);
    assert_eq!(l.problems[0].key, "pool[b]");
}

#[test]
fn unknown_and_unused_allows_are_reported() {
    let text = pool(&format!(
        "{QUIET}{TWO}[[allow]]\nrule = \"TNG03\"\nreason = \"typo\"\n[[allow]]\nrule = \"TNG003\"\nreason = \"stale\"\n"
    ));
    assert_eq!(at(&text, "TNG021"), vec![(14, 8)]);
    assert_eq!(at(&text, "TNG022"), vec![(17, 8)]);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG022").is_empty());
}

#[test]
fn an_allow_naming_a_rule_by_name_or_in_lower_case_is_told_its_id() {
    let hint = |rule: &str| {
        let text = pool(&format!(
            "{QUIET}{TWO}[[allow]]\nrule = \"{rule}\"\nreason = \"r\"\n"
        ));
        let (_, l) = lint_text(&text);
        let d = l.problems.iter().find(|d| d.code == Some("TNG021"));
        d.and_then(|d| d.hint.clone()).unwrap_or_default()
    };
    for written in ["tng001", "weight-outlier", "weight-outlyer"] {
        assert!(
            hint(written).starts_with("did you mean `TNG001` (weight-outlier)?"),
            "{written}: {}",
            hint(written)
        );
    }
    // An ID a typo away is as near several rules: no guess.
    assert!(
        hint("TNG03").starts_with("Use a rule ID"),
        "{}",
        hint("TNG03")
    );
}
