//! Cost of judging client bytes with `http1::Framer`, as the framing guard does for
//! every HTTP/1 request: a browser-like GET head in one read on a keep-alive
//! connection, a POST with a 1 KiB body, and a 16 KiB read of one-byte chunks (the
//! case that used to be quadratic).
//!
//! Run: `cargo bench -p tango-core --bench framing`

use divan::{black_box, Bencher};
use tango_core::http1::Framer;

fn main() {
    divan::main();
}

const GET: &[u8] = b"GET /products/42?ref=home HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: session=0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\n\r\n";

fn post_1k() -> Vec<u8> {
    let mut r = b"POST /api/orders HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n".to_vec();
    r.extend(std::iter::repeat_n(b'x', 1024));
    r
}

/// About 16 KiB (one read) of chunks carrying one byte each.
fn one_byte_chunks() -> Vec<u8> {
    b"1\r\nx\r\n".repeat(16 * 1024 / 6)
}

/// One request after another on one connection, as a keep-alive client sends them.
fn requests(bencher: Bencher<'_, '_>, input: &[u8]) {
    let mut f = Framer::new(64 * 1024);
    let mut out = Vec::with_capacity(input.len());
    bencher
        .counter(divan::counter::BytesCount::new(input.len()))
        .bench_local(|| {
            out.clear();
            f.feed(black_box(input), &mut out);
            black_box(out.len())
        });
}

#[divan::bench]
fn get_head_in_one_read(bencher: Bencher<'_, '_>) {
    requests(bencher, GET);
}

#[divan::bench]
fn post_with_1k_body(bencher: Bencher<'_, '_>) {
    requests(bencher, &post_1k());
}

#[divan::bench]
fn read_of_one_byte_chunks(bencher: Bencher<'_, '_>) {
    let body = one_byte_chunks();
    let mut f = Framer::new(64 * 1024);
    let mut out = Vec::new();
    f.feed(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        &mut out,
    );
    bencher
        .counter(divan::counter::BytesCount::new(body.len()))
        .bench_local(|| {
            out.clear();
            f.feed(black_box(&body), &mut out);
            black_box(out.len())
        });
}
