//! Fuzz the PROXY protocol parser (`tango_core::proxy_protocol::parse`) with any bytes.
//! Besides not panicking, it checks:
//! - a header never takes more bytes than it was given, nor more than `MAX_HEADER`, and
//!   more bytes are asked for only below `MAX_HEADER` (a reader's buffer is bounded);
//! - a prefix decides as the whole input does, or asks for more: a reader may stop at any
//!   split and consume everything an `Incomplete` answer saw;
//! - a header with an address reads back from what `encode` writes for it, in both
//!   versions (the writer backends get agrees with the parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tango_core::config::ProxyVersion;
use tango_core::proxy_protocol::{encode, parse, Parsed, MAX_HEADER};

fuzz_target!(|data: &[u8]| {
    let [a, input @ ..] = data else { return };
    let whole = parse(input);
    match whole {
        Ok(Parsed::Complete(_, n)) => assert!(n <= input.len() && n <= MAX_HEADER),
        Ok(Parsed::Incomplete) => assert!(input.len() < MAX_HEADER),
        Err(_) => {}
    }
    let cut = if input.is_empty() {
        0
    } else {
        usize::from(*a) * 257 % (input.len() + 1)
    };
    match parse(&input[..cut]) {
        Ok(Parsed::Incomplete) => {}
        part => assert_eq!(part, whole, "a prefix decides as the whole"),
    }
    if let Ok(Parsed::Complete(h, _)) = whole {
        if let (Some(src), Some(dst)) = (h.source, h.destination) {
            for v in [ProxyVersion::V1, ProxyVersion::V2] {
                let written = encode(v, src, dst);
                match parse(&written) {
                    Ok(Parsed::Complete(back, n)) => {
                        assert_eq!(n, written.len());
                        assert_eq!(back.source.map(|s| s.port()), Some(src.port()));
                    }
                    other => panic!("a written header does not parse back: {other:?}"),
                }
            }
        }
    }
});
