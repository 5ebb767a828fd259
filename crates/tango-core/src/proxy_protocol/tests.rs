use super::*;
use proptest::prelude::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Complete(h, n)) => (h, n),
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let (h, n) = complete(b"PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\nGET / HTTP/1.1\r\n");
    assert_eq!(n, 45);
    assert_eq!(h.version, ProxyVersion::V1);
    assert_eq!(h.source, Some(sa("192.0.2.1:51234")));
    assert_eq!(h.destination, Some(sa("198.51.100.2:443")));
    let (h, _) = complete(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
    assert_eq!(h.source, Some(sa("[2001:db8::1]:1")));
    let (h, n) = complete(b"PROXY UNKNOWN\r\n");
    assert_eq!((h.source, n), (None, 15));
    let (h, _) = complete(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
    assert_eq!(h.source, None);
}

#[test]
fn v1_of_the_longest_form_fits() {
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(complete(tcp6.as_bytes()).1, 104);
    // The spec's worst case: UNKNOWN followed by the longest TCP6 fields.
    let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX);
    let (_, n) = complete(line.as_bytes());
    assert_eq!(n, V1_MAX);
    let longer = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
    assert_eq!(parse(longer.as_bytes()), Err(Error::V1TooLong));
    assert_eq!(parse(&longer.as_bytes()[..V1_MAX]), Err(Error::V1TooLong));
    // A bad byte is that, however much follows (found by fuzzing: the verdict must not
    // depend on where the input is cut).
    let bad = format!("PROXY UNKNOWN \u{1}{}", "x".repeat(120));
    for cut in [20, bad.len()] {
        assert_eq!(
            parse(&bad.as_bytes()[..cut]),
            Err(Error::V1Malformed("a byte that is not printable ASCII"))
        );
    }
}

#[test]
fn v1_mistakes() {
    for (bad, why) in [
        (
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"[..],
            "a byte that is not printable ASCII",
        ),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR without LF"),
        (
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            "an address that is not of the protocol's family",
        ),
        (
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            "an address that is not of the protocol's family",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n",
            "a port that is not a number from 0 to 65535",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            "a port that is not a number from 0 to 65535",
        ),
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            "not four fields after the protocol",
        ),
        (
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            "not four fields after the protocol",
        ),
        (
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            "the protocol is not TCP4, TCP6 or UNKNOWN",
        ),
    ] {
        assert_eq!(
            parse(bad),
            Err(Error::V1Malformed(why)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(Error::NotProxy));
    assert_eq!(parse(b"PROXX"), Err(Error::NotProxy));
    assert_eq!(parse(b"\x16\x03\x01"), Err(Error::NotProxy));
    assert_eq!(parse(b"PROX"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
}

/// A v2 header: command, family byte, and the block after the length.
fn v2_bytes(cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | cmd);
    out.push(fam);
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

#[test]
fn v2_inet_inet6_with_tlvs_skipped() {
    let mut block = vec![192, 0, 2, 1, 10, 0, 0, 1, 0xc8, 0x22, 0x01, 0xbb];
    block.extend_from_slice(&[0x04, 0x00, 0x03, b'a', b'b', b'c']); // a NOOP TLV
    let mut buf = v2_bytes(1, 0x11, &block);
    let len = buf.len();
    buf.extend_from_slice(b"\x16\x03\x01"); // the TLS handshake after it
    let (h, n) = complete(&buf);
    assert_eq!(n, len);
    assert_eq!(h.version, ProxyVersion::V2);
    assert_eq!(h.source, Some(sa("192.0.2.1:51234")));
    assert_eq!(h.destination, Some(sa("10.0.0.1:443")));
    let mut block6 = Vec::new();
    block6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    block6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    block6.extend_from_slice(&[0, 80, 0, 81]);
    let (h, _) = complete(&v2_bytes(1, 0x21, &block6));
    assert_eq!(h.source, Some(sa("[2001:db8::7]:80")));
    assert_eq!(h.destination, Some(sa("[::1]:81")));
}

#[test]
fn v2_local_unspec_and_unix_keep_the_peer() {
    // LOCAL: the proxy's own connection, whatever the block says.
    let (h, n) = complete(&v2_bytes(0, 0x11, &[1; 12]));
    assert_eq!((h.source, n), (None, 28));
    let (h, _) = complete(&v2_bytes(0, 0x00, &[]));
    assert_eq!(h.source, None);
    let (h, _) = complete(&v2_bytes(1, 0x00, &[]));
    assert_eq!(h.source, None);
    let (h, _) = complete(&v2_bytes(1, 0x31, &[0; 216]));
    assert_eq!(h.source, None);
}

#[test]
fn v2_mistakes() {
    let mut v1 = v2_bytes(1, 0x11, &[0; 12]);
    v1[12] = 0x11;
    assert_eq!(parse(&v1), Err(Error::V2Version(1)));
    assert_eq!(
        parse(&v2_bytes(2, 0x11, &[0; 12])),
        Err(Error::V2Command(2))
    );
    assert_eq!(
        parse(&v2_bytes(1, 0x41, &[0; 12])),
        Err(Error::V2Family(0x41))
    );
    assert_eq!(
        parse(&v2_bytes(1, 0x13, &[0; 12])),
        Err(Error::V2Family(0x13))
    );
    assert_eq!(
        parse(&v2_bytes(1, 0x12, &[0; 12])),
        Err(Error::V2Family(0x12))
    );
    assert_eq!(
        parse(&v2_bytes(1, 0x11, &[0; 8])),
        Err(Error::V2ShortAddress(8))
    );
    assert_eq!(
        parse(&v2_bytes(1, 0x21, &[0; 12])),
        Err(Error::V2ShortAddress(12))
    );
    let mut long = V2_SIGNATURE.to_vec();
    long.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(parse(&long), Err(Error::V2TooLong(65535)));
    assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(Error::NotProxy));
    assert_eq!(parse(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
}

#[test]
fn encode_writes_what_parse_reads() {
    for version in [ProxyVersion::V1, ProxyVersion::V2] {
        let b = encode(version, sa("192.0.2.1:5000"), sa("10.0.0.1:80"));
        let (h, n) = complete(&b);
        assert_eq!((h.version, n), (version, b.len()));
        assert_eq!(h.source, Some(sa("192.0.2.1:5000")));
    }
    assert_eq!(
        encode(ProxyVersion::V1, sa("192.0.2.1:5000"), sa("10.0.0.1:80")),
        b"PROXY TCP4 192.0.2.1 10.0.0.1 5000 80\r\n"
    );
    // Mixed families are written as IPv6.
    let b = encode(ProxyVersion::V1, sa("192.0.2.1:5000"), sa("[::1]:80"));
    assert_eq!(b, b"PROXY TCP6 ::ffff:192.0.2.1 ::1 5000 80\r\n");
    let (h, _) = complete(&encode(
        ProxyVersion::V2,
        sa("192.0.2.1:5000"),
        sa("[::1]:80"),
    ));
    assert_eq!(h.source, Some(sa("[::ffff:192.0.2.1]:5000")));
}

fn any_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn any_version() -> impl Strategy<Value = ProxyVersion> {
    prop_oneof![Just(ProxyVersion::V1), Just(ProxyVersion::V2)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// A written header reads back whole, whatever follows it; every strict prefix of
    /// it asks for more.
    #[test]
    fn round_trip_and_prefixes(v in any_version(), s in any_addr(), d in any_addr(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
        let header = encode(v, s, d);
        let mut buf = header.clone();
        buf.extend_from_slice(&tail);
        let (h, n) = complete(&buf);
        prop_assert_eq!(n, header.len());
        prop_assert_eq!(h.version, v);
        let same_family = s.is_ipv4() == d.is_ipv4();
        let src = h.source.unwrap();
        prop_assert_eq!(src.port(), s.port());
        if same_family {
            prop_assert_eq!(src, s);
            prop_assert_eq!(h.destination, Some(d));
        } else {
            prop_assert_eq!(src.ip(), IpAddr::V6(as_v6(s.ip())));
        }
        for cut in 0..header.len() {
            prop_assert_eq!(parse(&header[..cut]), Ok(Parsed::Incomplete));
        }
    }

    /// Any bytes: an answer, never a panic; a header never takes more than it was given
    /// nor more than MAX_HEADER, and more is asked for only below MAX_HEADER.
    #[test]
    fn any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
        match parse(&buf) {
            Ok(Parsed::Complete(_, n)) => prop_assert!(n <= buf.len() && n <= MAX_HEADER),
            Ok(Parsed::Incomplete) => prop_assert!(buf.len() < MAX_HEADER),
            Err(_) => {}
        }
    }

    /// Bytes after a valid signature: the same bounds.
    #[test]
    fn after_a_signature(v2 in any::<bool>(), rest in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut buf = if v2 { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        buf.extend_from_slice(&rest);
        match parse(&buf) {
            Ok(Parsed::Complete(_, n)) => prop_assert!(n <= buf.len()),
            Ok(Parsed::Incomplete) => prop_assert!(buf.len() < MAX_HEADER),
            Err(_) => {}
        }
    }
}
