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
