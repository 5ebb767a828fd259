//! The gRPC health check (`kind = "grpc"`): the standard `grpc.health.v1.Health/Check`
//! call's request message, and the verdict on its answer. Healthy means the call
//! succeeded (`grpc-status` 0) and said SERVING; anything else fails with a reason
//! naming what came back.
//!
//! The two messages are tiny, so they are written and read here by hand (protobuf's
//! wire format: `HealthCheckRequest { string service = 1; }` and `HealthCheckResponse {
//! ServingStatus status = 1; }`), each in gRPC's length-prefixed framing.

use super::Probe;

/// The method's path, as the HTTP/2 `:path`.
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `HealthCheckResponse.status` SERVING.
const SERVING: u64 = 1;

/// The request body: one uncompressed gRPC message, `HealthCheckRequest { service }`
/// (an empty service asks about the server as a whole, and is left out as protobuf
/// leaves out defaults).
pub fn check_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0u8]; // not compressed
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The verdict on an answer: its HTTP status, its `grpc-status` and `grpc-message`
/// (from the trailers, or from the headers of a trailers-only answer) and its body.
pub fn evaluate_grpc(
    http_status: u16,
    grpc_status: Option<&str>,
    grpc_message: Option<&str>,
    body: &[u8],
) -> Probe {
    if http_status != 200 {
        return Probe::fail(format!("HTTP status {http_status} (gRPC answers 200)"));
    }
    match grpc_status.map(str::trim) {
        None => return Probe::fail("no grpc-status in the answer"),
        Some("0") => {}
        Some(code) => {
            let why = grpc_message.map_or(String::new(), |m| format!(": {m}"));
            return Probe::fail(format!("grpc-status {code}{why}"));
        }
    }
    match serving_status(body) {
        Ok(SERVING) => Probe::Pass,
        Ok(s) => Probe::fail(format!("gRPC health {}", status_name(s))),
        Err(why) => Probe::fail(format!("gRPC health answer: {why}")),
    }
}

fn status_name(s: u64) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => format!("status {n}"),
    }
}

/// `HealthCheckResponse.status` from the answer's body: its first gRPC message, whose
/// fields other than `status` are skipped (an absent `status` is 0, UNKNOWN).
fn serving_status(body: &[u8]) -> Result<u64, &'static str> {
    let [flag, a, b, c, d, rest @ ..] = body else {
        return Err("no message");
    };
    if *flag != 0 {
        return Err("compressed, though no compression was offered");
    }
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    let mut msg = rest.get(..len).ok_or("message cut short")?;
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(&mut msg)?,
            (_, 0) => {
                varint(&mut msg)?;
            }
            (_, 1) => msg = msg.get(8..).ok_or("message cut short")?,
            (_, 2) => {
                let n = usize::try_from(varint(&mut msg)?).map_err(|_| "bad length")?;
                msg = msg.get(n..).ok_or("message cut short")?;
            }
            (_, 5) => msg = msg.get(4..).ok_or("message cut short")?,
            _ => return Err("not a HealthCheckResponse"),
        }
    }
    Ok(status)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A protobuf varint from the front of `buf`, which it advances.
fn varint(buf: &mut &[u8]) -> Result<u64, &'static str> {
    let mut n = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(n);
        }
    }
    Err("bad varint")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u64) -> Vec<u8> {
        let mut msg = vec![0x08];
        put_varint(&mut msg, status);
        let mut out = vec![0];
        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        out.extend_from_slice(&msg);
        out
    }

    #[test]
    fn the_request_names_the_service_or_is_empty() {
        assert_eq!(check_request(""), [0, 0, 0, 0, 0]);
        assert_eq!(
            check_request("api.Users"),
            [&[0u8, 0, 0, 0, 11, 0x0a, 9][..], b"api.Users"].concat()
        );
        let long = "s".repeat(200);
        assert_eq!(
            &check_request(&long)[..8],
            &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]
        );
    }

    #[test]
    fn serving_passes_and_anything_else_fails_saying_what() {
        let ok = Some("0");
        assert!(evaluate_grpc(200, ok, None, &answer(1)).passed());
        let reason = |p: Probe| match p {
            Probe::Fail(r) => r,
            Probe::Pass => panic!("passed"),
        };
        assert_eq!(
            reason(evaluate_grpc(200, ok, None, &answer(2))),
            "gRPC health NOT_SERVING"
        );
        assert_eq!(
            reason(evaluate_grpc(200, ok, None, &answer(3))),
            "gRPC health SERVICE_UNKNOWN"
        );
        // An empty message: status left out, so UNKNOWN.
        assert_eq!(
            reason(evaluate_grpc(200, ok, None, &[0, 0, 0, 0, 0])),
            "gRPC health UNKNOWN"
        );
        assert_eq!(
            reason(evaluate_grpc(200, Some("12"), Some("unknown service"), &[])),
            "grpc-status 12: unknown service"
        );
        assert_eq!(
            reason(evaluate_grpc(503, None, None, &[])),
            "HTTP status 503 (gRPC answers 200)"
        );
        assert_eq!(
            reason(evaluate_grpc(200, None, None, &answer(1))),
            "no grpc-status in the answer"
        );
        assert!(reason(evaluate_grpc(200, ok, None, &answer(1)[..6])).contains("cut short"));
    }

    #[test]
    fn other_fields_are_skipped() {
        // field 2 varint, field 3 string, then status, then field 4 fixed32.
        let msg = [
            0x10, 0x05, 0x1a, 0x02, b'h', b'i', 0x08, 0x01, 0x25, 1, 2, 3, 4,
        ];
        let mut body = vec![0, 0, 0, 0, msg.len() as u8];
        body.extend_from_slice(&msg);
        assert!(evaluate_grpc(200, Some("0"), None, &body).passed());
    }
}
