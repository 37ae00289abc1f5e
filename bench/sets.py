#!/usr/bin/python3
"""Random prefix sets for bench/run.sh: the nftables sets and xdpguard peer
sets of the same sizes are made from the same list.

usage: sets.py FAMILY(4|6) N DIR
Writes DIR/set-vFAMILY-N.txt (one prefix a line: xdpguard's `file:`) and
DIR/set-vFAMILY-N.nft (a `define` of the elements for nft -f), and prints
two addresses: a member (inside the first prefix) and a near non-member (in
the sibling of that prefix, which is not in the set: a lookup in a trie walks
as deep as for a member before it misses).
"""
import ipaddress
import random
import sys


def prefixes(family, n, rng):
    seen = set()
    while len(seen) < n:
        if family == 4:  # /24s in 11.0.0.0-191.255.255.0, clear of the test ranges
            seen.add(ipaddress.ip_network(f"{rng.randrange(11, 192)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24"))
        else:  # /48s under 2a00::/12
            seen.add(ipaddress.ip_network(((0x2a0 << 116) | (rng.getrandbits(36) << 80), 48)))
    return sorted(seen)


def main():
    family, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    nets = prefixes(family, n, random.Random(6))
    members = set(nets)
    base = f"{out}/set-v{family}-{n}"
    with open(base + ".txt", "w") as f:
        f.writelines(f"{p}\n" for p in nets)
    with open(base + ".nft", "w") as f:
        f.write(f"define peers = {{ {', '.join(map(str, nets))} }}\n")
    for p in nets:
        sibling = ipaddress.ip_network((int(p.network_address) ^ (1 << (p.max_prefixlen - p.prefixlen)), p.prefixlen))
        if sibling not in members:
            print(p.network_address + 77, sibling.network_address + 77)
            return
    sys.exit("no prefix of the set has a sibling outside it")


if __name__ == "__main__":
    main()
