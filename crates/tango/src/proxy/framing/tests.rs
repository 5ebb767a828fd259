use super::*;

/// Feed `input` in pieces of `step` bytes; return what hyper would read.
fn run(input: &[u8], step: usize) -> (Vec<u8>, State) {
    let mut g = FramingGuard::new((), 64 * 1024, std::time::Duration::from_secs(10));
    for piece in input.chunks(step) {
        g.feed(piece);
    }
    (g.ready.clone(), g.state)
}

#[test]
fn well_framed_requests_pass_unchanged_at_any_split() {
    let input: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
    for step in [1, 2, 3, 7, 16, 1000] {
        let (out, state) = run(input, step);
        assert_eq!(out, input, "step {step}");
        assert_eq!(state, State::Head, "step {step}");
    }
}

#[test]
fn content_length_with_transfer_encoding_is_poisoned() {
    for input in [
        &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n"[..],
    ] {
        for step in [1, 5, 1000] {
            let (out, state) = run(input, step);
            // Whatever prefix of the head went ahead, the poison follows it and no body.
            assert!(
                out.ends_with(POISON),
                "step {step}: {}",
                String::from_utf8_lossy(&out)
            );
            assert!(input.starts_with(&out[..out.len() - POISON.len()]));
            assert!(out.len() - POISON.len() < input.iter().position(|&b| b == b'0').unwrap());
            assert_eq!(state, State::Poisoned);
        }
    }
}

#[test]
fn smuggled_second_request_is_caught_after_a_good_one() {
    let input = b"GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (out, state) = run(input, 4);
    assert!(out.starts_with(b"GET / HTTP/1.1\r\n\r\nPOST"));
    assert!(out.ends_with(POISON));
    assert_eq!(state, State::Poisoned);
}

#[test]
fn h2_preface_and_upgrades_switch_to_pass_through() {
    let (_, state) = run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 3);
    assert_eq!(state, State::Pass);
    let (out, state) = run(
        b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85abcd",
        1000,
    );
    assert_eq!(state, State::Pass);
    assert!(out.ends_with(b"\x81\x85abcd"));
}

#[test]
fn malformed_heads_go_to_hyper_as_they_are() {
    let input = b"GET / HTTP/1.1\r\nContent-Length : 0\r\n\r\n";
    let (out, state) = run(input, 1000);
    assert_eq!(out, input);
    assert_eq!(state, State::Pass);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            "[a-z]{0,300}".prop_map(|b| {
                format!("POST /u HTTP/1.1\r\nContent-Length: {}\r\n\r\n{b}", b.len()).into_bytes()
            }),
            proptest::collection::vec("[a-z]{1,40}", 0..4).prop_map(|chunks| {
                let mut s = String::from("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
                for c in chunks {
                    s.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
                }
                s.push_str("0\r\n\r\n");
                s.into_bytes()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Well-framed requests pass through unchanged, however the reads split them.
        #[test]
        fn well_framed_streams_pass_unchanged(reqs in proptest::collection::vec(request(), 1..6), step in 1usize..64) {
            let input: Vec<u8> = reqs.concat();
            let (out, state) = run(&input, step);
            prop_assert_eq!(out, input);
            prop_assert_eq!(state, State::Head);
        }

        /// An ambiguous request anywhere in a stream is caught: nothing of it past its
        /// head reaches hyper, and nothing after it at all.
        #[test]
        fn an_ambiguous_request_anywhere_is_caught(
            before in proptest::collection::vec(request(), 0..4),
            after in proptest::collection::vec(request(), 0..3),
            step in 1usize..64,
        ) {
            let bad: &[u8] = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
            let head_end = bad.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let prefix: Vec<u8> = before.concat();
            let input = [prefix.clone(), bad.to_vec(), after.concat()].concat();
            let (out, state) = run(&input, step);
            prop_assert_eq!(state, State::Poisoned);
            prop_assert!(out.ends_with(POISON));
            let passed = &out[..out.len() - POISON.len()];
            prop_assert!(input.starts_with(passed));
            prop_assert!(passed.len() >= prefix.len() && passed.len() < prefix.len() + head_end);
        }

        /// Whatever a client sends, the guard does not panic, and it never hands hyper
        /// bytes that were not sent, except the poison after an ambiguous head.
        #[test]
        fn any_bytes_are_safe(input in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..64) {
            let (out, state) = run(&input, step);
            if state == State::Poisoned {
                prop_assert!(out.ends_with(POISON));
            } else {
                prop_assert!(input.starts_with(&out));
            }
        }
    }
}
