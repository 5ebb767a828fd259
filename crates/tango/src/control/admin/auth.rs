//! Who may use `/api/v1/*`: whoever presents the bearer token the admin listener started
//! with. The token is resolved once, at start (the environment, the file, or the file it
//! names), and stays in force until a restart: a reload that removes or changes it in the
//! configuration changes nothing here, and says so in the log. Reading the token from
//! the live configuration instead would let a reload to a tokenless file open the API.

use axum::http::{header, HeaderMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use subtle::ConstantTimeEq as _;
use tango_core::config::{token_problem, Admin, TokenSource};

/// The admin token; never printed.
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token `admin` names, reading `token_file` if that is where it is.
pub(crate) fn resolve(admin: &Admin) -> anyhow::Result<Option<Token>> {
    let Some(source) = &admin.token else {
        return Ok(None);
    };
    let token = match source {
        TokenSource::Env(t) | TokenSource::Inline(t) => t.clone(),
        TokenSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read admin.token_file {}: {e}", path.display())
            })?;
            let t = text.trim().to_string();
            if let Some(problem) = token_problem(&t) {
                anyhow::bail!("admin.token_file {}: {problem}", path.display());
            }
            t
        }
    };
    Ok(Some(Token(token)))
}

/// How [`Auth::check`] judged an API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Allowed,
    /// No token, or not the one in force: 401.
    Unauthorized,
    /// More than one `Authorization` field: 400.
    TwoCredentials,
}

/// The admin API's token in force, and what the configuration said about it at start.
pub(crate) struct Auth {
    token: Option<Token>,
    started_with: Option<TokenSource>,
    /// The configuration generation last compared with `started_with`.
    seen_generation: AtomicU64,
}

impl Auth {
    pub(crate) fn new(token: Option<Token>, admin: &Admin, generation: u64) -> Auth {
        Auth {
            token,
            started_with: admin.token.clone(),
            seen_generation: AtomicU64::new(generation),
        }
    }

    pub(crate) fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// What `headers` are let do: more than one `Authorization` field is refused
    /// whatever they hold (the field is a singleton, RFC 9110 11.6.2: reading one of
    /// two lets tango and whatever stands in front of it disagree on the credentials);
    /// otherwise the call is allowed when it carries the token (always, when there is
    /// none).
    pub(crate) fn check(&self, headers: &HeaderMap) -> Access {
        let mut fields = headers.get_all(header::AUTHORIZATION).iter();
        let first = fields.next();
        if fields.next().is_some() {
            return Access::TwoCredentials;
        }
        let Some(token) = &self.token else {
            return Access::Allowed;
        };
        let given = first.and_then(|v| v.to_str().ok()).and_then(bearer);
        // Constant time over the bytes; only the length can show through timing.
        if given.is_some_and(|g| g.as_bytes().ct_eq(token.0.as_bytes()).into()) {
            Access::Allowed
        } else {
            Access::Unauthorized
        }
    }

    /// Note a configuration generation; the first time one is seen whose admin token
    /// differs from the one at start, warn that the change waits for a restart.
    pub(crate) fn observe(&self, generation: u64, admin: &Admin) {
        if self.seen_generation.swap(generation, Relaxed) == generation {
            return;
        }
        if let Some(msg) = token_change(self.started_with.as_ref(), admin.token.as_ref()) {
            tracing::warn!(generation, "{msg}");
        }
    }
}

/// What a reload did to the admin token, when it changed it, as the log should say it.
fn token_change(started: Option<&TokenSource>, now: Option<&TokenSource>) -> Option<String> {
    match (started, now) {
        (a, b) if a == b => None,
        (Some(a), None) => Some(format!(
            "the reloaded configuration has no admin token; the admin API keeps requiring \
             the token it started with ({}) until tango restarts",
            a.describe()
        )),
        (Some(_), Some(b)) => Some(format!(
            "the reloaded configuration changes the admin token ({}); the admin API keeps \
             the token it started with until tango restarts",
            b.describe()
        )),
        (None, Some(b)) => Some(format!(
            "the reloaded configuration sets an admin token ({}); the admin API stays open \
             until tango restarts",
            b.describe()
        )),
        (None, None) => None,
    }
}

/// The credentials of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 9110, 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(token: Option<TokenSource>) -> Admin {
        Admin {
            listen: "127.0.0.1:0".parse().unwrap(),
            token,
            state_dir: None,
            journal_max_bytes: 1 << 20,
        }
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    impl Auth {
        fn allows(&self, headers: &HeaderMap) -> bool {
            self.check(headers) == Access::Allowed
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_exact() {
        let t = "0123456789abcdef0123";
        let a = Auth::new(Some(Token(t.into())), &admin(None), 1);
        for ok in [
            format!("Bearer {t}"),
            format!("bearer {t}"),
            format!("BEARER  {t}"),
        ] {
            assert!(a.allows(&headers(&ok)), "{ok}");
        }
        for bad in [
            format!("Bearer {t}x"),
            format!("Bearer {}", &t[1..]),
            format!("Basic {t}"),
            format!("Bearer{t}"),
            t.to_string(),
            "Bearer ".to_string(),
        ] {
            assert!(!a.allows(&headers(&bad)), "{bad}");
        }
        assert!(!a.allows(&HeaderMap::new()));
        let open = Auth::new(None, &admin(None), 1);
        assert!(open.allows(&HeaderMap::new()));
    }

    #[test]
    fn two_authorization_fields_are_refused_whatever_they_hold() {
        let t = "0123456789abcdef0123";
        let good = format!("Bearer {t}");
        let a = Auth::new(Some(Token(t.into())), &admin(None), 1);
        let open = Auth::new(None, &admin(None), 1);
        for second in [good.as_str(), "Bearer wrong", ""] {
            let mut h = headers(&good);
            h.append(header::AUTHORIZATION, second.parse().unwrap());
            assert_eq!(a.check(&h), Access::TwoCredentials, "{second}");
            assert_eq!(open.check(&h), Access::TwoCredentials, "{second}");
        }
        assert_eq!(a.check(&headers("Bearer wrong")), Access::Unauthorized);
        assert_eq!(a.check(&headers(&good)), Access::Allowed);
    }

    #[test]
    fn a_reload_that_touches_the_token_is_named() {
        let inline = TokenSource::Inline("0123456789abcdef0123".into());
        let other = TokenSource::Inline("fedcba9876543210fedc".into());
        assert_eq!(token_change(Some(&inline), Some(&inline)), None);
        assert_eq!(token_change(None, None), None);
        let removed = token_change(Some(&inline), None).unwrap();
        assert!(removed.starts_with("the reloaded configuration has no admin token; the admin API keeps requiring the token it started with (admin.token)"), "{removed}");
        assert!(token_change(Some(&inline), Some(&other)).is_some());
        assert!(token_change(None, Some(&other)).is_some());
        assert!(!removed.contains("0123456789abcdef0123"));
    }

    #[test]
    fn token_files_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let t = resolve(&admin(Some(TokenSource::File(path.clone()))))
            .unwrap()
            .unwrap();
        assert_eq!(t.as_str(), "0123456789abcdef0123");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        std::fs::write(&path, "short\n").unwrap();
        let e = resolve(&admin(Some(TokenSource::File(path.clone())))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "admin.token_file {}: the admin token is shorter than 16 characters",
                path.display()
            )
        );
        let missing = dir.path().join("missing");
        let e = resolve(&admin(Some(TokenSource::File(missing)))).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read admin.token_file"),
            "{e}"
        );
    }
}
