//! Fuzz the HTTP/1 request framer (`tango_core::http1::Framer`) with any bytes, split
//! into reads of any size, with either protocol-switch verdict. Besides not panicking,
//! it checks what the guard relies on:
//! - hyper is handed a prefix of what the client sent, or that and the poison after a
//!   refusal: no byte is invented, reordered or repeated;
//! - the output does not depend on how the bytes were split into reads;
//! - the work is linear in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tango_core::http1::{Closed, Framer, POISON};

/// Feed `input` in reads of `step` bytes, resolving every wait for a verdict with
/// `switched`.
fn run(input: &[u8], step: usize, max_head: usize, switched: bool) -> (Vec<u8>, Framer) {
    let mut f = Framer::new(max_head);
    let mut out = Vec::new();
    for piece in input.chunks(step) {
        f.feed(piece, &mut out);
        while f.awaiting_switch() {
            f.resolve_switch(switched, &mut out);
        }
    }
    (out, f)
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the read size, the head limit and the verdict.
    let [a, b, input @ ..] = data else { return };
    let step = 1 + usize::from(a & 0x7f);
    let switched = a & 0x80 != 0;
    let max_head = 16 + 4 * usize::from(*b);
    let (out, f) = run(input, step, max_head, switched);
    let passed = match f.closed() {
        Some(Closed::Refused(_)) => {
            assert!(out.ends_with(POISON), "a refusal ends with the poison");
            &out[..out.len() - POISON.len()]
        }
        _ => &out[..],
    };
    assert!(input.starts_with(passed), "only what was sent, in order");
    assert!(f.work() <= 4 * input.len() as u64, "linear work");
    let (whole, _) = run(input, input.len().max(1), max_head, switched);
    assert_eq!(out, whole, "the same whatever the reads");
});
