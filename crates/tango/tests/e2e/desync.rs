//! The public HTTP desync corpus (the request cases of the `http_desync_guardian`
//! crate, in `tests/desync/`) through the real tango binary, to a backend that records
//! every byte it is sent: each case the corpus calls Severe is refused before a single
//! byte of it reaches the backend, and exactly the Compliant cases that
//! docs/ARCHITECTURE.md lists (with the reason each refusal is needed) are refused.

use crate::framing::{Raw, Recorder};
use crate::support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

struct Case {
    file: String,
    name: String,
    tier: String,
    request: Vec<u8>,
}

/// A corpus string as bytes. YAML has already turned `"\x01"` into U+0001; a
/// backslash escape left in a plain or single-quoted scalar is undone as the corpus's
/// own loader does. Characters up to U+00FF stand for the byte of that value (the
/// corpus means `\xa0` as one obs-text byte).
fn bytes_of(v: &Yaml) -> Vec<u8> {
    let s = match v {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(n) => n.to_string(),
        Yaml::Null => String::new(),
        other => panic!("unexpected value in the corpus: {other:?}"),
    };
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some() {
            let e = chars.next().unwrap_or('\\');
            match e {
                'x' => {
                    let hex: String = chars.by_ref().take(2).collect();
                    out.push(u8::from_str_radix(&hex, 16).expect("\\x escape in the corpus"));
                }
                'r' => out.push(b'\r'),
                'n' => out.push(b'\n'),
                't' => out.push(b'\t'),
                'b' => out.push(0x08),
                'f' => out.push(0x0c),
                other => push_char(&mut out, other),
            }
        } else {
            push_char(&mut out, c);
        }
    }
    out
}

fn push_char(out: &mut Vec<u8>, c: char) {
    match u8::try_from(u32::from(c)) {
        Ok(b) => out.push(b),
        Err(_) => out.extend_from_slice(c.to_string().as_bytes()),
    }
}

/// The raw request the way the corpus builds it (`METHOD URI VERSION`, then each
/// `name: value`), with `Host: x` first when the case has no Host of its own: the
/// corpus predates RFC 9112's rule that tango now enforces, and it is about framing.
/// A body follows as the headers frame it for hyper (chunked wins, else a valid
/// Content-Length), so well-framed cases complete.
fn build(case: &Yaml) -> Vec<u8> {
    let headers: Vec<(Vec<u8>, Vec<u8>)> = case["headers"]
        .as_vec()
        .map(|hs| {
            hs.iter()
                .map(|h| (bytes_of(&h["name"]), bytes_of(&h["value"])))
                .collect()
        })
        .unwrap_or_default();
    let mut r = [
        bytes_of(&case["method"]),
        b" ".to_vec(),
        bytes_of(&case["uri"]),
        b" ".to_vec(),
        bytes_of(&case["version"]),
        b"\r\n".to_vec(),
    ]
    .concat();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"host")) {
        r.extend_from_slice(b"Host: x\r\n");
    }
    let (mut chunked, mut length) = (None, None);
    for (name, value) in &headers {
        r.extend_from_slice(&[&name[..], b": ", value, b"\r\n"].concat());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let v = std::str::from_utf8(value.trim_ascii()).ok();
            length = v.and_then(|v| v.parse::<usize>().ok());
        }
    }
    r.extend_from_slice(b"\r\n");
    match (chunked, length) {
        (Some(true), _) => r.extend_from_slice(b"0\r\n\r\n"),
        (None, Some(n)) if n <= 16 << 20 => r.extend(std::iter::repeat_n(b'a', n)),
        _ => {}
    }
    r
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/desync")
}

fn load() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/desync")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("corpus file");
        let docs = YamlLoader::load_from_str(&text).expect("corpus YAML");
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for case in docs[0].as_vec().expect("a list of cases") {
            cases.push(Case {
                file: file.clone(),
                name: case["name"].as_str().expect("name").to_string(),
                tier: case["expected"]["tier"].as_str().expect("tier").to_string(),
                request: build(case),
            });
        }
    }
    cases
}

/// The Compliant cases docs/ARCHITECTURE.md says tango refuses: the first column of
/// the table headed "Compliant case refused", names in backticks.
fn documented_refusals() -> BTreeSet<String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ARCHITECTURE.md");
    let text = std::fs::read_to_string(doc).expect("docs/ARCHITECTURE.md");
    text.lines()
        .skip_while(|l| !l.starts_with("| Compliant case refused"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l.split('|').nth(1).unwrap_or_default().trim();
            cell.trim_matches('`').to_string()
        })
        .collect()
}

/// How long one case may take, connection to the status line of the answer.
const CASE_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_desync_corpus_severe_cases_never_reach_a_backend() {
    let cases = load();
    let count = |tier: &str| cases.iter().filter(|c| c.tier == tier).count();
    // The corpus as copied: a changed or truncated file would show here.
    assert_eq!(cases.len(), 159);
    assert_eq!((count("Severe"), count("Compliant")), (58, 28));

    let rec = Recorder::start().await;
    let t = Tango::start(&config("", &[("a", rec.addr, 1)]));
    let mut refused_compliant = BTreeSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        let before = rec.bytes_received();
        let exchange = async {
            let mut c = Raw::connect(t.addr()).await;
            c.send(&case.request).await;
            c.status().await
        };
        // Each case is bounded: no answer within the limit counts as none.
        let status = tokio::time::timeout(CASE_LIMIT, exchange)
            .await
            .ok()
            .flatten();
        let forwarded = rec.bytes_received() - before;
        let refused = status.is_some_and(|s| (400..500).contains(&s));
        let what = format!("{} / {}", case.file, case.name);
        match (case.tier.as_str(), status) {
            // A 200 comes from the backend, which must then have recorded the request
            // (this keeps the recorder honest for the zero-byte checks).
            (_, Some(200)) if case.tier != "Severe" && forwarded > 0 => {}
            (_, _) if refused && forwarded > 0 => failures.push(format!(
                "{what}: refused ({status:?}) after {forwarded} bytes reached the backend"
            )),
            ("Severe", _) if refused => {}
            ("Compliant", _) if refused => {
                refused_compliant.insert(case.name.clone());
            }
            // The other tiers may go either way, but always with an answer.
            ("Acceptable" | "Ambiguous", _) if refused => {}
            (tier, _) => failures.push(format!(
                "{what}: {tier}, answered {status:?}, {forwarded} bytes reached the backend"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let documented = documented_refusals();
    assert_eq!(
        refused_compliant, documented,
        "Compliant cases refused, against docs/ARCHITECTURE.md"
    );
    assert_eq!(refused_compliant.len(), 8);
}
