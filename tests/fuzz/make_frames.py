#!/usr/bin/env python3
"""Seed corpus for fuzz_reference: a handful of frames that reach each branch
of docs/datapath.md under the fuzzer's policy (default policy, narrowed peer
sets). Each file is one input: frames as <big-endian u16 length><bytes>.

Usage: make_frames.py OUTDIR
"""
import ipaddress
import os
import struct
import sys

MAC = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")


def eth(ethertype, payload, vlans=()):
    if vlans:
        # Each tag's inner type is the next tag's TPID, the last one the real type.
        types = [t for t, _ in vlans[1:]] + [ethertype]
        tags = b"".join(struct.pack("!HH", vid, t) for (_, vid), t in zip(vlans, types))
        return MAC + struct.pack("!H", vlans[0][0]) + tags + payload
    return MAC + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, l4, frag_off=0, ident=0x1234, ihl=5, tot_len=None):
    opts = b"\x01" * ((ihl - 5) * 4) if ihl > 5 else b""
    total = tot_len if tot_len is not None else 20 + len(opts) + len(l4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, frag_off, 64, proto, 0,
                      ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    return hdr + opts + l4


def ipv6(src, dst, nh, payload, plen=None):
    length = plen if plen is not None else len(payload)
    return struct.pack("!IHBB16s16s", 0x60000000, length, nh, 64,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed) + payload


def tcp(sport, dport, flags, doff=5):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, doff << 4, flags, 1024, 0, 0) + \
        b"\x00" * ((doff - 5) * 4)


def udp(sport, dport, data=b"x"):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp(t, code=0):
    return struct.pack("!BBHI", t, code, 0, 0)


def ext(nh, hdrlen=0):  # Hop-by-Hop / Routing / Destination Options
    return struct.pack("!BB", nh, hdrlen) + b"\x00" * (6 + hdrlen * 8)


def frag6(nh, offset, more, ident=7):
    return struct.pack("!BBHI", nh, 0, (offset << 3) | more, ident)


SYN, ACK, FIN, RST, PSH, URG = 0x02, 0x10, 0x01, 0x04, 0x08, 0x20
ADMIN4, ADMIN6, OTHER4 = "192.0.2.10", "2001:db8:1::10", "203.0.113.9"
HOST4, HOST6 = "192.0.2.1", "2001:db8:ffff::1"

SEEDS = {
    "arp": [eth(0x0806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20)],
    "lldp-no-rule": [eth(0x88CC, b"\x00" * 30)],
    "short": [b"\x02\x00\x00"],
    "ssh-syn-admin": [eth(0x0800, ipv4(ADMIN4, HOST4, 6, tcp(40000, 22, SYN)))],
    "ssh-syn-other": [eth(0x0800, ipv4(OTHER4, HOST4, 6, tcp(40000, 22, SYN)))],
    "tcp-bad-flags": [eth(0x0800, ipv4(ADMIN4, HOST4, 6, tcp(1, 22, SYN | FIN)))],
    "tcp-doff-options": [eth(0x0800, ipv4(ADMIN4, HOST4, 6, tcp(443, 40000, ACK | PSH, doff=8)))],
    "https-v6": [eth(0x86DD, ipv6("fd00::5", HOST6, 6, tcp(50000, 443, SYN)))],
    "udp-snmp-vlan": [eth(0x0800, ipv4("10.1.2.3", HOST4, 17, udp(5000, 162)),
                          vlans=((0x8100, 10),))],
    "qinq-three-tags": [eth(0x0800, ipv4(ADMIN4, HOST4, 17, udp(1, 2)),
                            vlans=((0x88A8, 1), (0x8100, 2), (0x8100, 3)))],
    "icmp-echo": [eth(0x0800, ipv4(ADMIN4, HOST4, 1, icmp(8)))],
    "ipv4-options-padding": [eth(0x0800, ipv4(ADMIN4, HOST4, 17, udp(53, 33000), ihl=7)) + b"\x00" * 6],
    "ipv4-bad-totlen": [eth(0x0800, ipv4(ADMIN4, HOST4, 6, tcp(1, 22, SYN), tot_len=400))],
    "ipv4-fragments": [
        eth(0x0800, ipv4(ADMIN4, HOST4, 6, tcp(40000, 22, SYN), frag_off=0x2000)),
        eth(0x0800, ipv4(ADMIN4, HOST4, 6, b"\x00" * 16, frag_off=3)),
        eth(0x0800, ipv4(ADMIN4, HOST4, 6, b"\x00" * 16, frag_off=1)),
        eth(0x0800, ipv4(OTHER4, HOST4, 17, b"\x00" * 16, frag_off=5)),
    ],
    "ndp-v6": [eth(0x86DD, ipv6("fe80::1", "ff02::1", 58, icmp(135)))],
    "v6-ext-chain": [eth(0x86DD, ipv6(ADMIN6, HOST6, 0,
                                      ext(60) + ext(43, 1) + ext(6) +
                                      tcp(40000, 22, SYN)))],
    "v6-ext-limit": [eth(0x86DD, ipv6(ADMIN6, HOST6, 60, ext(60) * 6 + ext(17) + udp(1, 2)))],
    "v6-fragments": [
        eth(0x86DD, ipv6(ADMIN6, HOST6, 44, frag6(17, 0, 1) + udp(5000, 162))),
        eth(0x86DD, ipv6(ADMIN6, HOST6, 44, frag6(17, 10, 0) + b"\x00" * 8)),
        eth(0x86DD, ipv6(ADMIN6, HOST6, 44, frag6(6, 0, 0) + tcp(40000, 22, ACK))),
    ],
    "v6-jumbo": [eth(0x86DD, ipv6(ADMIN6, HOST6, 17, udp(1, 2), plen=0))],
}


def encode(frames):
    return b"".join(struct.pack("!H", len(f)) + f for f in frames)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, frames in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(encode(frames))


if __name__ == "__main__":
    main()
