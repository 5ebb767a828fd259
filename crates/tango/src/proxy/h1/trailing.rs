//! A chunked body's trailer section on the engine, either way: held back as it comes
//! (the tracker hands its bytes on apart from the data, and bounds it at 16 KiB), and
//! passed on once whole with only the fields that may be trailers
//! (`proxy::trailers::may_trail`, the rule hyper's side applies). A body whose last
//! chunk has no trailer section (nearly all) never gets here: the tracker reports no
//! section bytes, and the body goes on as it came.

use crate::proxy::trailers::may_trail;
use http::header::HeaderName;
use tango_core::http1::codec::{trailer_fields, write_field};

/// The trailer section read so far, as it came (its field lines, then the final CRLF).
#[derive(Default)]
pub(super) struct Section {
    raw: Vec<u8>,
}

impl Section {
    /// The next bytes of the section.
    pub(super) fn hold(&mut self, part: &[u8]) {
        self.raw.extend_from_slice(part);
    }

    /// What goes on in the section's place, once it is whole: the fields that may be
    /// trailers, as they came, and the CRLF that ends the body.
    pub(super) fn filtered(&self) -> Vec<u8> {
        filter(&self.raw)
    }
}

/// The fields of the whole trailer section `raw` that may be trailers, each written as
/// it came, then the CRLF that ends the body. A field a proxy must not pass as a
/// trailer (framing, routing, authentication, tango's forwarding fields...) would be
/// taken by a recipient that merges trailers into the head from a place no one checked.
pub(super) fn filter(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // The tracker let through only whole sections of field lines; one that does not
    // read as such (none can) loses its fields rather than passing unchecked.
    let _ = trailer_fields(raw, |name, value| {
        if HeaderName::from_bytes(name).is_ok_and(|n| may_trail(&n)) {
            write_field(&mut out, name, value);
        }
    });
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
        s.hold(b"x-a: 1\r\nTrail");
        s.hold(b"er: x-a\r\n\r\n");
        assert_eq!(s.filtered(), b"x-a: 1\r\n\r\n");
    }
}
