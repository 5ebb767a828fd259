//! The body bytes of a response counted as they reach the kernel, exact to the byte
//! when a write is cut: by the client leaving, by its stall past `send_timeout`, or by
//! the drain's end dropping the connection in the middle of the write (the request's
//! log line then reads the count where it stands).

/// Body bytes sent of the response in progress. Each write to the client is described
/// before it starts ([`Sent::write`]): the bytes leading it that are not body (a head, a
/// chunk's size line) and the body bytes after them; the socket write adds to the
/// counter it is given as the kernel takes bytes. So [`Sent::total`] is exact at any
/// moment, a write cut short included, for a few additions per write.
#[derive(Default)]
pub(super) struct Sent {
    /// Body bytes of the writes before the one in progress.
    done: u64,
    /// Bytes of the write in progress the kernel has taken.
    wire: u64,
    /// Of the write in progress: the bytes leading it that are not body.
    lead: u64,
    /// Of the write in progress: the body bytes after `lead` (anything after them is
    /// not body either).
    body: u64,
}

impl Sent {
    /// The body bytes the kernel has taken.
    pub(super) fn total(&self) -> u64 {
        self.done + self.wire.saturating_sub(self.lead).min(self.body)
    }

    /// Begin a write of `lead` bytes that are not body, then `body` body bytes: the
    /// counter to give the socket write.
    pub(super) fn write(&mut self, lead: usize, body: usize) -> &mut u64 {
        self.done = self.total();
        self.wire = 0;
        self.lead = lead as u64;
        self.body = body as u64;
        &mut self.wire
    }

    /// Add body bytes counted apart: a tunnel's, or a chunked body's data once its
    /// write is through.
    pub(super) fn add(&mut self, n: u64) {
        self.done += n;
    }
}

#[cfg(test)]
mod tests {
    use super::Sent;

    #[test]
    fn a_cut_write_counts_the_body_bytes_that_went_and_no_framing() {
        let mut s = Sent::default();
        // A head of 120 bytes and 30 of body, cut at 0, in the head, and in the body.
        for (took, body) in [(0, 0), (120, 0), (121, 1), (150, 30)] {
            *s.write(120, 30) = took;
            assert_eq!(s.total(), body, "{took}");
            s = Sent::default();
        }
        // Whole writes add up; a chunk's size line and CRLF are not body.
        *s.write(100, 10) = 110;
        *s.write(4, 16) = 22;
        assert_eq!(s.total(), 26);
        *s.write(4, 16) = 3;
        assert_eq!(s.total(), 26, "cut in the size line");
        s.add(5);
        assert_eq!(s.total(), 31);
    }
}
