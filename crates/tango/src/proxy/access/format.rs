//! The access log's formats (`AccessFormat`: nginx's combined then tango's fields, or
//! JSON) and a line in either from one request's fields. Times are in milliseconds with
//! three decimals (microseconds), never a float's full expansion.

use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The access log's line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AccessFormat {
    /// nginx's `combined` format, then tango's fields as `key=value`: readable by the
    /// tools that read web server logs (and by `tango simulate --access-log`).
    Combined,
    /// One JSON object per line.
    Json,
}

/// The fields of one line, borrowed from the entry.
#[derive(Serialize)]
pub(super) struct Fields<'a> {
    pub(super) ts: String,
    pub(super) request_id: Cow<'a, str>,
    pub(super) listener: &'a str,
    pub(super) client: IpAddr,
    pub(super) client_port: u16,
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
    pub(super) protocol: &'static str,
    pub(super) host: Option<Cow<'a, str>>,
    pub(super) status: u16,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) user_agent: Option<Cow<'a, str>>,
    pub(super) referer: Option<Cow<'a, str>>,
    pub(super) pool: Option<&'a str>,
    pub(super) backend: Option<&'a str>,
    pub(super) backend_address: Option<&'a str>,
    pub(super) tries: u32,
    pub(super) upstream_ms: Option<Ms>,
    pub(super) total_ms: Ms,
}

/// Milliseconds, written with three decimals.
#[derive(Clone, Copy)]
pub(super) struct Ms(pub(super) f64);

impl Serialize for Ms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Rounded to the microsecond, the shortest form of the double is that decimal.
        s.serialize_f64((self.0 * 1000.0).round() / 1000.0)
    }
}

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}", self.0)
    }
}

pub(super) fn text(v: &http::HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

pub(super) fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The line for `f`, ending in a newline.
pub(super) fn render(format: AccessFormat, f: &Fields<'_>) -> Vec<u8> {
    match format {
        AccessFormat::Json => {
            let mut out = serde_json::to_vec(f).unwrap_or_default();
            out.push(b'\n');
            out
        }
        AccessFormat::Combined => combined(f).into_bytes(),
    }
}

/// nginx's `combined` (`$remote_addr - $remote_user [$time_local] "$request" $status
/// $body_bytes_sent "$http_referer" "$http_user_agent"`), in UTC, then tango's fields.
fn combined(f: &Fields<'_>) -> String {
    let mut s = String::with_capacity(320);
    let _ = write!(s, "{} - - [{}] \"", f.client, clf_time(&f.ts));
    escape_into(&mut s, f.method);
    s.push(' ');
    escape_into(&mut s, f.path);
    if let Some(q) = f.query {
        s.push('?');
        escape_into(&mut s, q);
    }
    // Three digits, as nginx writes them: a request cut before any answer is `000`.
    let _ = write!(s, " {}\" {:03} {} \"", f.protocol, f.status, f.bytes_out);
    escape_into(&mut s, f.referer.as_deref().unwrap_or("-"));
    s.push_str("\" \"");
    escape_into(&mut s, f.user_agent.as_deref().unwrap_or("-"));
    s.push('"');
    // key=value pairs, written in place (no string per field).
    let mut kv = |k: &str, v: &str| {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        value_into(&mut s, v);
    };
    kv("request_id", &f.request_id);
    kv("listener", f.listener);
    kv("host", f.host.as_deref().unwrap_or("-"));
    kv("pool", f.pool.unwrap_or("-"));
    kv("backend", f.backend.unwrap_or("-"));
    kv("backend_address", f.backend_address.unwrap_or("-"));
    let _ = write!(s, " tries={} bytes_in={} upstream_ms=", f.tries, f.bytes_in);
    match f.upstream_ms {
        Some(m) => {
            let _ = write!(s, "{m}");
        }
        None => s.push('-'),
    }
    let _ = write!(s, " total_ms={}", f.total_ms);
    s.push('\n');
    s
}

/// `2026-11-29T18:46:37.173Z` as the common log format writes it:
/// `29/Nov/2026:18:46:37 +0000`.
fn clf_time(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let part = |r: std::ops::Range<usize>| rfc3339.get(r).unwrap_or("");
    let month = part(5..7)
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{}/{month}/{}:{} +0000",
        part(8..10),
        part(0..4),
        part(11..19)
    )
}

/// Inside a quoted field: `"` and `\` escaped with a backslash, other bytes outside
/// printable ASCII as `\xHH`, as nginx escapes them.
fn escape_into(out: &mut String, v: &str) {
    for b in v.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
}

/// A `key=value` value: bare when it is plain, quoted and escaped when it holds a
/// space, a quote or an `=`, or is empty.
fn value_into(out: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        out.push_str(v);
    } else {
        out.push('"');
        escape_into(out, v);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields<'static> {
        Fields {
            ts: "2026-11-29T18:46:37.173Z".to_string(),
            request_id: Cow::Borrowed("abc"),
            listener: "main",
            client: "10.1.2.3".parse().unwrap(),
            client_port: 40000,
            method: "GET",
            path: "/a b",
            query: Some("q=\"1\""),
            protocol: "HTTP/1.1",
            host: Some(Cow::Borrowed("example.com")),
            status: 200,
            bytes_in: 5,
            bytes_out: 12,
            user_agent: Some(Cow::Borrowed("curl/8.0")),
            referer: None,
            pool: Some("web"),
            backend: Some("web-1"),
            backend_address: Some("127.0.0.1:8080"),
            tries: 2,
            upstream_ms: Some(Ms(0.137_755_000_000_000_02)),
            total_ms: Ms(1.5),
        }
    }

    #[test]
    fn combined_lines_read_as_nginx_combined_then_tango_fields() {
        let line = String::from_utf8(render(AccessFormat::Combined, &fields())).unwrap();
        assert_eq!(
            line,
            "10.1.2.3 - - [29/Nov/2026:18:46:37 +0000] \"GET /a b?q=\\\"1\\\" HTTP/1.1\" 200 12 \"-\" \"curl/8.0\" \
             request_id=abc listener=main host=example.com pool=web backend=web-1 \
             backend_address=127.0.0.1:8080 tries=2 bytes_in=5 upstream_ms=0.138 total_ms=1.500\n"
        );
    }

    #[test]
    fn a_request_without_an_answer_has_status_000() {
        let mut f = fields();
        f.status = 0;
        let line = String::from_utf8(render(AccessFormat::Combined, &f)).unwrap();
        assert!(line.contains("HTTP/1.1\" 000 12 \"-\""), "{line}");
        let line = String::from_utf8(render(AccessFormat::Json, &f)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 0);
    }

    #[test]
    fn json_times_are_rounded_to_the_microsecond() {
        let line = String::from_utf8(render(AccessFormat::Json, &fields())).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["upstream_ms"].to_string(), "0.138");
        assert_eq!(v["total_ms"].to_string(), "1.5");
        assert_eq!(v["referer"], serde_json::Value::Null);
        assert_eq!(v["client"], "10.1.2.3");
    }

    #[test]
    fn odd_bytes_are_escaped_and_odd_values_quoted() {
        let mut s = String::new();
        escape_into(&mut s, "a\u{1}é\"");
        assert_eq!(s, "a\\x01\\xC3\\xA9\\\"");
        let mut s = String::new();
        value_into(&mut s, "x y");
        assert_eq!(s, "\"x y\"");
        assert_eq!(
            clf_time("2026-01-02T03:04:05.000Z"),
            "02/Jan/2026:03:04:05 +0000"
        );
    }
}
