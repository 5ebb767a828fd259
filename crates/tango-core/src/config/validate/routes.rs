//! The tables that name pools: `[[route]]` (which pool gets a request, or the redirect
//! that answers it, and its header edits) and `[[allow]]`
//! (a checklist finding accepted on purpose); and `[alerts]`, the delivery targets.

use super::fields::{one_of, span, V};
use super::headers::{headers, redirect};
use crate::config::file::{AlertsFile, AllowFile, RouteFile, S};
use crate::config::{Alerts, Allow, HeaderRules, Pool, Route, Target};
use crate::diag::{Diagnostic, Span};

pub(super) fn routes(v: &mut V<'_>, rs: &[S<RouteFile>], pools: &[Pool]) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, r) in rs.iter().enumerate() {
        let rf = r.get_ref();
        let k = format!("route[{i}]");
        let target = target(v, &k, r, pools);
        if let Some(p) = &rf.path_prefix {
            if !p.get_ref().starts_with('/') {
                v.err(
                    &format!("{k}.path_prefix"),
                    span(p),
                    "path_prefix must start with '/'",
                    format!("write \"/{}\"", p.get_ref()),
                );
            }
        }
        let headers = headers(v, &k, rf.headers.as_ref());
        let Some(target) = target else { continue };
        if let (Target::Redirect(_), false, Some(s)) =
            (&target, headers.request.is_empty(), headers.span)
        {
            v.err(
                &format!("{k}.headers.request"),
                s,
                "a redirect route forwards nothing: its request edits would never apply",
                "remove `request`; `response` edits apply to the redirect",
            );
        }
        let host = rf
            .host
            .as_ref()
            .map(|h| h.get_ref().trim().to_ascii_lowercase());
        // No request has an empty host to match: such a route would never be taken.
        if let (Some(""), Some(h)) = (host.as_deref(), rf.host.as_ref()) {
            v.err(
                &format!("{k}.host"),
                span(h),
                "an empty host matches no request",
                "name the host (`host = \"shop.example\"`), or leave `host` out to match any",
            );
        }
        out.push(Route {
            host,
            path_prefix: rf.path_prefix.as_ref().map(|p| p.get_ref().clone()),
            target,
            headers,
            span: span(r),
        });
    }
    if rs.is_empty() && pools.len() > 1 {
        v.diags.push(
            Diagnostic::error(
                "route",
                None,
                "several pools are defined but no [[route]] says which gets traffic",
            )
            .with_hint("add [[route]] entries; a route with only `pool = \"...\"` is the default"),
        );
    }
    if rs.is_empty() && pools.len() == 1 {
        out.push(Route {
            host: None,
            path_prefix: None,
            target: Target::Pool(0),
            headers: HeaderRules::default(),
            span: Span::default(),
        });
    }
    out
}

/// A route names a pool or redirects: one of the two.
fn target(v: &mut V<'_>, k: &str, r: &S<RouteFile>, pools: &[Pool]) -> Option<Target> {
    let rf = r.get_ref();
    match (&rf.pool, &rf.redirect) {
        (Some(_), Some(red)) => {
            v.err(
                &format!("{k}.redirect"),
                span(red),
                "a route with a pool cannot redirect too",
                "remove `pool` to answer with the redirect, or `redirect` to forward",
            );
            None
        }
        (None, Some(red)) => redirect(v, k, red).map(Target::Redirect),
        (None, None) => {
            v.err(
                k,
                span(r),
                "the route names no pool and no redirect",
                "add `pool = \"...\"`, or `redirect = { ... }`",
            );
            None
        }
        (Some(p), None) => {
            let Some(i) = pools.iter().position(|x| x.name == *p.get_ref()) else {
                let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                v.err(
                    &format!("{k}.pool"),
                    span(p),
                    format!("route names pool `{}`, which is not defined", p.get_ref()),
                    if names.is_empty() {
                        "define the pool with [[pool]]".to_string()
                    } else {
                        one_of(p.get_ref(), &names)
                    },
                );
                return None;
            };
            Some(Target::Pool(i))
        }
    }
}

pub(super) fn allows(v: &mut V<'_>, al: &[S<AllowFile>], pools: &[Pool]) -> Vec<Allow> {
    let mut out = Vec::new();
    for (i, a) in al.iter().enumerate() {
        let af = a.get_ref();
        let k = format!("allow[{i}]");
        let reason = af
            .reason
            .as_ref()
            .map(|r| r.get_ref().trim().to_string())
            .unwrap_or_default();
        if reason.is_empty() {
            v.err(
                &format!("{k}.reason"),
                span(a),
                format!("allowing {} needs a stated reason", af.rule.get_ref()),
                "add `reason = \"...\"` saying why this hazard is acceptable here",
            );
        }
        if let Some(p) = &af.pool {
            if !pools.iter().any(|x| x.name == *p.get_ref()) {
                v.err(
                    &format!("{k}.pool"),
                    span(p),
                    format!("pool `{}` is not defined", p.get_ref()),
                    "name a pool defined with [[pool]]",
                );
            }
        }
        out.push(Allow {
            rule: af.rule.get_ref().clone(),
            reason,
            pool: af.pool.as_ref().map(|p| p.get_ref().clone()),
            span: span(a),
        });
    }
    out
}

pub(super) fn alerts(v: &mut V<'_>, a: Option<&S<AlertsFile>>) -> Alerts {
    let Some(a) = a else { return Alerts::default() };
    let mut url = |key: &str, u: &Option<S<String>>| -> Option<String> {
        let u = u.as_ref()?;
        let text = u.get_ref().trim();
        let ok = text
            .strip_prefix("http://")
            .map(|rest| !rest.is_empty() && !rest.starts_with('/'))
            .unwrap_or(false);
        if !ok {
            v.err(
                key,
                span(u),
                format!("`{text}` is not an http:// URL"),
                "write e.g. \"http://127.0.0.1:9093\" (https is not supported for delivery)",
            );
            return None;
        }
        Some(text.trim_end_matches('/').to_string())
    };
    let webhook = url("alerts.webhook", &a.get_ref().webhook);
    let alertmanager = url("alerts.alertmanager", &a.get_ref().alertmanager);
    Alerts {
        webhook,
        alertmanager,
    }
}
