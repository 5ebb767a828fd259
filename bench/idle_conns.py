#!/usr/bin/env python3
"""Open N TCP connections to a proxy and hold them idle, for bench/idle-conns.sh.

  silent     connect and send nothing
  keepalive  send one HTTP/1.1 request on each connection, read its whole response,
             then leave the connection open (keep-alive, idle)

Prints `ready N` on stdout once every connection is open (and, for keepalive, every
response has been read in full), then holds the connections until stdin reaches EOF.
While holding, any connection the proxy closes or writes to is counted; on exit it
prints `closed K` (K connections the peer ended before we did) and closes the rest with
a reset, so no TIME_WAIT entries pile up between runs.
"""

import argparse
import selectors
import socket
import struct
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle-conns\r\n\r\n"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-n", type=int, default=3000, help="connections to open")
    p.add_argument("--mode", choices=("silent", "keepalive"), required=True)
    # Connects and requests in flight at once: enough to be quick, few enough that the
    # proxy's accept queue never overflows and it opens few upstream connections.
    p.add_argument("--window", type=int, default=64)
    return p.parse_args()


def fail(msg):
    print(f"idle_conns.py: {msg}", file=sys.stderr)
    sys.exit(1)


def open_all(args):
    """Non-blocking connects, at most `window` pending at a time."""
    sel = selectors.DefaultSelector()
    done, pending, started = [], 0, 0
    while len(done) < args.n:
        while pending < args.window and started < args.n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((args.host, args.port))
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
            started += 1
        for key, _ in sel.select(timeout=30):
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(f"connect failed after {len(done)} connections: errno {err}")
            done.append(s)
    sel.close()
    return done


def response_complete(buf):
    """True once `buf` holds one whole response (Content-Length or chunked)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = buf[:head_end].decode("latin-1").lower().split("\r\n")
    if not head[0].startswith("http/1.1 200"):
        fail(f"unexpected status line: {head[0]!r}")
    body = buf[head_end + 4 :]
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip() == "content-length":
            return len(body) >= int(value)
        if name.strip() == "transfer-encoding" and "chunked" in value:
            return body.endswith(b"0\r\n\r\n")
    fail("response without Content-Length or chunked framing (keep-alive impossible)")
    return False


def request_all(conns, window):
    """One request per connection, at most `window` in flight, each read to its end."""
    sel = selectors.DefaultSelector()
    todo, inflight, finished = list(conns), 0, 0
    bufs = {}
    while finished < len(conns):
        while inflight < window and todo:
            s = todo.pop()
            s.sendall(REQUEST)  # 70 bytes into an empty socket buffer: never blocks
            bufs[s] = b""
            sel.register(s, selectors.EVENT_READ)
            inflight += 1
        events = sel.select(timeout=30)
        if not events:
            fail(f"no response within 30 s ({finished} of {len(conns)} done)")
        for key, _ in events:
            s = key.fileobj
            chunk = s.recv(65536)
            if not chunk:
                fail(f"connection closed before its response ({finished} done)")
            bufs[s] += chunk
            if response_complete(bufs[s]):
                sel.unregister(s)
                del bufs[s]
                inflight -= 1
                finished += 1
    sel.close()


def hold(conns):
    """Wait for EOF on stdin; count connections the peer closes (or writes to) meanwhile."""
    sel = selectors.DefaultSelector()
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    sel.register(sys.stdin, selectors.EVENT_READ)
    closed = 0
    while True:
        for key, _ in sel.select():
            if key.fileobj is sys.stdin:
                if not sys.stdin.buffer.read1(4096):
                    sel.close()
                    return closed
                continue
            sel.unregister(key.fileobj)
            closed += 1


def main():
    args = parse_args()
    conns = open_all(args)
    if args.mode == "keepalive":
        request_all(conns, args.window)
    print(f"ready {len(conns)}", flush=True)
    closed = hold(conns)
    reset = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close with a reset
    for s in conns:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, reset)
        s.close()
    print(f"closed {closed}", flush=True)


if __name__ == "__main__":
    main()
