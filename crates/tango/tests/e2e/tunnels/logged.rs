//! A tunnel's access log line, on every path: written when the tunnel ends, with the
//! bytes it carried each way (`bytes_in` from the client, `bytes_out` to it) and its
//! whole life in `total_ms`, as nginx logs a WebSocket. A line written at the `101`
//! would say a tunnel that carried a gigabyte over an hour carried nothing in a
//! millisecond.

use super::peers::{every_tunnel, expect, ping, Front, BOUND};
use crate::operator::wait_lines;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_tunnel_s_line_counts_its_bytes_and_its_whole_life_on_every_path() {
    let b = super::peers::backend().await;
    let (f, [plain_log, tls_log]) = Front::start_logged(b.addr);
    let (mut plain_lines, mut tls_lines) = (0, 0);
    let payload = "x".repeat(1000);
    let held = Duration::from_millis(300);
    for (path, opener) in every_tunnel() {
        // The backend's `hello\n`, then `ping` echoed as `>ping`.
        let mut io = f.open(path, opener).await;
        ping(&mut io, &payload).await;
        // The tunnel's life is what the line must cover.
        tokio::time::sleep(held).await;
        io.shutdown().await.unwrap();
        let bye = format!("eof after {}\n", 4 + payload.len());
        expect(&mut io, bye.as_bytes()).await;
        let mut rest = Vec::new();
        let r = tokio::time::timeout(BOUND, io.read_to_end(&mut rest)).await;
        assert!(matches!(r, Ok(Ok(0))), "{path:?} {opener:?}: {r:?}");
        let (log, seen) = if path.tls() {
            (&tls_log, &mut tls_lines)
        } else {
            (&plain_log, &mut plain_lines)
        };
        *seen += 1;
        let lines = wait_lines(log, *seen);
        let v: serde_json::Value = serde_json::from_str(&lines[*seen - 1]).unwrap();
        let what = format!("{path:?} {opener:?}: {v}");
        let want_status = if opener == super::peers::Opener::Upgrade {
            101
        } else {
            200
        };
        assert_eq!(v["status"], want_status, "{what}");
        assert_eq!(v["bytes_in"], 4 + payload.len(), "{what}");
        let out = "hello\n".len() + ">ping".len() + 1 + payload.len() + bye.len();
        assert_eq!(v["bytes_out"], out, "{what}");
        let total = v["total_ms"].as_f64().unwrap();
        assert!(total >= held.as_millis() as f64, "{what}");
    }
}
