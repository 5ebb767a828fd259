use super::*;
use std::net::Ipv4Addr;

struct Req {
    headers: Vec<(&'static str, &'static str)>,
    path: &'static str,
    query: Option<&'static str>,
    peer: IpAddr,
}

impl RequestView for Req {
    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        let name = name.to_string();
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_bytes())
    }
    fn path(&self) -> &str {
        self.path
    }
    fn query(&self) -> Option<&str> {
        self.query
    }
    fn peer(&self) -> IpAddr {
        self.peer
    }
}

fn req(peer: &str, headers: &[(&'static str, &'static str)]) -> Req {
    Req {
        headers: headers.to_vec(),
        path: "/a/b",
        query: Some("x=1&user=alice&y"),
        peer: peer.parse().unwrap(),
    }
}

fn cidr(s: &str) -> Cidr {
    let (a, p) = s.split_once('/').unwrap();
    Cidr {
        addr: a.parse().unwrap(),
        prefix: p.parse().unwrap(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn untrusted_peer_is_the_client_whatever_it_claims() {
    let r = req("203.0.113.9", &[("x-forwarded-for", "1.1.1.1")]);
    assert_eq!(client_address(&r, &[cidr("10.0.0.0/8")]), ip("203.0.113.9"));
    assert_eq!(client_address(&r, &[]), ip("203.0.113.9"));
}

#[test]
fn xff_is_walked_from_the_right_skipping_trusted_hops() {
    let trusted = [cidr("10.0.0.0/8")];
    let r = req(
        "10.0.0.1",
        &[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("X-Forwarded-For", "10.1.2.3"),
        ],
    );
    // 6.6.6.6 is whatever the client wrote; 198.51.100.7 is what our proxy saw.
    assert_eq!(client_address(&r, &trusted), ip("198.51.100.7"));
}

#[test]
fn all_trusted_hops_give_the_leftmost() {
    let r = req("10.0.0.1", &[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
    assert_eq!(client_address(&r, &[cidr("10.0.0.0/8")]), ip("10.9.9.9"));
}

#[test]
fn garbage_hop_stops_at_the_last_trusted_one() {
    let r = req(
        "10.0.0.1",
        &[("x-forwarded-for", "1.2.3.4, nonsense, 10.2.2.2")],
    );
    assert_eq!(client_address(&r, &[cidr("10.0.0.0/8")]), ip("10.2.2.2"));
}

#[test]
fn forwarded_is_preferred_and_parsed() {
    let trusted = [cidr("10.0.0.0/8")];
    let r = req(
        "10.0.0.1",
        &[
            ("x-forwarded-for", "9.9.9.9"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\"",
            ),
        ],
    );
    assert_eq!(client_address(&r, &trusted), ip("2001:db8:cafe::17"));
    let r = req(
        "10.0.0.1",
        &[("forwarded", "for=192.0.2.60:8080;by=10.0.0.1")],
    );
    assert_eq!(client_address(&r, &trusted), ip("192.0.2.60"));
}

#[test]
fn mapped_ipv6_peer_counts_as_ipv4() {
    let r = req("::ffff:10.0.0.1", &[("x-forwarded-for", "192.0.2.1")]);
    assert_eq!(client_address(&r, &[cidr("10.0.0.0/8")]), ip("192.0.2.1"));
    assert_eq!(
        hash_ip(ip("::ffff:1.2.3.4")),
        hash_ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
    );
}

#[test]
fn header_cookie_path_query_keys() {
    let r = req(
        "1.1.1.1",
        &[
            ("x-user", "alice"),
            ("x-user", "bob"),
            ("cookie", "a=1; sid=s3cr3t"),
            ("cookie", "sid=later"),
        ],
    );
    let k = |key: HashKey| key_hash(&key, &r, &[]);
    assert_eq!(
        k(HashKey::Header("x-user".into())),
        Some(hash_bytes(b"alice"))
    );
    assert_eq!(k(HashKey::Header("x-none".into())), None);
    assert_eq!(
        k(HashKey::Cookie("sid".into())),
        Some(hash_bytes(b"s3cr3t"))
    );
    assert_eq!(k(HashKey::Cookie("nope".into())), None);
    assert_eq!(k(HashKey::Path), Some(hash_bytes(b"/a/b")));
    assert_eq!(k(HashKey::Query("user".into())), Some(hash_bytes(b"alice")));
    assert_eq!(
        k(HashKey::Query("y".into())),
        None,
        "empty value is missing"
    );
    assert_eq!(k(HashKey::Query("z".into())), None);
    assert_eq!(k(HashKey::ClientAddress), Some(hash_ip(ip("1.1.1.1"))));
}
