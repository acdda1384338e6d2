#!/usr/bin/env python3
"""bench/perf_summary.py: group a flat `perf report` into where the CPU time went.

Reads `perf report --stdio --no-children --sort dso,sym` on stdin and prints a
markdown table: share of samples per category (TLS crypto, TLS protocol,
certificate parsing, HTTP/2 and gRPC, async runtime, allocator, memory copies,
YAML, kernel, the rest), then the ten hottest symbols. Categories are decided
by symbol name only; a symbol that fits none counts as "other".
"""

import re
import sys

LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.+?)\s*$")

# First match wins: order from most to least specific.
CATEGORIES = [
    ("TLS crypto (ring: key exchange, signatures, hashes, AEAD)",
     re.compile(r"ring|^ge_|^fe_|^fe4_|^x25519|sha256|sha512|p256|p384|^bn_|aes|chacha|gcm|^GFp|ecp_nistz|nistz256|^LIMBS_|^limbs_")),
    ("TLS protocol (rustls)", re.compile(r"rustls|tokio_rustls")),
    ("certificate parsing and checks", re.compile(r"webpki|x509|der_parser|asn1|pem|rcgen")),
    ("HTTP/2 and gRPC (h2, hyper, tonic, prost)", re.compile(r"\bh2::|hyper|tonic|prost|\bhttp::|tower")),
    ("async runtime (tokio)", re.compile(r"tokio|mio::|futures")),
    ("allocator (malloc/free)", re.compile(r"malloc|free|_int_|realloc|calloc|unlink_chunk|tcache|arena")),
    ("memory copies and compares", re.compile(r"mem(move|cpy|set|cmp)|bcmp|strlen")),
    ("YAML and config handling", re.compile(r"yaml|serde")),
]


def main() -> None:
    rows = []
    for line in sys.stdin:
        m = LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4)))
    if not rows:
        print("(perf report had no samples)")
        return
    totals: dict[str, float] = {}
    for pct, dso, kind, sym in rows:
        if kind == "k":
            cat = "kernel (syscalls, TCP, scheduling)"
        else:
            cat = next((name for name, rx in CATEGORIES if rx.search(sym)), "other")
        totals[cat] = totals.get(cat, 0.0) + pct
    print("| where | share of the samples |")
    print("|---|---|")
    for cat, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {cat} | {pct:.1f}% |")
    print()
    print("Hottest symbols: " + "; ".join(
        f"`{sym[:60]}` {pct:.1f}%" for pct, _, _, sym in sorted(rows, key=lambda r: -r[0])[:10]
    ) + ".")


if __name__ == "__main__":
    main()
