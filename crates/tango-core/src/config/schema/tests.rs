use crate::config::{parse, LoadError};
use std::path::Path;

fn problems(text: &str) -> Vec<(String, String, Option<String>)> {
    let e = parse("t.toml", text, Path::new(".")).expect_err("the file has mistakes");
    e.diagnostics()
        .iter()
        .map(|d| (d.key.clone(), d.message.clone(), d.hint.clone()))
        .collect()
}

#[test]
fn five_mistakes_are_reported_in_one_run() {
    let text = include_str!("../../../../../tests/configs/invalid-five-mistakes.toml");
    let e = parse("t.toml", text, Path::new(".")).expect_err("invalid");
    assert!(matches!(e, LoadError::Invalid { .. }), "{e}");
    let keys: Vec<&str> = e.diagnostics().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "route[0].pool",
            "pool[web].policy",
            "pool[web].timeout",
            "pool[web].backend[0].max_inflight",
            "pool[web].backend[1].weight",
        ]
    );
    let d = &e.diagnostics()[3];
    assert_eq!(d.message, "unknown key `max_inflight` in [[pool.backend]]");
    assert_eq!(d.hint.as_deref(), Some("did you mean `max_in_flight`?"));
    assert_eq!(
        e.diagnostics()[1].hint.as_deref(),
        Some(
            "did you mean `round_robin`? (use one of: round_robin, random, least_request, \
             peak_ewma, ring_hash, maglev)"
        )
    );
}

#[test]
fn a_key_of_another_table_is_named() {
    let p = problems(
        "[[listener]]\nlisten = \"0.0.0.0:80\"\n[[pool]]\nname = \"web\"\nwieght = 2\n\
         [[pool.backend]]\naddress = \"a:1\"\n",
    );
    assert_eq!(
        p,
        [(
            "pool[web].wieght".to_string(),
            "unknown key `wieght` in [[pool]]".to_string(),
            Some("did you mean `weight`? It is a key of [[pool.backend]], not of [[pool]]".into())
        )]
    );
}

#[test]
fn wrong_types_and_inline_and_dotted_keys_do_not_stop_validation() {
    let p = problems(
        "[[listener]]\nlisten = \"0.0.0.0:80\"\n[[route]]\npool = \"nope\"\n\
         [[pool]]\nname = \"web\"\nhealth.pth = \"/\"\nmax_attempts = \"3\"\n\
         backend = [{ address = \"a:1\", wieght = 1 }, { address = \"b:1\", weight = true }]\n",
    );
    let got: Vec<(&str, &str)> = p.iter().map(|(k, m, _)| (k.as_str(), m.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "route[0].pool",
                "route names pool `nope`, which is not defined"
            ),
            ("pool[web].health.pth", "unknown key `pth` in [pool.health]"),
            (
                "pool[web].max_attempts",
                "`max_attempts` must be a whole number, not a string"
            ),
            (
                "pool[web].backend[0].wieght",
                "unknown key `wieght` in [[pool.backend]]"
            ),
            (
                "pool[web].backend[1].weight",
                "`weight` must be a whole number, not a boolean"
            ),
        ]
    );
    assert_eq!(p[2].2.as_deref(), Some("numbers are not quoted: write 3"));
}

#[test]
fn a_quoted_word_where_a_number_belongs_is_not_told_to_write_the_word() {
    let p = problems(
        "[[listener]]\nlisten = \"0.0.0.0:80\"\n[[pool]]\nname = \"web\"\n\
         retry_budget = \"lots\"\n[[pool.backend]]\naddress = \"a:1\"\nweight = \"x\"\n",
    );
    let hints: Vec<_> = p
        .iter()
        .map(|(k, _, h)| (k.as_str(), h.as_deref()))
        .collect();
    assert_eq!(
        hints,
        [
            (
                "pool[web].retry_budget",
                Some("write a number, without quotes")
            ),
            (
                "pool[web].backend[0].weight",
                Some("write a whole number, without quotes")
            ),
        ]
    );
}

#[test]
fn a_required_key_of_the_wrong_type_is_a_shape_error() {
    let text = "[[listener]]\nlisten = 80\nbogus = 1\n";
    let e = parse("t.toml", text, Path::new(".")).expect_err("invalid");
    assert!(matches!(e, LoadError::Parse { .. }), "{e}");
    let msgs: Vec<&str> = e.diagnostics().iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "`listen` must be a string, not a whole number",
            "unknown key `bogus` in [[listener]]"
        ]
    );
}

/// An array of strings holding something else says what ("an array of strings, not an
/// array" named no difference).
#[test]
fn an_array_of_the_wrong_type_names_what_it_holds() {
    let p = problems(
        "[[listener]]\nlisten = \"0.0.0.0:80\"\ntrusted_proxies = [\"10.0.0.0/8\", 1]\n\
         [[pool]]\nname = \"web\"\n[pool.health]\nexpect = [[200]]\n\
         [[pool.backend]]\naddress = \"a:1\"\n",
    );
    let got: Vec<&str> = p.iter().map(|(_, m, _)| m.as_str()).collect();
    assert_eq!(
        got,
        [
            "`trusted_proxies` must be an array of strings, not an array holding a whole number",
            "`expect` must be an array of strings, not an array holding an array",
        ]
    );
}

/// The field names serde's derive gives `T` (it passes them to `deserialize_struct`).
fn serde_fields<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
    use serde::de::{self, Visitor};
    struct Capture<'a>(&'a mut Vec<&'static str>);
    impl<'de> serde::Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend(fields);
            Err(de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut v = Vec::new();
    let _ = T::deserialize(Capture(&mut v));
    v.sort_unstable();
    v
}

#[test]
fn the_key_lists_are_the_file_types_fields() {
    use super::keys::*;
    use crate::config::file::*;
    let names = |fs: &[F]| {
        let mut v: Vec<&str> = fs.iter().map(|f| f.0).collect();
        v.sort_unstable();
        v
    };
    let pairs: [(&str, Vec<&str>, &[F]); 19] = [
        ("ConfigFile", serde_fields::<ConfigFile>(), ROOT),
        ("AdminFile", serde_fields::<AdminFile>(), ADMIN),
        ("ListenerFile", serde_fields::<ListenerFile>(), LISTENER),
        ("TlsFile", serde_fields::<TlsFile>(), TLS),
        ("CertFile", serde_fields::<CertFile>(), CERT),
        (
            "ProxyProtocolFile",
            serde_fields::<ProxyProtocolFile>(),
            PROXY_PROTOCOL,
        ),
        ("RouteFile", serde_fields::<RouteFile>(), ROUTE),
        ("HeadersFile", serde_fields::<HeadersFile>(), HEADERS),
        (
            "HeaderEditsFile",
            serde_fields::<HeaderEditsFile>(),
            HEADER_EDITS,
        ),
        ("RedirectFile", serde_fields::<RedirectFile>(), REDIRECT),
        ("PoolFile", serde_fields::<PoolFile>(), POOL),
        ("PoolTlsFile", serde_fields::<PoolTlsFile>(), POOL_TLS),
        ("HashKeyFile", serde_fields::<HashKeyFile>(), HASH_KEY),
        ("HealthFile", serde_fields::<HealthFile>(), HEALTH),
        ("OutlierFile", serde_fields::<OutlierFile>(), OUTLIER),
        ("BackendFile", serde_fields::<BackendFile>(), BACKEND),
        ("AllowFile", serde_fields::<AllowFile>(), ALLOW),
        ("AlertsFile", serde_fields::<AlertsFile>(), ALERTS),
        ("GuardFile", serde_fields::<GuardFile>(), GUARD),
    ];
    for (ty, serde, schema) in pairs {
        assert_eq!(serde, names(schema), "{ty}");
    }
}
