#!/usr/bin/env python3
"""bench/peer_single_phase.py: the single-phase discovery design, as a baseline.

Some peers find Talos nodes by running the whole identification against every
address of the range: 50 addresses in flight, each given 2 s for TCP connect,
TLS handshake and one gRPC call (here machine.MachineService/Version, which is
the cheapest call a node answers). There is no separate cheap connect phase, so
a silent address costs the full 2 s of one of the 50 slots.

This script reproduces that design (not any peer's code) so that talstrap's
two-phase discover can be measured against it in the same run. It speaks just
enough HTTP/2 by hand to issue one unary gRPC call over TLS (ALPN h2, no
certificate verification, like a maintenance-mode client) and counts an
address as Talos-like when the server answers the call with any HTTP/2
response headers.

usage: peer_single_phase.py CIDR PORT [--inflight 50] [--timeout 2.0]
Prints one JSON object: scanned, tcp_open, answered_grpc, elapsed_s.
Only ranges inside 127.0.0.0/8 are accepted.
"""

import argparse
import asyncio
import ipaddress
import json
import ssl
import struct
import time

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types and flags from RFC 9113.
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name: str, value: str) -> bytes:
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def grpc_request(authority: str) -> bytes:
    headers = b"".join(
        hpack_literal(k, v)
        for k, v in [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", "/machine.MachineService/Version"),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )
    empty_message = b"\x00\x00\x00\x00\x00"  # not compressed, length 0
    return (
        PREFACE
        + frame(SETTINGS, 0, 0, b"")
        + frame(HEADERS, END_HEADERS, 1, headers)
        + frame(DATA, END_STREAM, 1, empty_message)
    )


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    head = await reader.readexactly(9)
    length = int.from_bytes(head[0:3], "big")
    ftype, flags = head[3], head[4]
    stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
    return ftype, flags, stream, await reader.readexactly(length)


async def identify(ip: str, port: int, tls: ssl.SSLContext, result: dict) -> None:
    reader, writer = await asyncio.open_connection(ip, port)
    result["tcp_open"].append(ip)
    try:
        await writer.start_tls(tls, server_hostname=None)
        writer.write(grpc_request(f"{ip}:{port}"))
        await writer.drain()
        while True:
            ftype, flags, stream, payload = await read_frame(reader)
            if ftype == SETTINGS and not flags & ACK:
                writer.write(frame(SETTINGS, ACK, 0, b""))
            elif ftype == HEADERS and stream == 1:
                result["answered_grpc"].append(ip)
                return
            elif ftype in (RST_STREAM, GOAWAY):
                return
    finally:
        writer.close()


async def run(net: ipaddress.IPv4Network, port: int, inflight: int, timeout: float) -> dict:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.set_alpn_protocols(["h2"])
    result: dict = {"scanned": 0, "tcp_open": [], "answered_grpc": [], "failed": 0}
    slots = asyncio.Semaphore(inflight)

    async def one(ip: str) -> None:
        async with slots:
            result["scanned"] += 1
            try:
                await asyncio.wait_for(identify(ip, port, tls, result), timeout)
            except (asyncio.TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
                result["failed"] += 1

    start = time.monotonic()
    await asyncio.gather(*(one(str(h)) for h in net.hosts()))
    result["elapsed_s"] = round(time.monotonic() - start, 3)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cidr")
    p.add_argument("port", type=int)
    p.add_argument("--inflight", type=int, default=50)
    p.add_argument("--timeout", type=float, default=2.0)
    a = p.parse_args()
    net = ipaddress.ip_network(a.cidr, strict=False)
    if not (isinstance(net, ipaddress.IPv4Network) and net.subnet_of(LOOPBACK)):
        raise SystemExit(f"{a.cidr} is not inside 127.0.0.0/8; this baseline only runs on loopback")
    out = asyncio.run(run(net, a.port, a.inflight, a.timeout))
    out["tcp_open"].sort(key=ipaddress.ip_address)
    out["answered_grpc"].sort(key=ipaddress.ip_address)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
