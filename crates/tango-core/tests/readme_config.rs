//! The configuration shown in README.md is valid and passes the checklist: the first
//! example a reader copies should not carry a hazard.

use std::path::Path;

#[test]
fn the_readme_configuration_is_clean() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let toml: String = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```toml block in README.md")
        .to_string();
    let loaded = match tango_core::config::parse("README.md", &toml, Path::new(".")) {
        Ok(l) => l,
        Err(e) => panic!("{}", e.render()),
    };
    let findings = tango_core::lint::check(&loaded);
    assert!(
        findings.is_empty(),
        "{}",
        tango_core::lint::report::human(&loaded.source, &findings, &[])
    );
}
