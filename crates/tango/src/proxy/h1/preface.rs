//! HTTP/2 by prior knowledge on a plain connection: the engine reads the first bytes,
//! and when they are the HTTP/2 preface the connection goes back to `conn`, to be
//! served by hyper's HTTP/2 server, those bytes first.

use super::io::{self, Limit};
use super::Conn;
use crate::proxy::bufpool::Buf;
use tokio::time::Instant;

/// `buf` starts like the preface: read until it is whole (true) or is not (false).
/// `Err` when the client goes away or takes longer than the header timeout.
pub(super) async fn read_preface(c: &mut Conn<'_>, buf: &mut Buf) -> Result<bool, ()> {
    let deadline = Instant::now() + c.l.header_timeout;
    loop {
        let n = buf.len().min(super::H2_PREFACE.len());
        if buf[..n] != super::H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == super::H2_PREFACE.len() {
            return Ok(true);
        }
        match io::read(&c.s, buf, Limit::Until(deadline), &mut c.timer).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(_) => {}
        }
    }
}
