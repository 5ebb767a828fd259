//! What a file uses: its source read as tokens (comments, strings, characters and
//! numbers left out), each `use` tree expanded and each path in the code taken, and
//! every path resolved to a module path from the crate root. Paths outside the crate
//! (`std::..`, another crate's) are left out.

use super::{File, ModPath};
use std::collections::BTreeSet;

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
pub(super) fn uses(f: &File, files: &[File]) -> Vec<(ModPath, String)> {
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
