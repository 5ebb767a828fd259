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
//!
//! Here: the tests, the two rules and the file graph they judge; what each file uses is
//! read from its source in `uses`.

mod uses;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use uses::uses;

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
