#!/usr/bin/env python3
"""bench/standin.py: plain TCP listeners that stand in for simulated nodes.

Used by the benchmark harness when the simulator is not what is being
measured: one process listens on PORT at each given loopback address, accepts
every connection, reads until the peer sends something or closes, then closes.
A TLS or gRPC client therefore fails fast ("not Talos"), and a connect scan
sees the port open. Only 127.0.0.0/8 addresses are accepted.

usage: standin.py PORT IP [IP...]    (prints "ready N" on stdout once listening)
"""

import asyncio
import ipaddress
import signal
import sys

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.read(1), timeout=5)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, ips: list[str]) -> None:
    servers = [await asyncio.start_server(handle, ip, port, backlog=1024) for ip in ips]
    print(f"ready {len(servers)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def parse(argv: list[str]) -> tuple[int, list[str]]:
    if len(argv) < 3:
        sys.exit(__doc__)
    port = int(argv[1])
    if not 1 <= port <= 65535:
        sys.exit(f"port {port} out of range")
    ips = []
    for a in argv[2:]:
        ip = ipaddress.ip_address(a)
        if ip not in LOOPBACK:
            sys.exit(f"{a} is not inside 127.0.0.0/8; stand-ins only listen on loopback")
        ips.append(str(ip))
    return port, ips


if __name__ == "__main__":
    asyncio.run(main(*parse(sys.argv)))
