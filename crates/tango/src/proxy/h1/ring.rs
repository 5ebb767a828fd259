//! Sends gathered per worker and handed to the kernel together, through one io_uring.
//!
//! Two of the four system calls a proxied request costs are small sends (the head to
//! the backend, the answer to the client), and on a host that isolates the kernel's
//! page tables every system call pays for entering and leaving the kernel, about as
//! much as the send's own work on loopback. So a small send is not made at once:
//! its bytes are copied into a slot of the worker's ring and its task waits; once the
//! tasks woken in the same turn of the worker's loop have run, the worker's flusher
//! task submits every queued send in one `io_uring_enter` and wakes each sender with
//! its result. The sender then carries on exactly as after a `send(2)`: a short count
//! or an error is handled by the caller's own loop (see `io::send_all`).
//!
//! Every send carries `MSG_DONTWAIT`, so the kernel completes it inside the submitting
//! call (it never waits for room in the socket: that is `-EAGAIN`, which the caller
//! answers with a direct send and tokio's readiness). The ring is optional: where the
//! kernel refuses one (an old kernel, a seccomp filter), or with
//! `TANGO_IO_URING=off`, sends are made directly, as they always could be.
//!
//! The one `unsafe` here is handing the kernel a pointer to a slot's bytes. The slot is
//! owned by the ring, is not touched or reused until the kernel's completion for it has
//! been read, and a ring dropped with completions outstanding leaks its slots rather
//! than free memory the kernel may still read.
#![allow(unsafe_code)]

use io_uring::{opcode, types, IoUring};
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Sends one turn of a worker's loop may queue; more than this are sent directly.
const SLOTS: usize = 256;

const MSG_DONTWAIT: i32 = 0x40;
const MSG_NOSIGNAL: i32 = 0x4000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    /// Its bytes wait for the next submit.
    Queued,
    /// Submitted; the kernel's completion not read yet.
    Submitted,
    /// Completed with this result (bytes sent, or `-errno`).
    Done(i32),
    /// Its sender went away while it was in the kernel: freed when it completes.
    Abandoned,
}

struct Slot {
    buf: Vec<u8>,
    state: State,
    waker: Option<Waker>,
}

struct Ring {
    uring: IoUring,
    /// Submissions made (each one system call), for the tests.
    #[cfg(test)]
    submits: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    queued: u32,
    flusher: Option<Waker>,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may still read a submitted slot's bytes: keep them allocated.
        if self.slots.iter().any(|s| s.state == State::Submitted) {
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}

thread_local! {
    static RING: RefCell<Option<Ring>> = const { RefCell::new(None) };
}

/// Whether `TANGO_IO_URING` turns the ring off.
fn wanted() -> bool {
    !matches!(
        std::env::var("TANGO_IO_URING").as_deref(),
        Ok("off" | "0" | "false")
    )
}

fn build() -> io::Result<IoUring> {
    // Completions are read by the worker itself, so the kernel need not interrupt it;
    // and a send the kernel cannot take must not hold back the ones queued after it.
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_submit_all()
        .build(SLOTS as u32)
        .or_else(|_| IoUring::new(SLOTS as u32))
}

/// Give this worker thread a ring, if the kernel allows one; false when it does not
/// (or it is turned off), and sends stay direct.
pub(crate) fn start() -> bool {
    if !wanted() {
        tracing::info!("io_uring turned off (TANGO_IO_URING): each send is its own system call");
        return false;
    }
    match build() {
        Ok(uring) => {
            let slots = (0..SLOTS)
                .map(|_| Slot {
                    buf: Vec::new(),
                    state: State::Free,
                    waker: None,
                })
                .collect();
            let free = (0..SLOTS as u32).rev().collect();
            RING.with_borrow_mut(|r| {
                *r = Some(Ring {
                    uring,
                    #[cfg(test)]
                    submits: 0,
                    slots,
                    free,
                    queued: 0,
                    flusher: None,
                });
            });
            true
        }
        Err(e) => {
            tracing::info!(error = %e, "io_uring unavailable: each send is its own system call");
            false
        }
    }
}

/// The worker's flusher: each time sends are queued, submit them all (after the tasks
/// woken before it have run and queued theirs) and wake each sender.
pub(crate) async fn flusher() {
    loop {
        std::future::poll_fn(|cx| {
            RING.with_borrow_mut(|r| match r {
                Some(r) if r.queued > 0 => Poll::Ready(()),
                Some(r) => {
                    r.flusher = Some(cx.waker().clone());
                    Poll::Pending
                }
                None => Poll::Pending,
            })
        })
        .await;
        let submitted = RING.with_borrow_mut(|r| r.as_mut().is_none_or(Ring::flush));
        if !submitted {
            // Try again on the loop's next turn.
            tokio::task::yield_now().await;
        }
    }
}

impl Ring {
    /// Submit what is queued and read every completion there is. False when the
    /// kernel took nothing (the sends stay queued, for the next try).
    fn flush(&mut self) -> bool {
        self.reap();
        if self.queued == 0 {
            return true;
        }
        // The queue is never more than the completion queue has room for, so the
        // kernel has no reason to refuse it but an interruption: try again then.
        for _ in 0..8 {
            match self.uring.submit() {
                Ok(_) => {
                    #[cfg(test)]
                    {
                        self.submits += 1;
                    }
                    for s in self.slots.iter_mut().filter(|s| s.state == State::Queued) {
                        s.state = State::Submitted;
                    }
                    self.queued = 0;
                    self.reap();
                    return true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "io_uring submit");
                    self.reap();
                }
            }
        }
        false
    }

    /// Read every completion there is and wake each one's sender.
    fn reap(&mut self) {
        for cqe in self.uring.completion() {
            let i = cqe.user_data() as usize;
            let Some(s) = self.slots.get_mut(i) else {
                continue;
            };
            match s.state {
                State::Submitted => {
                    s.state = State::Done(cqe.result());
                    wake(&mut s.waker);
                }
                State::Abandoned => {
                    s.state = State::Free;
                    self.free.push(i as u32);
                }
                _ => {}
            }
        }
    }

    /// Queue `bufs` on a free slot: its index, or none when every slot is taken.
    fn queue(&mut self, fd: RawFd, bufs: &[IoSlice<'_>]) -> Option<u32> {
        let i = self.free.pop()?;
        let s = &mut self.slots[i as usize];
        s.buf.clear();
        for b in bufs {
            s.buf.extend_from_slice(b);
        }
        let e = opcode::Send::new(types::Fd(fd), s.buf.as_ptr(), s.buf.len() as u32)
            .flags(MSG_DONTWAIT | MSG_NOSIGNAL)
            .build()
            .user_data(u64::from(i));
        // SAFETY: the slot's buffer is neither moved, grown nor freed while its state
        // is Queued or Submitted, which lasts until the kernel's completion for it is
        // read (or, for a ring dropped before then, forever: see `Drop`).
        if unsafe { self.uring.submission().push(&e) }.is_err() {
            self.free.push(i);
            return None;
        }
        s.state = State::Queued;
        self.queued += 1;
        if self.queued == 1 {
            wake(&mut self.flusher);
        }
        Some(i)
    }
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// One send of `bufs` (small: the caller's threshold for joining pieces) through the worker's ring: the
/// result a `send(2)` with `MSG_NOSIGNAL` would have given. `None` when there is no ring
/// on this thread or no free slot: the caller sends directly.
pub(crate) fn send(fd: RawFd, bufs: &[IoSlice<'_>]) -> Option<Sent> {
    let slot = RING.with_borrow_mut(|r| r.as_mut()?.queue(fd, bufs))?;
    Some(Sent { slot, taken: false })
}

/// A send in the ring (see [`send`]). Dropped before its result is read, it is
/// submitted at once, so that the socket may be closed after it.
pub(crate) struct Sent {
    slot: u32,
    /// Its result was read and the slot freed.
    taken: bool,
}

impl Future for Sent {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let i = self.slot;
        let done = RING.with_borrow_mut(|r| {
            let r = r.as_mut()?;
            let s = &mut r.slots[i as usize];
            match s.state {
                State::Done(n) => {
                    s.state = State::Free;
                    r.free.push(i);
                    Some(n)
                }
                _ => {
                    if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        s.waker = Some(cx.waker().clone());
                    }
                    None
                }
            }
        });
        match done {
            Some(n) => {
                self.taken = true;
                Poll::Ready(if n >= 0 {
                    Ok(n as usize)
                } else {
                    Err(io::Error::from_raw_os_error(-n))
                })
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        let _ = RING.try_with(|r| {
            let Ok(mut r) = r.try_borrow_mut() else {
                return;
            };
            let Some(r) = r.as_mut() else { return };
            let i = self.slot as usize;
            // Its socket may be closed right after this: send what is queued now, not
            // once the fd might name another socket.
            if r.slots[i].state == State::Queued {
                r.flush();
            }
            let s = &mut r.slots[i];
            s.waker = None;
            if let State::Done(_) = s.state {
                s.state = State::Free;
                r.free.push(self.slot);
            } else {
                s.state = State::Abandoned;
            }
        });
    }
}

#[cfg(test)]
mod tests;
