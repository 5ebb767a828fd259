//! Buffers, and boxes for parsed heads, lent to connections while they have something
//! to do.
//!
//! A connection that waits for its next request, or has not sent one yet, holds no
//! buffer: it waits for its socket to become readable and only then borrows one from its
//! thread's pool, giving it back once it is idle again with nothing pipelined. So the
//! memory of buffers follows the requests in progress, not the connections open. Each
//! thread keeps its own free list (no lock, no atomic); a buffer that grew past the usual
//! size (a large request head) is not kept, and neither is one past the list's cap, so
//! a burst does not pin memory for good.

use std::cell::RefCell;
use tango_core::http1::codec::{RequestHead, ResponseHead};

/// The size of a pooled buffer: one read of a typical request or response (head and a
/// small body) fits, and a streamed body moves this much per read.
pub(crate) const BUF_SIZE: usize = 16 * 1024;

/// Free buffers a thread keeps at most.
const KEEP: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for [`BUF_SIZE`] bytes.
pub(crate) fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE))
}

/// Give a buffer back to this thread's pool.
pub(crate) fn give(mut buf: Vec<u8>) {
    if buf.capacity() != BUF_SIZE {
        return;
    }
    buf.clear();
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(buf);
        }
    });
}

/// A pooled buffer that goes back to the pool when dropped, so every path out of a
/// request (errors and cancellation included) returns it.
pub(crate) struct Buf(Vec<u8>);

impl Buf {
    pub(crate) fn new() -> Self {
        Buf(take())
    }
}

impl Default for Buf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for Buf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Parsed heads are boxed (a few hundred bytes each, moved through several futures,
/// which stay smaller holding a pointer), and the boxes are kept per thread, so a
/// request costs no allocation for them: with many requests in progress per thread,
/// the allocator's own per-thread cache would not hold that many of one size.
pub(crate) trait Recycled: Sized + 'static {
    #[allow(clippy::vec_box)]
    fn with_free<R>(f: impl FnOnce(&mut Vec<Box<Self>>) -> R) -> R;
}

thread_local! {
    // The boxes are what is kept: each is an allocation to lend again.
    #[allow(clippy::vec_box)]
    static REQUEST_HEADS: RefCell<Vec<Box<RequestHead>>> = const { RefCell::new(Vec::new()) };
    #[allow(clippy::vec_box)]
    static RESPONSE_HEADS: RefCell<Vec<Box<ResponseHead>>> = const { RefCell::new(Vec::new()) };
}

impl Recycled for RequestHead {
    fn with_free<R>(f: impl FnOnce(&mut Vec<Box<Self>>) -> R) -> R {
        REQUEST_HEADS.with(|p| f(&mut p.borrow_mut()))
    }
}

impl Recycled for ResponseHead {
    fn with_free<R>(f: impl FnOnce(&mut Vec<Box<Self>>) -> R) -> R {
        RESPONSE_HEADS.with(|p| f(&mut p.borrow_mut()))
    }
}

/// A box from this thread's free ones, or a new one, for a head to be parsed into in
/// place: what it holds is a former head's (or an empty one), which the parser
/// overwrites. Parsing into it, rather than moving a parsed head in, spares copying
/// the head whole.
pub(crate) fn fresh<T: Recycled + Default>() -> Box<T> {
    T::with_free(Vec::pop).unwrap_or_default()
}

/// A box back to this thread's free ones (a box not given back is simply freed).
pub(crate) fn unbox<T: Recycled>(b: Box<T>) {
    T::with_free(|free| {
        if free.len() < KEEP {
            free.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_grown_ones_are_not_kept() {
        let mut a = Buf::new();
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        drop(a);
        let b = Buf::new();
        assert!(b.is_empty(), "a reused buffer comes back empty");
        assert_eq!(b.as_ptr(), ptr, "the freed buffer is lent again");
        drop(b);
        let mut c = Buf::new();
        c.resize(BUF_SIZE * 2, 0);
        drop(c);
        let d = Buf::new();
        assert_eq!(d.capacity(), BUF_SIZE);
    }
}
