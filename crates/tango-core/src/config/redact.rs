//! The configuration's text with the admin token taken out, for `/api/v1/config`.
//!
//! The edit is made on the TOML document (toml_edit), not on the text with a pattern:
//! the token may be spelled any way the parser accepts (`[admin]` with `token`,
//! `"token"` or `'token'`, an inline table `admin = { token = "..." }`, a dotted key
//! `admin.token = "..."`, a literal or multi-line string), and every other byte of the
//! file, comments and layout included, stays as written.

use toml_edit::{DocumentMut, Item, Value};

/// What the token's value becomes. It is itself a valid token (visible ASCII, long
/// enough), so the redacted text still validates, e.g. for `tango postmortem`'s checklist.
pub const REDACTED: &str = "<redacted-admin-token>";

/// The text with `admin.token`'s value replaced by [`REDACTED`]. `None` when the text is
/// not TOML: the caller must then withhold it rather than serve it unredacted.
pub fn redact_admin_token(text: &str) -> Option<String> {
    let mut doc: DocumentMut = text.parse().ok()?;
    let token = doc
        .as_table_mut()
        .get_mut("admin")
        .and_then(Item::as_table_like_mut)
        .and_then(|admin| admin.get_mut("token"));
    if let Some(item) = token {
        match item.as_value_mut() {
            Some(v) => {
                // Keep the spacing and any comment around the value.
                let decor = v.decor().clone();
                *v = Value::from(REDACTED);
                *v.decor_mut() = decor;
            }
            // Not a plain value (a table where a string belongs): replace it whole.
            None => *item = toml_edit::value(REDACTED),
        }
    }
    Some(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-0123456789abcdef";

    /// The admin token as the ordinary parser reads the text.
    fn token_of(text: &str) -> Option<String> {
        let t: toml::Table = text.parse().expect("redacted text is TOML");
        t.get("admin")?.get("token")?.as_str().map(str::to_string)
    }

    fn redacted(text: &str) -> String {
        let out = redact_admin_token(text).expect("valid TOML");
        assert!(!out.contains("s3cret"), "the secret is gone:\n{out}");
        assert_eq!(token_of(&out).as_deref(), Some(REDACTED), "{out}");
        out
    }

    #[test]
    fn a_table_keeps_its_layout_and_comments() {
        let text = format!(
            "# front matter\n[admin]\nlisten = \"127.0.0.1:9901\"\ntoken   =   \"{SECRET}\"   # rotated monthly\nstate_dir = \"/var/lib/tango\"\n\n[[listener]]\nlisten = \"0.0.0.0:80\"\n"
        );
        let out = redacted(&text);
        assert_eq!(
            out,
            text.replace(SECRET, REDACTED),
            "only the value changes"
        );
    }

    #[test]
    fn every_spelling_of_the_key_is_found() {
        let spellings = [
            format!("[admin]\n\"token\" = \"{SECRET}\"\n"),
            format!("[admin]\n'token' = \"{SECRET}\"\n"),
            format!("[\"admin\"]\ntoken = \"{SECRET}\"\n"),
            format!("admin = {{ listen = \"127.0.0.1:9901\", token = \"{SECRET}\" }}\n"),
            format!("admin = {{ \"token\" = '{SECRET}' }}\n"),
            format!("admin.token = \"{SECRET}\"\nadmin.listen = \"127.0.0.1:9901\"\n"),
            format!("\"admin\" . 'token' = \"{SECRET}\"\n"),
            format!("[admin]\ntoken = '{SECRET}'\n"),
            format!("[admin]\ntoken = \"\"\"\n{SECRET}\"\"\"\n"),
            format!("[admin]\ntoken = '''{SECRET}'''\n"),
            "[admin]\ntoken = \"s3cret-\\u0030123456789abcdef\"\n".to_string(),
        ];
        for text in spellings {
            redacted(&text);
        }
    }

    #[test]
    fn the_rest_of_an_inline_table_stays() {
        let out = redacted(&format!(
            "admin = {{ listen = \"127.0.0.1:9901\", token = \"{SECRET}\" }}\n"
        ));
        assert_eq!(
            out,
            format!("admin = {{ listen = \"127.0.0.1:9901\", token = \"{REDACTED}\" }}\n")
        );
    }

    #[test]
    fn without_a_token_the_text_is_unchanged() {
        let text = "[admin]\ntoken_file = \"/etc/tango/token\"\n\n[[pool]]\nname = \"p\"\n";
        assert_eq!(redact_admin_token(text).as_deref(), Some(text));
        assert_eq!(redact_admin_token("").as_deref(), Some(""));
    }

    #[test]
    fn text_that_is_not_toml_is_withheld() {
        assert_eq!(
            redact_admin_token(&format!("[admin\ntoken = \"{SECRET}\"")),
            None
        );
    }
}
