//! The shape of a configuration file, checked before serde sees it: every unknown key and
//! every value of the wrong type, each with its place and, where a known key is close, a
//! did-you-mean.
//!
//! serde stops at its first error, so `tango check` would otherwise report one mistake
//! per run. Here the document is walked against the key lists below (which mirror
//! `file.rs`; a test keeps them in step), and every offending key-value is blanked out of
//! a copy of the text (byte for byte, so spans stay valid). That copy then deserialises,
//! and validation reports the remaining problems in the same run.

use crate::diag::{did_you_mean, Diagnostic, Span};
use std::ops::Range;
use toml_edit::{Item, TableLike, Value};

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    UInt,
    Float,
    Bool,
    Strs,
    /// A table of string values under any keys (header names).
    StrMap,
    Table(&'static [F]),
    Tables(&'static [F]),
}

/// A key, its type, and whether serde requires it (a required key is never blanked).
struct F(&'static str, Ty, bool);

use Ty::*;

const ROOT: &[F] = &[
    F("admin", Table(ADMIN), false),
    F("listener", Tables(LISTENER), false),
    F("route", Tables(ROUTE), false),
    F("pool", Tables(POOL), false),
    F("allow", Tables(ALLOW), false),
    F("alerts", Table(ALERTS), false),
    F("guard", Table(GUARD), false),
];
const GUARD: &[F] = &[
    F("enabled", Bool, false),
    F("max_shift", Float, false),
    F("canary", Str, false),
    F("rollback", Bool, false),
    F("noise_sigmas", Float, false),
    F("min_sample", UInt, false),
    F("allow_shift", Strs, false),
];
const ALERTS: &[F] = &[F("webhook", Str, false), F("alertmanager", Str, false)];
const ADMIN: &[F] = &[
    F("listen", Str, false),
    F("token", Str, false),
    F("token_file", Str, false),
    F("state_dir", Str, false),
    F("journal_max_bytes", UInt, false),
];
const LISTENER: &[F] = &[
    F("name", Str, false),
    F("listen", Str, true),
    F("tls", Table(TLS), false),
    F("header_timeout", Str, false),
    F("first_byte_timeout", Str, false),
    F("idle_timeout", Str, false),
    F("request_timeout", Str, false),
    F("send_timeout", Str, false),
    F("max_connections", Int, false),
    F("max_header_bytes", Int, false),
    F("trusted_proxies", Strs, false),
    F("proxy_protocol", Table(PROXY_PROTOCOL), false),
];
const TLS: &[F] = &[
    F("cert", Str, false),
    F("key", Str, false),
    F("certs", Tables(CERT), false),
];
const CERT: &[F] = &[
    F("cert", Str, true),
    F("key", Str, true),
    F("names", Strs, false),
    F("default", Bool, false),
];
const PROXY_PROTOCOL: &[F] = &[F("trusted", Strs, false)];
const ROUTE: &[F] = &[
    F("host", Str, false),
    F("path_prefix", Str, false),
    F("pool", Str, false),
    F("headers", Table(HEADERS), false),
    F("redirect", Table(REDIRECT), false),
];
const HEADERS: &[F] = &[
    F("request", Table(HEADER_EDITS), false),
    F("response", Table(HEADER_EDITS), false),
];
const HEADER_EDITS: &[F] = &[
    F("set", StrMap, false),
    F("append", StrMap, false),
    F("remove", Strs, false),
];
const REDIRECT: &[F] = &[
    F("status", Int, false),
    F("scheme", Str, false),
    F("host", Str, false),
    F("port", Int, false),
    F("path", Str, false),
];
const POOL: &[F] = &[
    F("name", Str, true),
    F("policy", Str, false),
    F("hash_key", Table(HASH_KEY), false),
    F("on_missing_key", Str, false),
    F("max_load_factor", Float, false),
    F("ring_points", Int, false),
    F("ewma_decay", Str, false),
    F("slow_start", Str, false),
    F("connect_timeout", Str, false),
    F("try_timeout", Str, false),
    F("timeout", Str, false),
    F("idle_timeout", Str, false),
    F("max_attempts", Int, false),
    F("retry_budget", Float, false),
    F("panic_threshold", Float, false),
    F("tls", Table(POOL_TLS), false),
    F("protocol", Str, false),
    F("send_proxy_protocol", Str, false),
    F("health", Table(HEALTH), false),
    F("outlier", Table(OUTLIER), false),
    F("backend", Tables(BACKEND), false),
];
const POOL_TLS: &[F] = &[
    F("ca", Str, false),
    F("server_name", Str, false),
    F("cert", Str, false),
    F("key", Str, false),
    F("verify", Bool, false),
];
const HASH_KEY: &[F] = &[F("source", Str, true), F("name", Str, false)];
const HEALTH: &[F] = &[
    F("kind", Str, false),
    F("service", Str, false),
    F("path", Str, false),
    F("method", Str, false),
    F("host", Str, false),
    F("expect", Strs, false),
    F("interval", Str, false),
    F("timeout", Str, false),
    F("jitter", Float, false),
    F("rise", Int, false),
    F("fall", Int, false),
];
const OUTLIER: &[F] = &[
    F("consecutive_failures", Int, false),
    F("base_ejection", Str, false),
    F("max_ejection", Str, false),
    F("max_ejected_percent", Float, false),
];
const BACKEND: &[F] = &[
    F("name", Str, false),
    F("address", Str, true),
    F("weight", Int, false),
    F("max_connections", Int, false),
    F("max_in_flight", Int, false),
];
const ALLOW: &[F] = &[
    F("rule", Str, true),
    F("reason", Str, false),
    F("pool", Str, false),
];

/// Every table of the schema with the header that introduces it, for "a key of ..." hints.
const TABLES: &[(&str, &[F])] = &[
    ("[admin]", ADMIN),
    ("[[listener]]", LISTENER),
    ("[listener.tls]", TLS),
    ("[[listener.tls.certs]]", CERT),
    ("[listener.proxy_protocol]", PROXY_PROTOCOL),
    ("[[route]]", ROUTE),
    ("[route.headers]", HEADERS),
    ("[route.headers.request]", HEADER_EDITS),
    ("[route.redirect]", REDIRECT),
    ("[[pool]]", POOL),
    ("[pool.tls]", POOL_TLS),
    ("[pool.hash_key]", HASH_KEY),
    ("[pool.health]", HEALTH),
    ("[pool.outlier]", OUTLIER),
    ("[[pool.backend]]", BACKEND),
    ("[[allow]]", ALLOW),
    ("[alerts]", ALERTS),
    ("[guard]", GUARD),
];

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
            let key_span = t.get_key_value(name).and_then(|(k, _)| k.span());
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
                let label = format!("[[{}]]", strip(key));
                for (i, t) in a.iter().enumerate() {
                    self.table(t, fs, &element(key, i, t), &label);
                }
                true
            }
            (Tables(fs), Item::Value(Value::Array(a))) if a.iter().all(|v| v.is_inline_table()) => {
                let label = format!("[[{}]]", strip(key));
                for (i, t) in a.iter().filter_map(Value::as_inline_table).enumerate() {
                    self.table(t, fs, &element(key, i, t), &label);
                }
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

    /// A table of strings under any keys: each value that is not a string is reported
    /// and blanked.
    fn str_map(&mut self, t: &dyn TableLike, path: &str) {
        for (name, item) in t.iter() {
            if item.as_str().is_some() {
                continue;
            }
            let key_span = t.get_key_value(name).and_then(|(k, _)| k.span());
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
            let key_span = t.get_key_value(name).and_then(|(k, _)| k.span());
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
