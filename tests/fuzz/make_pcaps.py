#!/usr/bin/env python3
"""Seed corpus for fuzz_replay: the frames of make_frames.py's seeds as classic
pcap files, each seed in one of both byte orders and both timestamp precisions.

Usage: make_pcaps.py FRAMES_DIR OUTDIR
"""
import os
import struct
import sys


def frames_of(blob):
    out, at = [], 0
    while at + 2 <= len(blob):
        n = struct.unpack("!H", blob[at:at + 2])[0]
        out.append(blob[at + 2:at + 2 + n])
        at += 2 + n
    return out


def pcap(frames, nano, big):
    e = ">" if big else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for i, f in enumerate(frames):
        frac = (i % 4) * 250_000 * (1000 if nano else 1)
        out.append(struct.pack(e + "IIII", 1_700_000_000 + i, frac, len(f), len(f)) + f)
    return b"".join(out)


def main():
    src, dst = sys.argv[1:3]
    os.makedirs(dst, exist_ok=True)
    for k, name in enumerate(sorted(os.listdir(src))):
        frames = frames_of(open(os.path.join(src, name), "rb").read())
        # One variant per seed keeps the corpus small; the fuzzer mutates.
        nano, big = k % 2 == 1, k % 4 >= 2
        open(os.path.join(dst, name + ".pcap"), "wb").write(pcap(frames, nano, big))


main()
