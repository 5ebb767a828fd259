//! The shape of a configuration file, checked before serde sees it: every unknown key and
//! every value of the wrong type, each with its place and, where a known key is close, a
//! did-you-mean.
//!
//! serde stops at its first error, so `tango check` would otherwise report one mistake
//! per run. Here the document is walked against the key lists of `keys.rs` (which mirror
//! `file.rs`; a test keeps them in step), and every offending key-value is blanked out of
//! a copy of the text (byte for byte, so spans stay valid). That copy then deserialises,
//! and validation reports the remaining problems in the same run.

use crate::diag::{did_you_mean, Diagnostic, Span};
use std::ops::Range;
use toml_edit::{Item, TableLike, Value};

mod keys;

use keys::Ty::{self, *};
use keys::{F, ROOT, TABLES};

/// What the shape check found, and the text with every offending key-value blanked.
pub(crate) struct Shape {
    pub diagnostics: Vec<Diagnostic>,
    pub sanitised: String,
}

/// Check `text`'s shape. `None` when it is not TOML at all (the caller reports that).
pub(crate) fn check(text: &str) -> Option<Shape> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut w = Walk {
        text,
        diags: Vec::new(),
        blank: Vec::new(),
    };
    w.table(doc.as_table(), ROOT, "", "the top level");
    let mut bytes = text.as_bytes().to_vec();
    for r in &w.blank {
        for b in &mut bytes[r.clone()] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    // Only whole UTF-8 sequences inside key-value ranges were replaced, by ASCII spaces.
    let sanitised = String::from_utf8(bytes).unwrap_or_else(|_| text.to_string());
    Some(Shape {
        diagnostics: w.diags,
        sanitised,
    })
}

struct Walk<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
    blank: Vec<Range<usize>>,
}

impl Walk<'_> {
    fn table(&mut self, t: &dyn TableLike, fields: &[F], path: &str, label: &str) {
        for (name, item) in t.iter() {
            let key_span = key_span(t, name);
            let key = join(path, name);
            match fields.iter().find(|f| f.0 == name) {
                None => {
                    let hint = unknown_hint(name, fields, label);
                    let d = Diagnostic::error(
                        &key,
                        key_span.clone().map(Span::from),
                        format!("unknown key `{name}` in {label}"),
                    )
                    .with_hint(hint);
                    self.diags.push(d);
                    self.blank_kv(key_span, item);
                }
                Some(f) => self.value(&key, key_span, item, f),
            }
        }
    }

    fn value(&mut self, key: &str, key_span: Option<Range<usize>>, item: &Item, f: &F) {
        let ok = match (f.1, item) {
            (Str, Item::Value(Value::String(_))) => true,
            (Int, Item::Value(Value::Integer(_))) => true,
            (UInt, Item::Value(Value::Integer(i))) => *i.value() >= 0,
            (Float, Item::Value(Value::Integer(_) | Value::Float(_))) => true,
            (Bool, Item::Value(Value::Boolean(_))) => true,
            (Strs, Item::Value(Value::Array(a))) => a.iter().all(|v| v.is_str()),
            (StrMap, _) if item.is_table_like() => {
                if let Some(t) = item.as_table_like() {
                    self.str_map(t, key);
                }
                true
            }
            (Table(fs), _) if item.is_table_like() => {
                if let Some(t) = item.as_table_like() {
                    self.table(t, fs, key, &format!("[{}]", strip(key)));
                }
                true
            }
            (Tables(fs), Item::ArrayOfTables(a)) => {
                self.tables(a.iter().map(|t| t as &dyn TableLike), fs, key);
                true
            }
            (Tables(fs), Item::Value(Value::Array(a))) if a.iter().all(|v| v.is_inline_table()) => {
                let inline = a.iter().filter_map(Value::as_inline_table);
                self.tables(inline.map(|t| t as &dyn TableLike), fs, key);
                true
            }
            _ => false,
        };
        if ok {
            return;
        }
        let span = item.span().or_else(|| key_span.clone()).map(Span::from);
        let d = Diagnostic::error(
            key,
            span,
            format!(
                "`{}` must be {}, not {}",
                f.0,
                expected(f.1),
                found_in(f.1, item)
            ),
        )
        .with_hint(type_hint(f.1, item));
        self.diags.push(d);
        if !f.2 {
            self.blank_kv(key_span, item);
        }
    }

    /// An array of tables (`[[key]]` or inline), each walked as the table it is.
    fn tables<'a>(&mut self, ts: impl Iterator<Item = &'a dyn TableLike>, fs: &[F], key: &str) {
        let label = format!("[[{}]]", strip(key));
        for (i, t) in ts.enumerate() {
            self.table(t, fs, &element(key, i, t), &label);
        }
    }

    /// A table of strings under any keys: each value that is not a string is reported
    /// and blanked.
    fn str_map(&mut self, t: &dyn TableLike, path: &str) {
        for (name, item) in t.iter() {
            if item.as_str().is_some() {
                continue;
            }
            let key_span = key_span(t, name);
            let span = item.span().or_else(|| key_span.clone()).map(Span::from);
            let d = Diagnostic::error(
                join(path, name),
                span,
                format!(
                    "the value of `{name}` must be a string, not {}",
                    found(item)
                ),
            )
            .with_hint(type_hint(Str, item));
            self.diags.push(d);
            self.blank_kv(key_span, item);
        }
    }

    /// Blank a key-value (or a whole table) out of the copy that serde will read.
    fn blank_kv(&mut self, key_span: Option<Range<usize>>, item: &Item) {
        match item {
            Item::Value(v) => {
                if let (Some(k), Some(v)) = (key_span, v.span()) {
                    let start = self.key_start(k.start);
                    let end = self.past_comma(v.end);
                    self.blank.push(start..end);
                }
            }
            Item::Table(t) => self.blank_table(t),
            Item::ArrayOfTables(a) => a.iter().for_each(|t| self.blank_table(t)),
            Item::None => {}
        }
    }

    fn blank_table(&mut self, t: &toml_edit::Table) {
        if let Some(s) = t.span() {
            self.blank.push(s);
        }
        for (name, item) in t.iter() {
            let key_span = key_span(t, name);
            self.blank_kv(key_span, item);
        }
    }

    /// The start of a dotted key (`health.pth = 1` is blanked whole, not from `pth`).
    fn key_start(&self, start: usize) -> usize {
        let before = &self.text[..start];
        let keyish = |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ' | '\t')
        };
        let from = before.trim_end_matches(keyish).len();
        // Only step back over a dotted prefix, never over whitespace alone.
        if before[from..].trim().ends_with('.') {
            from + (before[from..].len() - before[from..].trim_start().len())
        } else {
            start
        }
    }

    /// The end of a value in an inline table or array, with the comma after it.
    fn past_comma(&self, end: usize) -> usize {
        let rest = &self.text[end..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.starts_with(',') {
            end + (rest.len() - trimmed.len()) + 1
        } else {
            end
        }
    }
}

/// Where `name`'s key is written in `t`.
fn key_span(t: &dyn TableLike, name: &str) -> Option<Range<usize>> {
    t.get_key_value(name).and_then(|(k, _)| k.span())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `pool[web].backend[0]` to `pool.backend`, for table headers.
fn strip(key: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in key.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// An array element's key path: pools by name (as validation names them), others by index.
fn element(key: &str, i: usize, t: &dyn TableLike) -> String {
    match t.get("name").and_then(Item::as_str) {
        Some(name) if key == "pool" => format!("{key}[{name}]"),
        _ => format!("{key}[{i}]"),
    }
}

fn unknown_hint(name: &str, fields: &[F], label: &str) -> String {
    if let Some(close) = did_you_mean(name, fields.iter().map(|f| f.0)) {
        return format!("did you mean `{close}`?");
    }
    for (header, fs) in TABLES {
        if let Some(close) = did_you_mean(name, fs.iter().map(|f| f.0)) {
            return format!("did you mean `{close}`? It is a key of {header}, not of {label}");
        }
    }
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    format!(
        "{label} takes: {}; docs/configuration.md lists every key",
        names.join(", ")
    )
}

fn expected(t: Ty) -> &'static str {
    match t {
        Str => "a string",
        Int => "a whole number",
        UInt => "a whole number of 0 or more",
        Float => "a number",
        Bool => "true or false",
        Strs => "an array of strings",
        StrMap => "a table of strings",
        Table(_) => "a table",
        Tables(_) => "an array of tables",
    }
}

fn found(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) | Item::Value(Value::InlineTable(_)) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => found_value(v),
    }
}

fn found_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(i) if *i.value() < 0 => "a negative number",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a fractional number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

/// What was found instead of a `t`: for an array of strings holding something else, what
/// that is ("an array of strings, not an array" named no difference).
fn found_in(t: Ty, item: &Item) -> String {
    let bad = match (t, item) {
        (Strs, Item::Value(Value::Array(a))) => a.iter().find(|v| !v.is_str()),
        _ => None,
    };
    match bad {
        Some(v) => format!("an array holding {}", found_value(v)),
        None => found(item).to_string(),
    }
}

/// The fix for a quoted value where a number belongs: unquote it when it is one, else
/// say what kind of number goes there (`weight = "x"` must not be told to `write x`).
fn number_hint(t: Ty, text: &str) -> String {
    let is_number = match t {
        Float => text.parse::<f64>().is_ok_and(f64::is_finite),
        UInt => text.parse::<u64>().is_ok(),
        _ => text.parse::<i64>().is_ok(),
    };
    match is_number {
        true => format!("numbers are not quoted: write {text}"),
        false => format!("write {}, without quotes", expected(t)),
    }
}

fn type_hint(t: Ty, item: &Item) -> String {
    match (t, item) {
        (Str, Item::Value(v)) if !v.is_array() && !v.is_inline_table() => {
            "strings are quoted: write the value in double quotes".to_string()
        }
        (Int | UInt | Float, Item::Value(Value::String(s))) => number_hint(t, s.value().trim()),
        (Tables(_), _) => "write each entry as its own [[...]] table".to_string(),
        (Strs, _) => "write e.g. [\"a\", \"b\"]".to_string(),
        _ => format!("write {}", expected(t)),
    }
}

#[cfg(test)]
mod tests;
