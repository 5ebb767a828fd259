//! The source tree's layout, checked: which folder may use which, and no import cycle
//! between files.
//!
//! `crates/tango/src` has three folders and a few files at its root:
//!
//! - `proxy/` (the data plane) never uses `control/` or `cli/`;
//! - `control/` (everything beside the request path) never uses `cli/`;
//! - the files at the root other than `main.rs` (`runtime.rs`, `upstream.rs`, ...) use
//!   none of the three.
//!
//! And in both crates no file reaches itself through the modules it uses. A use is any
//! path to another module of the crate: a `use` item (its tree expanded) or a path in the
//! code (`crate::x::f()`, `super::y::T`, `child::z`). A file declaring `mod child;` does
//! not use the child by that. Comments and string literals are left out, so a doc link
//! is not a use.
//!
//! A module's use of its own descendants is not an edge: a folder's parent file owns its
//! children (it declares them, re-exports their items, calls their private helpers), so
//! "no cycle" means that the modules of every folder, each taken with everything under
//! it, use each other without a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate: `["proxy", "service"]`.
type ModPath = Vec<String>;

/// One source file: where it is (for messages) and its module path.
struct File {
    name: String,
    module: ModPath,
    text: String,
}

/// Which file uses which, and by what paths (for the message when a check fails).
type Graph = BTreeMap<usize, BTreeMap<usize, BTreeSet<String>>>;

#[test]
fn tango_folders_keep_their_rule() {
    let files = read_crate(&crate_dir("tango"));
    let broken = folder_rule(&files);
    assert!(
        broken.is_empty(),
        "the folder rule is broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn tango_has_no_import_cycle() {
    let files = read_crate(&crate_dir("tango"));
    let cycles = cycles(&files);
    assert!(cycles.is_empty(), "import cycles in tango:\n{cycles}");
}

#[test]
fn tango_core_has_no_import_cycle() {
    let files = read_crate(&crate_dir("tango-core"));
    let cycles = cycles(&files);
    assert!(cycles.is_empty(), "import cycles in tango-core:\n{cycles}");
}

/// The checks themselves, on a made-up crate: they must see a cycle through a `use`
/// tree, `super::` and a child path, a folder rule broken in code, and leave a doc
/// comment, a string and `mod` declarations alone.
#[test]
fn the_checks_see_what_they_are_for() {
    let file = |name: &str, text: &str| File {
        name: name.to_string(),
        module: module_of(Path::new(name)),
        text: text.to_string(),
    };
    let files = vec![
        file("main.rs", "mod proxy; mod control; mod runtime;"),
        file(
            "runtime.rs",
            "/// [`X`]: crate::control::X\nfn f() { \"crate::cli\"; }",
        ),
        file("proxy/mod.rs", "pub(crate) mod a; mod b;"),
        file(
            "proxy/a.rs",
            "use super::{b::B, c};\nfn f() { crate::control::reload(); }",
        ),
        file("proxy/b.rs", "pub struct B; fn g() { super::a::f() }"),
        file(
            "control/mod.rs",
            "mod x;\npub use x::Helper;\npub struct Thing;\n#[cfg(test)]\nmod tests { use super::*; }",
        ),
        // A parent and its own child using each other is not a cycle.
        file("control/x.rs", "use crate::runtime::{self as rt};\nuse super::Thing;"),
    ];
    let broken = folder_rule(&files);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].contains("proxy/a.rs") && broken[0].contains("crate::control::reload"));
    let cycles = cycles(&files);
    assert!(
        cycles.contains("proxy/a.rs -> proxy/b.rs: super::b::B"),
        "{cycles}"
    );
    assert!(
        cycles.contains("proxy/b.rs -> proxy/a.rs: super::a::f"),
        "{cycles}"
    );
    assert!(!cycles.contains("control"), "{cycles}");
}

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

/// Every `.rs` file under `src`, with its module path.
fn read_crate(src: &Path) -> Vec<File> {
    let mut paths = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("the source tree reads") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src).expect("under src");
            File {
                name: rel.display().to_string(),
                module: module_of(rel),
                text: std::fs::read_to_string(&p).expect("a source file reads"),
            }
        })
        .collect()
}

/// `main.rs`/`lib.rs` are the crate, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`.
fn module_of(rel: &Path) -> ModPath {
    let mut parts: ModPath = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod")) {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "main" || parts[0] == "lib") {
        parts.clear();
    }
    parts
}

/// Each use that crosses a folder boundary it must not, as a line.
fn folder_rule(files: &[File]) -> Vec<String> {
    let mut broken = Vec::new();
    for f in files {
        let forbidden: &[&str] = match f.module.first().map(String::as_str) {
            Some("proxy") => &["control", "cli"],
            Some("control") => &["cli"],
            Some("cli") => &[],
            // The crate root (`main.rs`) ties everything together.
            None => &[],
            Some(_) => &["proxy", "control", "cli"],
        };
        for (target, path) in uses(f, files) {
            let top = target.first().map(String::as_str).unwrap_or("");
            if forbidden.contains(&top) {
                broken.push(format!("{} uses {path}", f.name));
            }
        }
    }
    broken
}

/// The file graph's cycles (strongly connected components of more than one file), each
/// with the uses that tie it; empty when there is none. A use of the file's own
/// descendant is left out (the parent owns its children).
fn cycles(files: &[File]) -> String {
    let mut graph: Graph = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        for (target, path) in uses(f, files) {
            let to = file_of(&target, files).filter(|&j| j != i);
            if let Some(j) = to.filter(|&j| !files[j].module.starts_with(&f.module)) {
                graph
                    .entry(i)
                    .or_default()
                    .entry(j)
                    .or_default()
                    .insert(path);
            }
        }
    }
    let mut out = String::new();
    for (n, scc) in components(files.len(), &graph).iter().enumerate() {
        out.push_str(&format!("cycle {}: {} files\n", n + 1, scc.len()));
        for &i in scc {
            for (j, paths) in graph.get(&i).into_iter().flatten() {
                if scc.contains(j) {
                    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                    let (a, b) = (&files[i].name, &files[*j].name);
                    out.push_str(&format!("  {a} -> {b}: {}\n", paths.join(", ")));
                }
            }
        }
    }
    out
}

/// The file a module path lands in: the longest prefix that is a file's module (an item
/// or an inline module lives in the file that holds it).
fn file_of(target: &[String], files: &[File]) -> Option<usize> {
    (0..=target.len())
        .rev()
        .find_map(|n| files.iter().position(|f| f.module == target[..n]))
}

/// Tarjan's strongly connected components with more than one node, each sorted.
fn components(n: usize, graph: &Graph) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in self.graph.get(&v).map(|m| m.keys()).into_iter().flatten() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort_unstable();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
}

/// A token of Rust source with comments, strings and characters left out.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Every module path `f` uses, resolved to a path from the crate root, with the path
/// as written (`crate::x::Y`, `super::z`, `child::f`).
fn uses(f: &File, files: &[File]) -> Vec<(ModPath, String)> {
    let toks = lex(&f.text);
    let children: BTreeSet<&str> = files
        .iter()
        .filter(|c| c.module.len() == f.module.len() + 1 && c.module.starts_with(&f.module))
        .map(|c| c.module[f.module.len()].as_str())
        .collect();
    let mut out = Vec::new();
    // Inline modules (`mod tests { .. }`) open at a brace depth; `super` inside one
    // is the file's own module.
    let (mut depth, mut inline): (usize, Vec<(String, usize)>) = (0, Vec::new());
    let none = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let here = || -> ModPath {
            let inner = inline.iter().map(|m| m.0.clone());
            f.module.iter().cloned().chain(inner).collect()
        };
        // A child's name starts a path only in the file's own module.
        let children = if inline.is_empty() { &children } else { &none };
        match &toks[i] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|m| m.1 > depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Tok::Ident(k) if k == "use" && !matches!(toks.get(i + 1), Some(Tok::Punct('<'))) => {
                let (paths, end) = use_tree(&toks, i + 1, Vec::new());
                for p in paths {
                    out.extend(resolve(&p, &here(), children));
                }
                i = end;
                continue;
            }
            Tok::Ident(_) if i == 0 || toks[i - 1] != Tok::Path => {
                let (p, end) = plain_path(&toks, i);
                if p.len() > 1 {
                    out.extend(resolve(&p, &here(), children));
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `a::b::c` from `toks[i]` on; returns the segments and where the path ended.
fn plain_path(toks: &[Tok], mut i: usize) -> (Vec<String>, usize) {
    let mut p = Vec::new();
    while let Some(Tok::Ident(s)) = toks.get(i) {
        p.push(s.clone());
        if toks.get(i + 1) != Some(&Tok::Path) {
            return (p, i + 1);
        }
        i += 2;
    }
    (p, i)
}

/// A `use` tree from `toks[i]` on, expanded to whole paths; returns them and the token
/// after the tree (after the `;` for a whole item).
fn use_tree(toks: &[Tok], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    let mut out = Vec::new();
    loop {
        match toks.get(i) {
            Some(Tok::Ident(s)) if s == "as" => i += 2,
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Path) => i += 1,
            Some(Tok::Punct('*')) => i += 1,
            Some(Tok::Punct('{')) => {
                i += 1;
                while !matches!(toks.get(i), Some(Tok::Punct('}')) | None) {
                    let (paths, end) = use_tree(toks, i, path.clone());
                    out.extend(paths);
                    i = end;
                    if toks.get(i) == Some(&Tok::Punct(',')) {
                        i += 1;
                    }
                }
                return (
                    out,
                    i + 1 + usize::from(toks.get(i + 1) == Some(&Tok::Punct(';'))),
                );
            }
            Some(Tok::Punct(',' | '}')) => return (vec![path], i),
            Some(Tok::Punct(';')) | None => return (vec![path], i + 1),
            Some(Tok::Punct(_)) => i += 1,
        }
    }
}

/// A path as written in module `here` (whose file has modules `children`), from the
/// crate root; `None` for a path outside the crate (`std::..`, `tango_core::..`).
fn resolve(p: &[String], here: &[String], children: &BTreeSet<&str>) -> Option<(ModPath, String)> {
    let written = p.join("::");
    let mut at: ModPath = match p.first()?.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => here.to_vec(),
        c if children.contains(c) => here.to_vec(),
        _ => return None,
    };
    let mut rest = if p[0] == "crate" || p[0] == "self" {
        &p[1..]
    } else {
        p
    };
    while rest.first().is_some_and(|s| s == "super") {
        at.pop();
        rest = &rest[1..];
    }
    at.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some((at, written))
}

/// Rust source as tokens, without comments, string, byte and character literals,
/// lifetimes and numbers.
fn lex(src: &str) -> Vec<Tok> {
    let s: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&s, i);
        } else if let Some(end) = skip_literal(&s, i) {
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(s[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '.') {
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            toks.push(Tok::Path);
            i += 2;
        } else {
            toks.push(Tok::Punct(c));
            i += 1;
        }
    }
    toks
}

/// The end of a (nested) block comment starting at `i`.
fn skip_block_comment(s: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < s.len() {
        if s[i] == '/' && s.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The end of a string (plain, byte, raw), character or byte literal or lifetime
/// starting at `i`; `None` when none starts there.
fn skip_literal(s: &[char], i: usize) -> Option<usize> {
    let prev_ident = i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
    let mut j = i;
    if !prev_ident
        && matches!(s.get(j), Some('b' | 'c'))
        && matches!(s.get(j + 1), Some('"' | '\'' | 'r'))
    {
        j += 1;
    }
    if !prev_ident && s.get(j) == Some(&'r') && matches!(s.get(j + 1), Some('"' | '#')) {
        let hashes = s[j + 1..].iter().take_while(|&&c| c == '#').count();
        if s.get(j + 1 + hashes) == Some(&'"') {
            let body = j + 2 + hashes;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let end = (body..s.len()).find(|&k| s[k..].starts_with(&close))?;
            return Some(end + close.len());
        }
        return None;
    }
    match s.get(j) {
        Some('"') => {
            let mut k = j + 1;
            while k < s.len() && s[k] != '"' {
                k += if s[k] == '\\' { 2 } else { 1 };
            }
            Some(k + 1)
        }
        // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a), which is
        // skipped too.
        Some('\'') => match (s.get(j + 1), s.get(j + 2)) {
            (Some('\\'), _) => (j + 2..s.len()).find(|&k| s[k] == '\'').map(|k| k + 1),
            (Some(_), Some('\'')) => Some(j + 3),
            _ => Some(j + 1),
        },
        _ => None,
    }
}
