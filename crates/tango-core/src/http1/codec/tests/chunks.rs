//! The chunked tracker and encoder, example by example.

use super::*;

/// Feed `input` in pieces of `step`; the total used, whether done, or the error's
/// offset in the whole input.
pub(super) fn track(input: &[u8], step: usize) -> Result<(usize, bool), usize> {
    let mut t = ChunkedTracker::new();
    let mut used = 0;
    for (k, piece) in input.chunks(step.max(1)).enumerate() {
        match t.feed(piece) {
            Ok(f) => {
                used += f.used;
                if f.done {
                    return Ok((used, true));
                }
            }
            Err(e) => return Err(k * step + e.at),
        }
    }
    Ok((used, false))
}

const BODY: &[u8] = b"5;name=value\r\nhello\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: yes\r\nOther:\r\n\r\n";

#[test]
fn a_body_ends_where_it_ends_at_any_split() {
    let input = [BODY, b"GET / HTTP/1.1\r\n"].concat();
    for step in 1..=input.len() {
        assert_eq!(track(&input, step), Ok((BODY.len(), true)), "step {step}");
    }
    assert_eq!(track(b"0\r\n\r\n", 100), Ok((5, true)));
    assert_eq!(
        track(&BODY[..BODY.len() - 1], 7),
        Ok((BODY.len() - 1, false))
    );
}

#[test]
fn bad_framing_stops_at_the_bad_byte() {
    let cases: [(&[u8], usize); 10] = [
        (b"5\nhello\r\n0\r\n\r\n", 1),     // bare LF after the size
        (b"5\r\nhelloX\r\n0\r\n\r\n", 8),  // no CRLF after the data
        (b"x\r\n", 0),                     // no size
        (b"5 5\r\n", 2),                   // digits after whitespace
        (b"5;a\nb\r\n", 3),                // LF inside an extension
        (b"11111111111111111\r\n", 16),    // over 64 bits
        (b"0\r\nX-T: 1\nY: 2\r\n\r\n", 9), // bare LF in a trailer
        (b"0\r\nNoColon\r\n\r\n", 10),     // a trailer that is no field
        (b"0\r\nBad Name: 1\r\n\r\n", 6),  // space in a trailer name
        (b"0\r\n folded\r\n\r\n", 3),      // obs-fold
    ];
    for (input, at) in cases {
        for step in [1, 3, 100] {
            assert_eq!(
                track(input, step),
                Err(at),
                "{:?} step {step}",
                String::from_utf8_lossy(input)
            );
        }
    }
    let mut t = ChunkedTracker::new();
    assert!(t.feed(b"x").is_err());
    assert_eq!(
        t.feed(b"0\r\n\r\n"),
        Err(ChunkError { at: 0 }),
        "a failed tracker stays failed"
    );
}

#[test]
fn hypers_limits_apply() {
    // Extension bytes (after each `;`): fewer than 16 KiB in all, over every chunk.
    let ext = |n: usize| format!("1;{}\r\nx\r\n", "e".repeat(n));
    let ok = [ext(8000), ext(8383), "0\r\n\r\n".to_string()].concat();
    assert!(matches!(track(ok.as_bytes(), 999), Ok((_, true))));
    let over = [ext(8000), ext(8384), "0\r\n\r\n".to_string()].concat();
    assert!(track(over.as_bytes(), 999).is_err());
    // Trailer section bytes (`T: ` + value + CRLF + the final CRLF): under 16 KiB.
    let trailer = |n: usize| format!("0\r\nT: {}\r\n\r\n", "v".repeat(n));
    assert!(matches!(
        track(trailer(16376).as_bytes(), 999),
        Ok((_, true))
    ));
    assert!(track(trailer(16377).as_bytes(), 999).is_err());
    // Trailer lines: 100.
    let lines = |n: usize| format!("0\r\n{}\r\n", "T: v\r\n".repeat(n));
    assert!(matches!(track(lines(100).as_bytes(), 999), Ok((_, true))));
    assert!(track(lines(101).as_bytes(), 999).is_err());
}

#[test]
fn after_the_end_nothing_is_used() {
    let mut t = ChunkedTracker::new();
    assert_eq!(
        t.feed(b"0\r\n\r\nrest"),
        Ok(Feed {
            used: 5,
            done: true
        })
    );
    assert!(t.is_done());
    assert_eq!(
        t.feed(b"more"),
        Ok(Feed {
            used: 0,
            done: true
        })
    );
}

#[test]
fn data_ranges_are_the_chunk_data() {
    for step in [1, 2, 5, 1000] {
        let mut t = ChunkedTracker::new();
        let mut data = Vec::new();
        for piece in BODY.chunks(step) {
            t.feed_data(piece, |r| data.extend_from_slice(&piece[r]))
                .unwrap();
        }
        assert!(t.is_done());
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
    }
}

/// Feed `input` through [`ChunkedTracker::feed_split`] in pieces of `step`: the data,
/// the trailer section, and whether the body ended.
fn split(input: &[u8], step: usize) -> (Vec<u8>, Vec<u8>, bool) {
    let mut t = ChunkedTracker::new();
    let (mut data, mut trailers) = (Vec::new(), Vec::new());
    for piece in input.chunks(step) {
        let on_data = |r: std::ops::Range<usize>| data.extend_from_slice(&piece[r]);
        let on_trailers = |r: std::ops::Range<usize>| trailers.extend_from_slice(&piece[r]);
        if t.feed_split(piece, on_data, on_trailers).unwrap().done {
            break;
        }
    }
    (data, trailers, t.is_done())
}

#[test]
fn the_trailer_section_is_handed_apart_at_any_split() {
    let input = [BODY, b"GET / HTTP/1.1\r\n"].concat();
    for step in 1..=input.len() {
        let (data, trailers, done) = split(&input, step);
        assert!(done, "step {step}");
        assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
        assert_eq!(trailers, b"X-Trailer: yes\r\nOther:\r\n\r\n", "step {step}");
    }
    // No trailer section: nothing handed, however the final CRLF comes.
    for step in 1..=10 {
        let (data, trailers, done) = split(b"3\r\nabc\r\n0\r\n\r\n", step);
        assert!(done && trailers.is_empty(), "step {step}");
        assert_eq!(data, b"abc");
    }
    // Not ended yet: what came of the section so far.
    let (_, trailers, done) = split(b"0\r\nX: 1\r\nY", 4);
    assert!(!done);
    assert_eq!(trailers, b"X: 1\r\nY");
}

#[test]
fn a_trailer_section_handed_apart_reads_as_its_fields() {
    let (_, section, _) = split(BODY, 3);
    let mut fields = Vec::new();
    let whole = trailer_fields(&section, |n, v| fields.push((n.to_vec(), v.to_vec())));
    assert_eq!(whole, Some(()));
    let want: [(&[u8], &[u8]); 2] = [(b"X-Trailer", b"yes"), (b"Other", b"")];
    assert_eq!(fields, want.map(|(n, v)| (n.to_vec(), v.to_vec())));
    // Not yet whole: nothing.
    assert_eq!(
        trailer_fields(&section[..5], |_, _| panic!("a field")),
        None
    );
}

#[test]
fn data_may_go_by_unfed() {
    let mut t = ChunkedTracker::new();
    assert_eq!(t.feed(b"a\r\n").unwrap().used, 3);
    assert_eq!(t.data_left(), 10);
    t.skip(4);
    assert_eq!(t.data_left(), 6);
    t.skip(6);
    assert_eq!(t.data_left(), 0);
    assert_eq!(
        t.feed(b"\r\n0\r\n\r\n"),
        Ok(Feed {
            used: 7,
            done: true
        })
    );
}

#[test]
fn encoded_chunks_are_read_back() {
    assert_eq!(ChunkPrefix::new(1).as_bytes(), b"1\r\n");
    assert_eq!(ChunkPrefix::new(0x1a2b).as_bytes(), b"1a2b\r\n");
    assert_eq!(
        ChunkPrefix::new(u64::MAX).as_bytes(),
        b"ffffffffffffffff\r\n"
    );
    let mut out = Vec::new();
    encode_chunk(&mut out, b"hello");
    encode_chunk(&mut out, b"");
    encode_chunk(&mut out, &[b'x'; 300]);
    out.extend_from_slice(LAST_CHUNK);
    assert!(out.starts_with(b"5\r\nhello\r\n12c\r\n"));
    let mut t = ChunkedTracker::new();
    let mut data = Vec::new();
    let f = t
        .feed_data(&out, |r| data.extend_from_slice(&out[r]))
        .unwrap();
    assert_eq!(
        f,
        Feed {
            used: out.len(),
            done: true
        }
    );
    assert_eq!(data.len(), 305);
}
