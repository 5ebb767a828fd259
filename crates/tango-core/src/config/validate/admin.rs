//! `[admin]`: the admin listener, and where its token comes from (the environment,
//! `token` or `token_file`; see docs/configuration.md).

use super::fields::{span, V};
use crate::config::defaults::{self, admin as default};
use crate::config::file::{AdminFile, S};
use crate::config::{token_problem, Admin, Env, TokenSource, ADMIN_TOKEN_ENV};
use crate::diag::Diagnostic;
use std::net::SocketAddr;

pub(super) fn admin(v: &mut V<'_>, a: Option<&S<AdminFile>>, env: &Env) -> Admin {
    let default_listen: SocketAddr = defaults::admin_listen();
    let Some(a) = a else {
        let token = env_token(v, env);
        return Admin {
            listen: default_listen,
            token,
            state_dir: None,
            journal_max_bytes: default::JOURNAL_MAX_BYTES,
        };
    };
    let f = a.get_ref();
    let listen = f
        .listen
        .as_ref()
        .and_then(|l| v.socket("admin.listen", l))
        .unwrap_or(default_listen);
    let token = admin_token(v, f, env);
    if !listen.ip().is_loopback() && token.is_none() {
        let s = f.listen.as_ref().map(span).unwrap_or(span(a));
        v.err(
            "admin.listen",
            s,
            format!("admin listener {listen} is not on loopback and has no token"),
            format!("set admin.token_file (or admin.token, or {ADMIN_TOKEN_ENV} in tango's environment), or listen on 127.0.0.1"),
        );
    }
    let state_dir = f.state_dir.as_ref().and_then(|d| state_dir(v, d));
    let journal_max_bytes = match &f.journal_max_bytes {
        Some(b) if *b.get_ref() < default::JOURNAL_MIN_BYTES => {
            v.err(
                "admin.journal_max_bytes",
                span(b),
                format!("{} bytes is too small for the journal file", b.get_ref()),
                format!(
                    "use at least {} (an event is a line of a few hundred bytes; the default is {})",
                    default::JOURNAL_MIN_BYTES,
                    default::JOURNAL_MAX_BYTES
                ),
            );
            default::JOURNAL_MAX_BYTES
        }
        Some(b) => *b.get_ref(),
        None => default::JOURNAL_MAX_BYTES,
    };
    Admin {
        listen,
        token,
        state_dir,
        journal_max_bytes,
    }
}

/// `state_dir`, resolved against the file's directory. An empty one is refused: it
/// would resolve to that directory itself, and the journal would be written beside
/// the configuration, which is almost never what was meant (and the file says
/// nothing of it); leaving the key out keeps the journal in memory.
fn state_dir(v: &mut V<'_>, d: &S<String>) -> Option<std::path::PathBuf> {
    if d.get_ref().trim().is_empty() {
        v.err(
            "admin.state_dir",
            span(d),
            "admin.state_dir is empty",
            "name the journal's directory, e.g. \"/var/lib/tango\", or remove the key to keep the journal in memory only",
        );
        return None;
    }
    Some(v.path(d.get_ref()))
}

/// The admin token's source: the environment first, then `token` or `token_file` (one of
/// them: both at once is an error, since which one is meant cannot be told).
fn admin_token(v: &mut V<'_>, f: &AdminFile, env: &Env) -> Option<TokenSource> {
    if let (Some(_), Some(file)) = (&f.token, &f.token_file) {
        v.err(
            "admin.token_file",
            span(file),
            "admin.token and admin.token_file are both set",
            "keep one of them: token_file keeps the secret out of this file",
        );
    }
    if let Some(t) = &f.token {
        if let Some(problem) = token_problem(t.get_ref()) {
            v.err(
                "admin.token",
                span(t),
                problem,
                "use a long random string, e.g. `openssl rand -hex 24`",
            );
        }
    }
    if let Some(p) = &f.token_file {
        if p.get_ref().trim().is_empty() {
            v.err(
                "admin.token_file",
                span(p),
                "admin.token_file is empty",
                "name the file that holds the token, e.g. \"/etc/tango/admin-token\"",
            );
        }
    }
    let from_file = match (&f.token, &f.token_file) {
        (Some(t), _) => Some(TokenSource::Inline(t.get_ref().clone())),
        (None, Some(p)) => Some(TokenSource::File(v.path(p.get_ref()))),
        (None, None) => None,
    };
    env_token(v, env).or(from_file)
}

fn env_token(v: &mut V<'_>, env: &Env) -> Option<TokenSource> {
    let t = env.admin_token.as_ref()?;
    if let Some(problem) = token_problem(t) {
        v.diags.push(
            Diagnostic::error(
                ADMIN_TOKEN_ENV,
                None,
                format!("{ADMIN_TOKEN_ENV}: {problem}"),
            )
            .with_hint("use a long random string, e.g. `openssl rand -hex 24`"),
        );
    }
    Some(TokenSource::Env(t.clone()))
}
