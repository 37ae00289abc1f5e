#!/usr/bin/python3
"""Control plane through the agent's own path (bench/run.sh drives it).

In the server namespace of the veth rig, with the agent's CLI only:
  - `xdpguard attach` of the default policy on a spare veth, timed (then detach);
  - the daemon `xdpguard run` on the rig's veth: RSS idle, then RSS, CPU and
    drop events read while the live-frames generator floods it with
    undocumented traffic (events are rate-limited in the kernel: the
    suppressed count is reported beside what the daemon read);
  - reloads: SIGHUP to the daemon, timed from the signal to the daemon's own
    log line saying the new policy is applied; and `xdpguard reload`, timed
    as a command.
Writes "agent" records to the raw JSON lines file.

usage: agent.py --xdpguard BIN --bench BIN --srv-ns NS --cli-ns NS --dev IF
                --spare-dev IF --smac MAC --cmac MAC --gen-cpu N --runs N
                --flood-seconds S --work DIR --out RAW
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

# The flood: UDP to a port no rule of the default policy names.
FLOOD_PACKET = "udp 10.77.0.1:40000 -> 10.77.0.2:9999 len 18"
HZ = os.sysconf("SC_CLK_TCK")


class Rig:
    def __init__(self, a):
        self.a = a
        self.env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
        # The applied-policy records go to the run's scratch directory, not /run/xdpguard.
        self.env["XDPGUARD_STATE_DIR"] = f"{a.work}/agent-state"

    def in_srv(self, *cmd):
        # nsenter, not `ip netns exec`: the agent needs the host's /sys/fs/bpf.
        return ["nsenter", f"--net=/run/netns/{self.a.srv_ns}", *cmd]

    def xdpguard(self, *args, check=True):
        r = subprocess.run(self.in_srv(self.a.xdpguard, *args), env=self.env,
                           capture_output=True, text=True)
        if check and r.returncode:
            sys.exit(f"xdpguard {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
        return r

    def metrics(self, dev):
        """The agent's counters for DEV, summed over labels: {metric: value}."""
        out = {}
        for line in self.xdpguard("metrics", "--iface", dev).stdout.splitlines():
            m = re.match(r"^(\w+)(?:\{[^}]*\})? (\S+)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
        return out

    def flood(self, seconds):
        cmd = ["chrt", "-f", "10", "ip", "netns", "exec", self.a.cli_ns, self.a.bench, "gen",
               "--dev", "xgbv-c", "--dst-mac", self.a.smac, "--src-mac", self.a.cmac,
               "--packet", FLOOD_PACKET, "--seconds", str(seconds), "--cpu", str(self.a.gen_cpu)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def pin_napi(dev, cpu):
    """The daemon's attach recreates the veth's NAPI thread: pin it like the
    other veth cases do (SCHED_FIFO on the receive CPU)."""
    for pid in os.listdir("/proc"):
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
        except (OSError, ValueError):
            continue
        if pid.isdigit() and comm.startswith(f"napi/{dev}-"):
            subprocess.run(["taskset", "-p", "-c", str(cpu), pid], check=True, capture_output=True)
            subprocess.run(["chrt", "-f", "-p", "10", pid], check=True)


def proc_status(pid):
    st = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            st[k] = int(v.split()[0])
    return st


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ  # utime + stime


class Daemon:
    """`xdpguard run` with JSON logs in a file; lines are read as they come."""

    def __init__(self, rig, policy):
        self.log_path = f"{rig.a.work}/agent-daemon.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            rig.in_srv(rig.a.xdpguard, "run", "--iface", rig.a.dev, "--policy", policy,
                       "--log-format", "json"),
            env=rig.env, stdout=self.log, stderr=self.log)
        self.reader = open(self.log_path)
        self.lines = []

    def read(self):
        for line in self.reader.readlines():
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"msg": line.strip()})
        return self.lines

    def wait_for(self, pattern, start, timeout=30):
        """The first log line from index START whose msg matches PATTERN."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, rec in enumerate(self.read()[start:], start):
                if re.search(pattern, rec.get("msg", "")):
                    return i, rec
                if rec.get("level") in ("error", "critical"):
                    sys.exit(f"daemon: {rec.get('msg')}")
            if self.proc.poll() is not None:
                sys.exit(f"daemon exited ({self.proc.returncode}); log: {self.log_path}")
            time.sleep(0.002)
        sys.exit(f"daemon: no '{pattern}' within {timeout}s; log: {self.log_path}")

    def events(self):
        return sum(1 for r in self.read() if r.get("msg") == "drop event")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def log_time(rec):
    # spdlog's %Y-%m-%dT%H:%M:%S.%f%z: microseconds and the zone offset.
    return datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def summary(values):
    return {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values),
            "runs": len(values)}


def main():
    p = argparse.ArgumentParser()
    for k in ("xdpguard", "bench", "srv-ns", "cli-ns", "dev", "spare-dev", "smac", "cmac",
              "work", "out"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--gen-cpu", type=int, default=0)
    p.add_argument("--rx-cpu", type=int, default=1)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--flood-seconds", type=float, default=5)
    a = p.parse_args()
    rig = Rig(a)
    raw = open(a.out, "a")

    def record(metric, **fields):
        raw.write(json.dumps({"section": "agent", "metric": metric, **fields}) + "\n")
        raw.flush()

    # The policy file: the built-in default policy, and a variant (one more
    # prefix in a peer set) so that every reload applies a policy that differs
    # from the one in force.
    policy = f"{a.work}/agent-policy.yaml"
    text = subprocess.run([a.bench, "default-policy"], capture_output=True, text=True, check=True).stdout
    variants = [text, text.replace("cidrs: [0.0.0.0/0, ::/0]", "cidrs: [0.0.0.0/1, 128.0.0.0/1, ::/0]", 1)]
    if variants[0] == variants[1]:
        sys.exit("agent.py: the default policy has no `cidrs: [0.0.0.0/0, ::/0]` line to vary")
    open(policy, "w").write(text)

    # 1. xdpguard attach (process start, parse, compile, verifier, map fill,
    # XDP and TC attach, pins) on an idle spare veth, then detach.
    attach = []
    for _ in range(a.runs):
        t0 = time.monotonic()
        rig.xdpguard("attach", "--iface", a.spare_dev, "--policy", policy)
        attach.append((time.monotonic() - t0) * 1e3)
        rig.xdpguard("detach", "--iface", a.spare_dev)
    record("xdpguard attach (default policy)", **summary(attach))
    print(f"  xdpguard attach, default policy: {statistics.median(attach):7.1f} ms [{min(attach):.1f}-{max(attach):.1f}]")

    # 2. The daemon, idle: RSS once it has attached and settled.
    d = Daemon(rig, policy)
    try:
        d.wait_for(r": attached|: adopted", 0)
        pin_napi(a.dev, a.rx_cpu)
        time.sleep(2)
        idle = proc_status(d.proc.pid)
        cpu0 = cpu_seconds(d.proc.pid)
        time.sleep(2)
        idle_cpu = (cpu_seconds(d.proc.pid) - cpu0) / 2
        record("daemon idle", rss_kib=idle["VmRSS"], rss_anon_kib=idle.get("RssAnon"),
               rss_file_kib=idle.get("RssFile"), cpu_share=idle_cpu)
        print(f"  daemon idle: RSS {idle['VmRSS']} KiB (anon {idle.get('RssAnon')}, file {idle.get('RssFile')}), CPU {idle_cpu * 100:.1f}%")

        # 3. Under a drop-event flood.
        m0, ev0, cpu0 = rig.metrics(a.dev), d.events(), cpu_seconds(d.proc.pid)
        gen = rig.flood(a.flood_seconds)
        rss = []
        while gen.poll() is None:
            rss.append(proc_status(d.proc.pid)["VmRSS"])
            time.sleep(0.1)
        g = json.loads(gen.stdout.read())
        time.sleep(0.5)  # what is in the ring buffer gets read
        m1, ev1, cpu1 = rig.metrics(a.dev), d.events(), cpu_seconds(d.proc.pid)
        after = proc_status(d.proc.pid)
        delta = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1}
        secs = g["seconds"]
        flood = {"seconds": secs, "offered": g["offered"],
                 "drops": delta.get("xdpguard_drops_total", 0),
                 "events_emitted": delta.get("xdpguard_events_emitted_total", 0),
                 "events_suppressed": delta.get("xdpguard_events_suppressed_total", 0),
                 "events_read": ev1 - ev0, "events_read_per_s": (ev1 - ev0) / secs,
                 "rss_max_kib": max(rss + [after["VmRSS"]]), "rss_after_kib": after["VmRSS"],
                 "hwm_kib": after["VmHWM"], "cpu_share": (cpu1 - cpu0) / secs}
        record("daemon under drop-event flood", **flood)
        print(f"  daemon under flood ({secs:.1f} s, {flood['drops'] / secs / 1e6:.2f} M drops/s): "
              f"RSS max {flood['rss_max_kib']} KiB, after {flood['rss_after_kib']} KiB, peak {flood['hwm_kib']} KiB, "
              f"CPU {flood['cpu_share'] * 100:.1f}%; events read {flood['events_read']} "
              f"({flood['events_read_per_s']:.1f}/s), emitted {flood['events_emitted']:.0f}, "
              f"suppressed {flood['events_suppressed']:.0f}")

        # 4. Reload by SIGHUP: from the signal to the daemon's log line that
        # the new policy is applied (its own timestamp, microseconds).
        hup = []
        for i in range(a.runs):
            open(policy, "w").write(variants[(i + 1) % 2])
            start = len(d.read())
            t0 = time.time()
            d.proc.send_signal(signal.SIGHUP)
            _, rec = d.wait_for(rf"{re.escape(a.dev)}: reloaded to", start)
            hup.append((log_time(rec) - t0) * 1e3)
        record("reload: SIGHUP to the daemon until it logs the new policy applied", **summary(hup))
        print(f"  reload by SIGHUP (until the daemon logs it applied): {statistics.median(hup):7.1f} ms [{min(hup):.1f}-{max(hup):.1f}]")

        # 5. `xdpguard reload` beside the running daemon, timed as a command.
        cli = []
        for i in range(a.runs):
            open(policy, "w").write(variants[i % 2])
            t0 = time.monotonic()
            rig.xdpguard("reload", "--iface", a.dev, "--policy", policy)
            cli.append((time.monotonic() - t0) * 1e3)
        record("reload: xdpguard reload (command)", **summary(cli))
        print(f"  xdpguard reload (command):                      {statistics.median(cli):7.1f} ms [{min(cli):.1f}-{max(cli):.1f}]")
        record("daemon at exit", hwm_kib=proc_status(d.proc.pid)["VmHWM"])
    finally:
        d.stop()
        rig.xdpguard("detach", "--iface", a.dev, check=False)
        rig.xdpguard("detach", "--iface", a.spare_dev, check=False)


if __name__ == "__main__":
    main()
