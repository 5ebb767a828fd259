use super::*;

/// Feed `input` in pieces of `step` bytes; return what hyper would read, and the framer.
fn run(input: &[u8], step: usize) -> (Vec<u8>, Framer) {
    let mut f = Framer::new(64 * 1024);
    let mut out = Vec::new();
    for piece in input.chunks(step) {
        f.feed(piece, &mut out);
    }
    (out, f)
}

const GOOD: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /d HTTP/1.0\r\n\r\n";

#[test]
fn well_framed_requests_pass_unchanged_at_any_split() {
    for step in [1, 2, 3, 7, 16, 1000] {
        let (out, f) = run(GOOD, step);
        assert_eq!(out, GOOD, "step {step}");
        assert_eq!(f.state, State::Head, "step {step}");
        assert!(!f.head_in_progress());
    }
}

#[test]
fn content_length_with_transfer_encoding_is_poisoned() {
    for input in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n"[..],
    ] {
        for step in [1, 5, 1000] {
            let (out, f) = run(input, step);
            // hyper sees none of the head: only the poison.
            assert_eq!(out, POISON, "step {step}");
            assert_eq!(
                f.closed(),
                Some(Closed::Refused(Refusal::LengthWithTransferEncoding))
            );
        }
    }
}

#[test]
fn host_is_required_once_on_http11_only() {
    let (out, f) = run(b"GET / HTTP/1.1\r\n\r\n", 1000);
    assert_eq!(out, POISON);
    assert_eq!(f.closed(), Some(Closed::Refused(Refusal::MissingHost)));
    let (out, f) = run(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 1000);
    assert_eq!(out, POISON);
    assert_eq!(f.closed(), Some(Closed::Refused(Refusal::MultipleHost)));
    let (out, f) = run(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 1000);
    assert_eq!(out, POISON);
    assert_eq!(f.closed(), Some(Closed::Refused(Refusal::MultipleHost)));
    let http10 = b"GET / HTTP/1.0\r\n\r\n";
    let (out, f) = run(http10, 1000);
    assert_eq!(out, http10);
    assert_eq!(f.closed(), None);
}

#[test]
fn framing_hyper_refuses_is_poisoned_too() {
    for (input, why) in [
        (&b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..], Refusal::BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", Refusal::BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,5\r\n\r\n", Refusal::BadContentLength),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Refusal::BadTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", Refusal::BadTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \xa0chunked\r\n\r\n", Refusal::BadTransferEncoding),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::BadTransferEncoding),
    ] {
        let (out, f) = run(input, 1000);
        assert_eq!(out, POISON, "{}", String::from_utf8_lossy(input));
        assert_eq!(f.closed(), Some(Closed::Refused(why)));
    }
    // Equal lengths are one length (hyper agrees); a chain ending in chunked is chunked.
    let ok = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokPOST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n";
    let (out, f) = run(ok, 3);
    assert_eq!(out, ok);
    assert_eq!(f.state, State::Head);
}

#[test]
fn smuggled_second_request_is_caught_after_a_good_one() {
    let good = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let input = [&good[..], b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"].concat();
    for step in [1, 4, 1000] {
        let (out, f) = run(&input, step);
        assert_eq!(out, [&good[..], POISON].concat(), "step {step}");
        assert!(matches!(f.closed(), Some(Closed::Refused(_))));
    }
}

#[test]
fn h2_preface_switches_to_pass_through() {
    let input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
    for step in [1, 3, 1000] {
        let (out, f) = run(input, step);
        assert_eq!(out, input);
        assert!(f.passing_through());
    }
    // The preface only counts at the start of a connection.
    let late = [GOOD, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"].concat();
    let (out, f) = run(&late, 1000);
    assert_eq!(out, [GOOD, b"PRI * HTTP/2.0\r\n\r\n"].concat());
    assert_eq!(f.closed(), Some(Closed::Malformed));
    // Most of the preface, then something else: its first line and empty line are a
    // head hyper refuses, however the reads split it.
    let almost = b"PRI * HTTP/2.0\r\n\r\nSM\r\xbe\r\n";
    for step in [1, 20, 1000] {
        let (out, f) = run(almost, step);
        assert_eq!(out, b"PRI * HTTP/2.0\r\n\r\n", "step {step}");
        assert_eq!(f.closed(), Some(Closed::Malformed));
    }
    // A method that starts like the preface is a request like any other.
    let pr = b"PROPFIND / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (out, f) = run(pr, 1);
    assert_eq!(out, pr);
    assert_eq!(f.state, State::Head);
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
const SMUGGLED: &[u8] =
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

#[test]
fn after_an_upgrade_request_bytes_wait_for_the_verdict() {
    let frames = b"\x81\x85abcd\x01\x02";
    let input = [UPGRADE, frames].concat();
    let (mut out, mut f) = run(&input, 7);
    assert_eq!(out, UPGRADE, "only the request passes before the answer");
    assert!(f.awaiting_switch());
    f.resolve_switch(true, &mut out);
    assert!(f.passing_through());
    assert_eq!(out, input);
    // Once switched, nothing is judged: a tunnel carries anything.
    f.feed(SMUGGLED, &mut out);
    assert_eq!(out, [&input[..], SMUGGLED].concat());
}

#[test]
fn an_upgrade_that_was_not_answered_with_101_keeps_the_guard() {
    // The bypass this closes: an Upgrade header used to switch the guard off for good.
    for step in [1, 9, 1000] {
        let input = [UPGRADE, SMUGGLED].concat();
        let (mut out, mut f) = run(&input, step);
        assert!(f.awaiting_switch());
        f.resolve_switch(false, &mut out);
        assert_eq!(out, [UPGRADE, POISON].concat(), "step {step}");
        assert_eq!(
            f.closed(),
            Some(Closed::Refused(Refusal::LengthWithTransferEncoding))
        );
    }
    // Likewise CONNECT, whose body is followed first.
    let connect = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 2\r\n\r\nhi";
    let input = [&connect[..], SMUGGLED].concat();
    let (mut out, mut f) = run(&input, 5);
    assert_eq!(out, connect);
    f.resolve_switch(false, &mut out);
    assert_eq!(out, [&connect[..], POISON].concat());
}

#[test]
fn a_second_upgrade_after_a_refused_one_waits_again() {
    let input = [UPGRADE, UPGRADE, b"tunnel"].concat();
    let (mut out, mut f) = run(&input, 1000);
    f.resolve_switch(false, &mut out);
    assert!(f.awaiting_switch());
    assert_eq!(out, [UPGRADE, UPGRADE].concat());
    f.resolve_switch(true, &mut out);
    assert_eq!(out, input);
}

#[test]
fn what_httparse_refuses_goes_to_hyper_as_it_is_and_nothing_after() {
    let bad = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n";
    let input = [&bad[..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    let (out, f) = run(&input, 1000);
    assert_eq!(out, bad);
    assert_eq!(f.closed(), Some(Closed::Malformed));
}

/// Non-HTTP bytes where a request should be: a head is refused at the first byte its
/// method cannot have, however the reads split it, without waiting for its end.
#[test]
fn a_bad_method_byte_ends_the_head_at_once() {
    let frame: &[u8] = b"\x81\x84abcdping";
    let cases: [(&[u8], &[u8]); 5] = [
        (frame, b"\x81"),
        (b"hello\n", b"hello\n"),
        (b"GE\x00 / HTTP/1.1\r\n", b"GE\x00"),
        (b" GET / HTTP/1.1\r\n", b" "),
        (b"\r\nPR\x16\x03", b"\r\nPR\x16"),
    ];
    for (input, want) in cases {
        for step in [1, 2, 1000] {
            let (out, f) = run(input, step);
            assert_eq!(out, want, "{input:?} step {step}");
            assert_eq!(f.closed(), Some(Closed::Malformed), "{input:?} step {step}");
        }
    }
    // Behind an upgrade the backend declined, and behind a complete request.
    let (mut out, mut f) = run(&[UPGRADE, frame].concat(), 1000);
    f.resolve_switch(false, &mut out);
    assert_eq!(out, [UPGRADE, b"\x81"].concat());
    assert_eq!(f.closed(), Some(Closed::Malformed));
    let (out, f) = run(&[GOOD, frame].concat(), 7);
    assert_eq!(out, [GOOD, b"\x81"].concat());
    assert_eq!(f.closed(), Some(Closed::Malformed));
    // A method that is whole hands a later fault to the head's end, as before.
    let (out, f) = run(b"GET /\x00", 1);
    assert_eq!(out, b"");
    assert!(f.head_in_progress());
}

/// A method past the size limit is a head too large, wherever its bad byte is.
#[test]
fn a_bad_method_byte_past_the_limit_is_a_head_too_large() {
    let input = [&[b'A'; 20][..], b"\x00"].concat();
    for step in [1, 1000] {
        let mut f = Framer::new(16);
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            f.feed(piece, &mut out);
        }
        assert_eq!(out, &input[..16], "step {step}");
        assert_eq!(f.closed(), Some(Closed::HeadTooLarge));
    }
}

#[test]
fn a_head_too_large_goes_to_hyper_without_its_end() {
    let mut f = Framer::new(100);
    let mut out = Vec::new();
    let big = [&b"GET / HTTP/1.1\r\nHost: x\r\nX: "[..], &[b'a'; 200]].concat();
    f.feed(&big, &mut out);
    f.feed(b"\r\n\r\n", &mut out);
    assert_eq!(out, &big[..100]);
    assert_eq!(f.closed(), Some(Closed::HeadTooLarge));
    // The same however the head is split, even when its end comes in the same read.
    for step in [1, 7, 1000] {
        let mut f = Framer::new(100);
        let mut out = Vec::new();
        for piece in [&big[..], b"\r\n\r\n"].concat().chunks(step) {
            f.feed(piece, &mut out);
        }
        assert_eq!(out, &big[..100], "step {step}");
    }
    // A head of exactly the limit is judged as any other.
    let exact = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (out, f) = {
        let mut f = Framer::new(exact.len());
        let mut out = Vec::new();
        f.feed(exact, &mut out);
        (out, f)
    };
    assert_eq!(out, exact);
    assert_eq!(f.state, State::Head);
}

#[test]
fn a_padded_chunk_size_line_does_not_end_the_guard() {
    // A chunk-size line longer than any buffer used to switch the guard off.
    let mut body = String::from("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    body.push_str(&"0".repeat(10_000));
    body.push_str("3\r\nabc\r\n0\r\n\r\n");
    let input = [body.as_bytes(), SMUGGLED].concat();
    let (out, f) = run(&input, 4096);
    assert_eq!(out, [body.as_bytes(), POISON].concat());
    assert!(matches!(f.closed(), Some(Closed::Refused(_))));
}

#[test]
fn chunked_framing_is_hyper_s() {
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Accepted: whitespace after the size, extensions, trailers, upper-case hex.
    for body in [
        &b"A \t;a=b;c\r\n0123456789\r\n0\r\n\r\n"[..],
        b"1\r\nx\r\n0\r\nA: b\r\nC: d\r\n\r\n",
        b"0\r\nA: b\nc\r\n\r\n",
    ] {
        let input = [&head[..], body, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
        for step in [1, 1000] {
            let (out, f) = run(&input, step);
            assert_eq!(out, input, "{}", String::from_utf8_lossy(body));
            assert_eq!(f.state, State::Head);
        }
    }
    // Refused by hyper's decoder: the body stops before the offending byte.
    for (body, passed) in [
        (&b"5\nhello\r\n"[..], 1),
        (b"5;a\nhello", 3),
        (b"5\r\nhelloXY", 8),
        (b"x\r\n", 0),
        (b"1 2\r\n", 2),
        (b"0\r\nA: b\rX", 8),
        (b"11111111111111111\r\n", 16),
    ] {
        let input = [&head[..], body].concat();
        let (out, f) = run(&input, 1000);
        assert_eq!(
            out,
            &input[..head.len() + passed],
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(f.closed(), Some(Closed::BadChunk));
    }
}

#[test]
fn bodies_read_directly_keep_the_framing() {
    let mut f = Framer::new(1024);
    let mut out = Vec::new();
    f.feed(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
        &mut out,
    );
    assert_eq!(f.direct_len(), Some(8));
    f.advance_direct(8);
    assert_eq!(f.state, State::Head);
    f.feed(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n",
        &mut out,
    );
    assert_eq!(f.direct_len(), Some(16));
    f.advance_direct(16);
    f.feed(b"\r\n0\r\n\r\n", &mut out);
    assert_eq!(f.state, State::Head);
}

/// The regression this guards against: one-byte chunks cost ~370x more per byte than
/// 1 KiB chunks, the remainder of every read being copied again for each chunk.
#[test]
fn work_is_linear_in_the_input_for_tiny_chunks() {
    for chunks in [1_000usize, 10_000, 200_000] {
        let mut input =
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..chunks {
            input.extend_from_slice(b"1\r\nx\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        for step in [1, 16 * 1024] {
            let (out, f) = run(&input, step);
            assert_eq!(out.len(), input.len());
            assert!(
                f.work() <= 2 * input.len() as u64,
                "{chunks} chunks, reads of {step}: work {} for {} bytes",
                f.work(),
                input.len()
            );
        }
    }
}

#[test]
fn work_is_linear_for_a_head_sent_byte_by_byte() {
    let head = [
        &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
        &b"X-Long: 0123456789abcdef\r\n".repeat(2000),
        b"\r\n",
    ]
    .concat();
    let mut f = Framer::new(1 << 20);
    let mut out = Vec::new();
    for b in &head {
        f.feed(std::slice::from_ref(b), &mut out);
    }
    assert_eq!(out, head);
    // Each byte walked once, the head parsed once whole (and its first byte once alone).
    assert!(f.work() <= 2 * head.len() as u64 + 1, "work {}", f.work());
}

#[test]
fn who_switches_protocols() {
    assert!(may_switch_protocols(true, false));
    assert!(may_switch_protocols(false, true));
    assert!(!may_switch_protocols(false, false));
    assert!(switches_protocols(false, 101));
    assert!(switches_protocols(true, 200));
    assert!(!switches_protocols(false, 200));
    assert!(!switches_protocols(true, 407));
}

mod properties;

#[test]
fn a_head_may_end_is_seen_wherever_reads_split_its_empty_line() {
    use super::head_may_end;
    let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for split in 0..=head.len() {
        // The bytes before `split` were looked at; the rest came later.
        assert_eq!(
            head_may_end(head, split),
            split < head.len(),
            "split at {split}"
        );
    }
    assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
    assert!(head_may_end(b"GET / HTTP/1.0\n\n", 15));
    // Bytes before `from` are not looked at again, beyond the two a split empty line
    // needs.
    assert!(!head_may_end(b"\n\nGET / HTTP/1.1\r\nHost: x\r\n", 5));
}
