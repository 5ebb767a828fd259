//! Property tests: any split of well-framed traffic passes unchanged, an ambiguous
//! request is caught wherever it is, any bytes are safe, and work stays linear.

use super::*;
use proptest::prelude::*;

fn request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"\r\nGET / HTTP/1.0\r\n\r\n".to_vec()),
        "[a-z]{0,300}".prop_map(|b| {
            format!(
                "POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )
            .into_bytes()
        }),
        (
            proptest::collection::vec("[a-z]{1,40}", 0..4),
            "(;[a-z]{0,5})?",
            "([A-Z]-[a-z]: [a-z]{0,5}\r\n)?"
        )
            .prop_map(|(chunks, ext, trailer)| {
                let mut s = String::from(
                    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                for c in chunks {
                    s.push_str(&format!("{:x}{ext}\r\n{c}\r\n", c.len()));
                }
                s.push_str(&format!("0\r\n{trailer}\r\n"));
                s.into_bytes()
            }),
    ]
}

/// Pieces of HTTP-looking bytes, which reach the framer's less travelled states.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        request(),
        Just(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: x\r\n\r\n".to_vec()),
        Just(b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n".to_vec()),
        Just(b"Content-Length: 3\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Upgrade: x\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"PRI * HTTP/2.0\r\n\r\n".to_vec()),
        Just(b"SM\r\n\r\n".to_vec()),
        "[0-9a-f;\r\n ]{1,8}".prop_map(String::into_bytes),
    ]
}

/// Feed `input` in pieces whose sizes cycle through `steps`.
fn run_steps(input: &[u8], steps: &[usize]) -> (Vec<u8>, Framer) {
    let mut f = Framer::new(64 * 1024);
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < input.len() {
        let n = steps[k % steps.len()].max(1).min(input.len() - at);
        f.feed(&input[at..at + n], &mut out);
        at += n;
        k += 1;
    }
    (out, f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Well-framed requests pass through unchanged, however the reads split them.
    #[test]
    fn well_framed_streams_pass_unchanged(
        reqs in proptest::collection::vec(request(), 1..6),
        steps in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let input: Vec<u8> = reqs.concat();
        let (out, f) = run_steps(&input, &steps);
        prop_assert_eq!(out, input);
        prop_assert_eq!(f.state, State::Head);
    }

    /// An ambiguous request anywhere in a stream is caught: nothing of it reaches
    /// hyper but the poison, and nothing after it at all.
    #[test]
    fn an_ambiguous_request_anywhere_is_caught(
        before in proptest::collection::vec(request(), 0..4),
        after in proptest::collection::vec(request(), 0..3),
        steps in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let bad: &[u8] = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
        let prefix: Vec<u8> = before.concat();
        let input = [prefix.clone(), bad.to_vec(), after.concat()].concat();
        let (out, f) = run_steps(&input, &steps);
        prop_assert_eq!(f.closed(), Some(Closed::Refused(Refusal::LengthWithTransferEncoding)));
        prop_assert_eq!(out, [&prefix[..], POISON].concat());
    }

    /// Whatever a client sends: no panic; hyper is handed a prefix of what was sent,
    /// or that and the poison; and the work is linear in the input.
    #[test]
    fn any_bytes_are_safe(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        steps in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let (out, f) = run_steps(&input, &steps);
        if let Some(Closed::Refused(_)) = f.closed() {
            prop_assert!(out.ends_with(POISON));
            prop_assert!(input.starts_with(&out[..out.len() - POISON.len()]));
        } else {
            prop_assert!(input.starts_with(&out));
        }
        prop_assert!(f.work() <= 4 * input.len() as u64);
    }

    /// What hyper is handed does not depend on how the client's bytes were split into
    /// reads, nor on whether protocol-switch verdicts came early or late.
    #[test]
    fn reads_split_anywhere_give_the_same_output(
        parts in proptest::collection::vec(request_like(), 0..12),
        steps in proptest::collection::vec(1usize..64, 1..8),
        switched in any::<bool>(),
        max_head in 16usize..400,
    ) {
        let input = parts.concat();
        let whole = |input: &[u8]| {
            let mut f = Framer::new(max_head);
            let mut out = Vec::new();
            f.feed(input, &mut out);
            while f.awaiting_switch() {
                f.resolve_switch(switched, &mut out);
            }
            out
        };
        let mut f = Framer::new(max_head);
        let mut out = Vec::new();
        let (mut at, mut k) = (0, 0);
        while at < input.len() {
            let n = steps[k % steps.len()].min(input.len() - at);
            f.feed(&input[at..at + n], &mut out);
            while f.awaiting_switch() {
                f.resolve_switch(switched, &mut out);
            }
            at += n;
            k += 1;
        }
        prop_assert_eq!(out, whole(&input));
    }

    /// The same for bytes that look like HTTP, where the interesting states are.
    #[test]
    fn request_like_bytes_are_safe(
        parts in proptest::collection::vec(request_like(), 0..12),
        steps in proptest::collection::vec(1usize..64, 1..8),
        switched in any::<bool>(),
    ) {
        let input = parts.concat();
        let (mut out, mut f) = run_steps(&input, &steps);
        f.resolve_switch(switched, &mut out);
        if let Some(Closed::Refused(_)) = f.closed() {
            prop_assert!(out.ends_with(POISON));
            prop_assert!(input.starts_with(&out[..out.len() - POISON.len()]));
        } else {
            prop_assert!(input.starts_with(&out));
        }
        prop_assert!(f.work() <= 4 * input.len() as u64);
    }
}
