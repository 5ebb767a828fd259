//! A chunked body's trailer section on the engine, either way: held back as it comes
//! (the tracker hands its bytes on apart from the data, and bounds it at 16 KiB), and
//! passed on once whole with only the fields that may be trailers
//! (`proxy::trailers::fields_that_may_trail`, the rule hyper's side applies). A body whose last
//! chunk has no trailer section (nearly all) never gets here: the tracker reports no
//! section bytes, and the body goes on as it came.

use crate::proxy::trailers::fields_that_may_trail;
use tango_core::http1::codec::write_field;

/// The trailer section read so far, as it came (its field lines, then the final CRLF).
#[derive(Default)]
pub(super) struct Section {
    raw: Vec<u8>,
}

impl Section {
    /// Hold `part`, the section's next bytes (none for a body without a section); once
    /// the body is `done`, what goes on in the section's place: the fields that may be
    /// trailers, as they came, and the CRLF that ends the body (nothing for a body
    /// without a section, whose bytes went on as they came).
    pub(super) fn take(&mut self, part: &[u8], done: bool) -> Vec<u8> {
        self.raw.extend_from_slice(part);
        match done && !self.raw.is_empty() {
            true => filter(&self.raw),
            false => Vec::new(),
        }
    }
}

/// The fields of the whole trailer section `raw` that may be trailers, each written as
/// it came, then the CRLF that ends the body. A field a proxy must not pass as a
/// trailer (framing, routing, authentication, tango's forwarding fields...) would be
/// taken by a recipient that merges trailers into the head from a place no one checked.
fn filter(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // The tracker let through only whole sections of field lines; one that does not
    // read as such (none can) loses its fields rather than passing unchecked.
    let _ = fields_that_may_trail(raw, |_, name, value| write_field(&mut out, name, value));
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fields_that_may_trail_pass_as_they_came() {
        let raw = b"X-Checksum: abc\r\nContent-Length: 99\r\nHost: evil\r\n\
                    Connection: close\r\nx-forwarded-for: 6.6.6.6\r\nServer-Timing: a\r\n\r\n";
        assert_eq!(
            filter(raw),
            b"X-Checksum: abc\r\nServer-Timing: a\r\n\r\n".to_vec()
        );
        assert_eq!(filter(b"Transfer-Encoding: chunked\r\n\r\n"), b"\r\n");
        let mut s = Section::default();
        assert_eq!(s.take(b"x-a: 1\r\nTrail", false), b"");
        assert_eq!(s.take(b"er: x-a\r\n\r\n", true), b"x-a: 1\r\n\r\n");
        assert_eq!(Section::default().take(b"", true), b"");
    }
}
