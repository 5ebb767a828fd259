//! The PROXY protocol (HAProxy's, versions 1 and 2), sans I/O: `parse` reads the header
//! a proxy in front of tango sends at the start of a connection, and `encode` writes
//! the one tango sends to a backend.
//!
//! `parse` is handed the bytes received so far and says: a header and how many bytes it
//! took, or that more bytes are needed (`Incomplete`: every byte so far can still begin
//! a header, so a reader may consume them all), or why this is not a valid header. It
//! never asks for more than [`MAX_HEADER`] bytes: a v1 line is at most 107 bytes, and a
//! v2 header's length is bounded by [`V2_MAX_LEN`]. TLVs after a v2 address block are
//! skipped.

use crate::config::ProxyVersion;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 header, CRLF included.
pub const V1_MAX: usize = 107;
/// The v2 signature: the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v2 address block and TLVs accepted (the 16-byte fixed part aside).
pub const V2_MAX_LEN: usize = 4096;
/// The most bytes a header can take.
pub const MAX_HEADER: usize = 16 + V2_MAX_LEN;

const V1_PREFIX: &[u8] = b"PROXY ";

/// A PROXY header: where the connection came from, as the proxy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which version it was written in.
    pub version: ProxyVersion,
    /// The client's address; `None` when the header gives none (v2 `LOCAL`, a proxy's
    /// own check; v1 `UNKNOWN`; v2 `UNSPEC` or `UNIX`): the connection's own peer stands.
    pub source: Option<SocketAddr>,
    /// The address the client connected to, when given.
    pub destination: Option<SocketAddr>,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid beginning: read more.
    Incomplete,
    /// A whole header, and the bytes it took (what follows is the connection's data).
    Complete(Header, usize),
}

/// Why the bytes are not a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither signature: the peer did not send a PROXY header.
    #[error("no PROXY protocol header")]
    NotProxy,
    /// A v1 line with no CRLF within 107 bytes.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// A v1 line that does not read.
    #[error("malformed PROXY v1 line: {0}")]
    V1Malformed(&'static str),
    /// A v2 header of another version.
    #[error("PROXY v2 header with version {0}")]
    V2Version(u8),
    /// A v2 command other than LOCAL and PROXY.
    #[error("PROXY v2 header with unknown command {0}")]
    V2Command(u8),
    /// A v2 address family or transport that is not defined, or not TCP.
    #[error("PROXY v2 header with unsupported family/transport 0x{0:02x}")]
    V2Family(u8),
    /// A v2 header longer than tango accepts.
    #[error("PROXY v2 header of {0} bytes (at most {V2_MAX_LEN} are accepted)")]
    V2TooLong(usize),
    /// A v2 length too short for its address family.
    #[error("PROXY v2 address block of {0} bytes is too short for its family")]
    V2ShortAddress(usize),
}

/// Read a header from the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'P') => v1(buf),
        Some(b'\r') => v2(buf),
        Some(_) => Err(Error::NotProxy),
    }
}

/// A v1 line: `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN...\r\n`.
fn v1(buf: &[u8]) -> Result<Parsed, Error> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(Error::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        // A bad byte is reported as such wherever the input is cut, so before the length.
        check_v1_chars(window)?;
        if window.len() == V1_MAX {
            return Err(Error::V1TooLong);
        }
        return Ok(Parsed::Incomplete);
    };
    check_v1_chars(&window[..cr])?;
    match window.get(cr + 1) {
        None if cr + 1 < V1_MAX => Ok(Parsed::Incomplete),
        None => Err(Error::V1TooLong),
        Some(b'\n') => {
            let line =
                std::str::from_utf8(&window[..cr]).map_err(|_| Error::V1Malformed("not ASCII"))?;
            Ok(Parsed::Complete(v1_line(line)?, cr + 2))
        }
        Some(_) => Err(Error::V1Malformed("CR without LF")),
    }
}

/// Only printable ASCII before the CRLF.
fn check_v1_chars(line: &[u8]) -> Result<(), Error> {
    if line.iter().all(|b| (0x20..0x7f).contains(b)) {
        Ok(())
    } else {
        Err(Error::V1Malformed("a byte that is not printable ASCII"))
    }
}

fn v1_line(line: &str) -> Result<Header, Error> {
    let mut f = line.split(' ');
    f.next(); // "PROXY", checked already.
    let v4 = match f.next() {
        Some("TCP4") => true,
        Some("TCP6") => false,
        Some("UNKNOWN") => {
            return Ok(Header {
                version: ProxyVersion::V1,
                source: None,
                destination: None,
            })
        }
        _ => {
            return Err(Error::V1Malformed(
                "the protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    let fields: Vec<&str> = f.collect();
    let [src, dst, sport, dport] = fields.as_slice() else {
        return Err(Error::V1Malformed("not four fields after the protocol"));
    };
    let ip = |s: &str| -> Result<IpAddr, Error> {
        let ip = if v4 {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        } else {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        };
        ip.map_err(|_| Error::V1Malformed("an address that is not of the protocol's family"))
    };
    let port = |s: &str| -> Result<u16, Error> {
        let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| s.parse::<u16>().ok())
            .flatten()
            .ok_or(Error::V1Malformed(
                "a port that is not a number from 0 to 65535",
            ))
    };
    Ok(Header {
        version: ProxyVersion::V1,
        source: Some(SocketAddr::new(ip(src)?, port(sport)?)),
        destination: Some(SocketAddr::new(ip(dst)?, port(dport)?)),
    })
}

/// A v2 header: signature, version and command, family and transport, length, the
/// address block and TLVs.
fn v2(buf: &[u8]) -> Result<Parsed, Error> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(Error::NotProxy);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(Parsed::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(Error::V2Version(ver_cmd >> 4));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        c => return Err(Error::V2Command(c)),
    };
    let Some(&fam) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    if fam >> 4 > 3 || fam & 0x0f > 2 {
        return Err(Error::V2Family(fam));
    }
    let Some(len) = buf.get(14..16) else {
        return Ok(Parsed::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len > V2_MAX_LEN {
        return Err(Error::V2TooLong(len));
    }
    let Some(block) = buf.get(16..16 + len) else {
        return Ok(Parsed::Incomplete);
    };
    let (source, destination) = if local {
        (None, None)
    } else {
        v2_addresses(fam, block)?
    };
    let header = Header {
        version: ProxyVersion::V2,
        source,
        destination,
    };
    Ok(Parsed::Complete(header, 16 + len))
}

type Addresses = (Option<SocketAddr>, Option<SocketAddr>);

/// The source and destination of a PROXY command's address block.
fn v2_addresses(fam: u8, block: &[u8]) -> Result<Addresses, Error> {
    let need = match fam >> 4 {
        0 => return Ok((None, None)),
        1 => 12,
        2 => 36,
        _ => 216,
    };
    if block.len() < need {
        return Err(Error::V2ShortAddress(block.len()));
    }
    if fam >> 4 == 3 {
        return Ok((None, None));
    }
    // The listener is TCP: a datagram or unspecified transport is not this connection.
    if fam & 0x0f != 1 {
        return Err(Error::V2Family(fam));
    }
    let half = (need - 4) / 2;
    let ip = |b: &[u8]| -> IpAddr {
        match <[u8; 4]>::try_from(b) {
            Ok(v4) => IpAddr::from(v4),
            Err(_) => IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])),
        }
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let src = SocketAddr::new(ip(&block[..half]), port(2 * half));
    let dst = SocketAddr::new(ip(&block[half..2 * half]), port(2 * half + 2));
    Ok((Some(src), Some(dst)))
}

/// The header telling a backend that `source` connected to `destination`. Addresses of
/// different families are both written as IPv6 (IPv4-mapped).
pub fn encode(version: ProxyVersion, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (src, dst) = match (source.ip(), destination.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            (source.ip(), destination.ip())
        }
        (s, d) => (IpAddr::V6(as_v6(s)), IpAddr::V6(as_v6(d))),
    };
    match version {
        ProxyVersion::V1 => {
            let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {proto} {src} {dst} {} {}\r\n",
                source.port(),
                destination.port()
            )
            .into_bytes()
        }
        ProxyVersion::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY
            let (fam, addrs): (u8, Vec<u8>) = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => (0x11, [s.octets(), d.octets()].concat()),
                (s, d) => (0x21, [as_v6(s).octets(), as_v6(d).octets()].concat()),
            };
            out.push(fam); // INET or INET6, STREAM
            let len = addrs.len() as u16 + 4;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&addrs);
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests;
