//! Chunked framing (RFC 9112 7.1) exactly as hyper's decoder reads it
//! (`proto/h1/decode.rs`, `ChunkedState`), one byte at a time, so the framer finds the
//! end of a chunked body where hyper does. Where hyper's grammar is stricter than the
//! RFC (CR required before LF, no bare LF in an extension) this is as strict; where it
//! is looser (whitespace after the size) this is as loose. Limits hyper enforces on top
//! (extension and trailer sizes) are left to hyper: it refuses, and closes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// The first hex digit of a chunk size.
    Start,
    /// More hex digits, so far this size.
    Size(u64),
    /// Whitespace after the size.
    SizeLws(u64),
    /// A chunk extension, until CR.
    Extension(u64),
    /// The LF ending a chunk-size line.
    SizeLf(u64),
    /// Chunk data bytes left.
    Data(u64),
    /// The CR, then the LF, after chunk data.
    DataCr,
    DataLf,
    /// The start of a trailer line, or the CR of the final empty line.
    EndCr,
    /// The final LF.
    EndLf,
    /// Inside a trailer line, until CR.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
}

pub(super) enum Step {
    Next(Chunk),
    /// The body's last byte.
    End,
    /// hyper's decoder refuses this byte.
    Invalid,
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

impl Chunk {
    /// The state after byte `b` (never called in `Data`, whose bytes are counted).
    pub(super) fn step(self, b: u8) -> Step {
        use Chunk::*;
        let digit = hex(b);
        let next = match (self, digit, b) {
            (Start, Some(d), _) => Size(d),
            (Size(n), Some(d), _) => match n.checked_mul(16).and_then(|n| n.checked_add(d)) {
                Some(n) => Size(n),
                None => return Step::Invalid,
            },
            (Size(n) | SizeLws(n), _, b' ' | b'\t') => SizeLws(n),
            (Size(n) | SizeLws(n) | Extension(n), _, b';') => Extension(n),
            (Size(n) | SizeLws(n) | Extension(n), _, b'\r') => SizeLf(n),
            (Extension(_), _, b'\n') => return Step::Invalid,
            (Extension(n), _, _) => Extension(n),
            (SizeLf(0), _, b'\n') => EndCr,
            (SizeLf(n), _, b'\n') => Data(n),
            (DataCr, _, b'\r') => DataLf,
            (DataLf, _, b'\n') => Start,
            (EndCr, _, b'\r') => EndLf,
            (Trailer, _, b'\r') => TrailerLf,
            (EndCr | Trailer, _, _) => Trailer,
            (TrailerLf, _, b'\n') => EndCr,
            (EndLf, _, b'\n') => return Step::End,
            _ => return Step::Invalid,
        };
        Step::Next(next)
    }
}
