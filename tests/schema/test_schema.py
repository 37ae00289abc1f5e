#!/usr/bin/python3
"""policy/xdpguard-policy.schema.json against the parser, on every policy the
tests have: the default, tests/data/policies and the fuzz corpus.

Every policy `xdpguard check` accepts, the schema accepts. Every policy it
refuses, the schema refuses too, unless the refusal is one a schema cannot
see (SEMANTIC below: CIDR arithmetic, names that refer to other names,
duplicate keys, contradictions between rules); those must then be valid for
the schema, so the list cannot hide a schema that lets a structural error by.

YAML is read as YAML 1.2, as the YAML language server and yaml-cpp read it
(`yes` stays text, `::/0` is a plain scalar), with ruamel.yaml.
Run with Debian's python3 (python3-jsonschema, python3-ruamel.yaml).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

SOURCE = os.environ.get("XDPGUARD_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XDPGUARD = os.environ["XDPGUARD"]
DATA = os.path.join(SOURCE, "tests/data/policies")
CORPUS = os.path.join(SOURCE, "tests/fuzz/corpus/policy")

# Refused by the parser for reasons outside the schema's reach.
SEMANTIC = {
    "broken-contradiction.yaml": "two rules disagree about the same packets (receive-only vs bidirectional)",
}


# One change each to tests/data/policies/new-operator.yaml (whose first rule is
# `snmp-traps`, udp 162 receive-only, and whose last is `ssh`, tcp 22):
# (name, old text, new text, why the schema cannot see it or None).
MUTATIONS = [
    ("no-flow", "    flow: receive-only\n", "", None),
    ("doc-keys", "    initiator: remote\n    flow: receive-only\n",
     "    initiator: remote\n    flow: receive-only\n    section: s\n    row: r\n    purpose: 42\n    secured: true\n", None),
    ("no-peers", "    peers: devices\n", "", None),
    ("no-initiator", "    initiator: remote\n    flow: receive-only\n", "", None),
    ("no-local-port", "    local_port: 162\n", "", None),
    ("no-protocol", "    protocol: udp\n", "", None),
    ("remote-port-with-initiator-remote", "    local_port: 162\n", "    local_port: 162\n    remote_port: 1024\n", None),
    ("local-port-with-initiator-local", "    initiator: remote\n    flow: receive-only\n", "    initiator: local\n", None),
    ("both-needs-remote-port", "    initiator: remote\n    flow: receive-only\n", "    initiator: both\n", None),
    ("both-with-both-ports", "    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    local_port: 162\n    remote_port: 162\n    peers: devices\n    initiator: both\n", None),
    ("receive-only-needs-remote", "    flow: receive-only\n", "    flow: send-only\n", None),
    ("unknown-flow", "    flow: receive-only\n", "    flow: sideways\n", None),
    ("unknown-initiator", "    initiator: remote\n    flow", "    initiator: peer\n    flow", None),
    ("secured-yes", "    flow: receive-only\n", "    flow: receive-only\n    secured: yes\n", None),
    ("port-zero", "    local_port: 162\n", "    local_port: 0\n", None),
    ("port-too-big", "    local_port: 162\n", "    local_port: [162, 65536]\n", None),
    ("port-range", "    local_port: 162\n", "    local_port: [162, 8000-8010, \"9000\"]\n", None),
    ("port-range-backwards", "    local_port: 162\n", "    local_port: 8010-8000\n", "a range's order is arithmetic"),
    ("port-list-empty", "    local_port: 162\n", "    local_port: []\n", None),
    ("not-enforced-without-reason", "    flow: receive-only\n", "    flow: receive-only\n    enforced: false\n", None),
    ("reason-while-enforced", "    flow: receive-only\n", "    flow: receive-only\n    not_enforced_reason: x\n", None),
    ("documentation-only", "    local_port: 162\n    peers: devices\n    initiator: remote\n",
     "    enforced: false\n    not_enforced_reason: not on this host\n", None),
    ("icmp-with-port", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: icmp\n    icmp_types: [8]\n    local_port: 1\n    peers: devices\n", None),
    ("icmp-needs-types", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: icmp\n    peers: devices\n", None),
    ("icmp-type-256", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: icmp\n    icmp_types: [8, 256]\n    peers: devices\n", None),
    ("ethertype-arp", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: ethertype\n    ethertypes: 0x0806\n", None),
    ("ethertype-with-peers", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: ethertype\n    ethertypes: [0x0806]\n    peers: devices\n", None),
    ("ethertype-ip", "    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n    flow: receive-only\n",
     "    protocol: ethertype\n    ethertypes: [0x0800]\n", None),
    ("unknown-rule-key", "    flow: receive-only\n", "    flow: receive-only\n    port: 162\n", None),
    ("bad-id", "  - id: ssh\n", "  - id: SSH_1\n", None),
    ("long-id", "  - id: ssh\n", "  - id: " + "x" * 48 + "\n", None),
    ("duplicate-id", "  - id: ssh\n", "  - id: https\n", "ids refer to each other"),
    ("unknown-peer-set", "    peers: admins\n", "    peers: nobody\n", "names refer to each other"),
    ("peer-set-without-cidrs", "    cidrs: [198.51.100.7]\n", "    description: admins\n", None),
    ("peer-set-unknown-key", "    cidrs: [198.51.100.7]\n", "    cidr: [198.51.100.7]\n", None),
    ("peer-set-empty", "    cidrs: [198.51.100.7]\n", "    cidrs: []\n", None),
    ("peer-set-bad-name", "  admins:\n", "  Admins:\n", None),
    ("cidr-host-bits", "    cidrs: [198.51.100.7]\n", "    cidrs: [198.51.100.7/24]\n", "host bits are arithmetic"),
    ("cidr-not-an-address", "    cidrs: [198.51.100.7]\n", "    cidrs: [admins.example]\n", None),
    ("rules-not-a-list", None, "version: 1\nname: t\nrules: {}\n", None),
    ("version-2", "version: 1\n", "version: 2\n", None),
    ("no-name", "name: new-operator\n", "", None),
    ("unknown-top-key", "version: 1\n", "version: 1\ncolour: red\n", None),
    ("profile", None, "profiles:\n  secured-only:\n    description: d\n    secured_only: true\n    exclude_rules: ssh\n", None),
    ("profile-unknown-rule", None, "profiles:\n  p:\n    exclude_rules: [ghost]\n", "names refer to each other"),
    ("profile-long-name", None, "profiles:\n  " + "p" * 32 + ": {}\n", None),
    ("profile-unknown-key", None, "profiles:\n  p:\n    secure_only: true\n", None),
    ("settings", None, "settings:\n  mode: audit\n  egress: track\n  flow_table_size: 1024\n"
     "  timeouts: {tcp_established: 604800, tcp_closing: 1, udp: 86400, fragments: 3600}\n  events: {rate: 0, burst: 1}\n", None),
    ("settings-timeout-zero", None, "settings:\n  timeouts: {udp: 0}\n", None),
    ("settings-table-small", None, "settings:\n  flow_table_size: 1023\n", None),
    ("settings-mode", None, "settings:\n  mode: enforcing\n", None),
    ("settings-unknown-key", None, "settings:\n  egres: off\n", None),
    ("contradiction", None, "  - id: traps-too\n    protocol: udp\n    local_port: 162\n    peers: devices\n    initiator: remote\n",
     "two rules disagree about the same packets"),
]


def mutations(base):
    """(name, text, semantic reason) per MUTATIONS entry; a None old text appends."""
    out = []
    for name, old, new, semantic in MUTATIONS:
        if name == "rules-not-a-list":
            out.append((name, new, semantic))
            continue
        text = base.replace("peers: devices\n", "peers: devices\n").replace("tcpp", "tcp")
        if old is None:
            if name == "contradiction":
                text = text.replace("rules:\n", "rules:\n" + new, 1)
            else:
                text += new
        else:
            if old not in text:
                raise RuntimeError(f"mutation {name}: {old!r} not in the base policy")
            text = text.replace(old, new, 1)
        out.append((name, text, semantic))
    return out


def as_json(node):
    """Mapping keys, and scalars JSON has no type for (dates), as text."""
    if isinstance(node, dict):
        return {str(k): as_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [as_json(v) for v in node]
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    return str(node)


def parser_accepts(path, work):
    """`xdpguard check` in a directory holding the peer-set files of tests/data."""
    copy = os.path.join(work, os.path.basename(path))
    shutil.copyfile(path, copy)
    os.chmod(copy, 0o644)
    run = subprocess.run([XDPGUARD, "check", "--policy", copy], capture_output=True, text=True,
                         errors="replace")
    if run.returncode not in (0, 1):
        raise RuntimeError(f"check {path} exited {run.returncode}: {run.stderr}")
    return run.returncode == 0, run.stderr


def schema_errors(validator, path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = YAML(typ="safe", pure=True).load(f)
    except (YAMLError, UnicodeDecodeError) as e:
        return [f"not YAML: {str(e).splitlines()[0]}"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(as_json(doc))]


def main():
    with open(os.path.join(SOURCE, "policy/xdpguard-policy.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)

    files = [os.path.join(SOURCE, "policy/ovoc-single-node.yaml")]
    for d in (DATA, CORPUS):
        files += sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".yaml"))
    passed, failed = 0, 0
    with tempfile.TemporaryDirectory() as work:
        for n in os.listdir(DATA):
            if n.endswith(".txt"):
                shutil.copyfile(os.path.join(DATA, n), os.path.join(work, n))
                os.chmod(os.path.join(work, n), 0o644)
        cases = [(os.path.basename(p), p, SEMANTIC.get(os.path.basename(p))) for p in files]
        with open(os.path.join(DATA, "new-operator.yaml"), encoding="utf-8") as f:
            base = f.read()
        for name, text, semantic in mutations(base):
            path = os.path.join(work, "mutated", name + ".yaml")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            cases.append((name, path, semantic))
        for name, path, semantic in cases:
            accepted, parser_says = parser_accepts(path, work)
            errors = schema_errors(validator, path)
            if accepted:
                ok, why = not errors, "the parser accepts it, the schema does not: " + "; ".join(errors[:3])
            elif semantic:
                ok, why = not errors, "refused for a reason the schema cannot see, yet the schema refuses it: " + "; ".join(errors[:3])
            else:
                ok, why = bool(errors), "the parser refuses it, the schema accepts it:\n" + parser_says
            print(f"{'ok  ' if ok else 'FAIL'} {name}: parser {'accepts' if accepted else 'refuses'}, "
                  f"schema {'accepts' if not errors else 'refuses (' + errors[0] + ')'}")
            if not ok:
                print("     " + why)
            passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
