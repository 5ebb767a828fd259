//! The exposition formats: which one a scraper asks for (`Accept`), and the registry
//! encoded in it: OpenMetrics as prometheus-client writes it, or rewritten into the
//! Prometheus text format (0.0.4).

use prometheus_client::registry::Registry;

/// An exposition format, chosen per scrape from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposition {
    OpenMetrics,
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
}

impl Exposition {
    /// OpenMetrics when the scraper lists it at least as high as plain text (Prometheus
    /// itself does); the Prometheus text format otherwise, and when there is no `Accept`.
    pub(crate) fn negotiate(accept: Option<&str>) -> Self {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Exposition::OpenMetrics
        } else {
            Exposition::Prometheus
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

pub(crate) fn render(r: &Registry, format: Exposition) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, r) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    match format {
        Exposition::OpenMetrics => out,
        Exposition::Prometheus => to_prometheus_text(&out),
    }
}

/// OpenMetrics text to the Prometheus text format. The two differ, for what tango
/// exports, in three ways: a counter family is named with its `_total` suffix in `HELP`
/// and `TYPE`, there are no `UNIT` lines, and there is no `# EOF`.
fn to_prometheus_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len() + 256);
    let mut help: Option<&str> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Written once its TYPE says whether the name needs `_total`.
            if let Some(h) = help.replace(line) {
                push_line(&mut out, h);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let counter = rest
                .strip_suffix(" counter")
                .filter(|name| !name.ends_with("_total"));
            if let Some(h) = help.take() {
                match (counter, h.strip_prefix("# HELP ")) {
                    (Some(name), Some(text)) => {
                        let text = text.strip_prefix(name).unwrap_or(text);
                        push_line(&mut out, &format!("# HELP {name}_total{text}"));
                    }
                    _ => push_line(&mut out, h),
                }
            }
            match counter {
                Some(name) => push_line(&mut out, &format!("# TYPE {name}_total counter")),
                None => push_line(&mut out, line),
            }
            continue;
        }
        push_line(&mut out, line);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::{to_prometheus_text, Exposition};

    #[test]
    fn negotiation_follows_the_accept_header() {
        use Exposition::*;
        // What Prometheus 2.x sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(prom)), OpenMetrics);
        assert_eq!(Exposition::negotiate(None), Prometheus);
        assert_eq!(Exposition::negotiate(Some("*/*")), Prometheus);
        assert_eq!(
            Exposition::negotiate(Some("text/plain;version=0.0.4")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text;q=0")),
            Prometheus
        );
        assert_eq!(
            Exposition::negotiate(Some("Application/OpenMetrics-Text; version=1.0.0")),
            OpenMetrics
        );
    }

    #[test]
    fn counters_take_their_total_name_in_the_prometheus_format() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{x=\"1\"} 3\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n"
        );
    }
}
