#!/usr/bin/python3
"""Summarise bench/run.sh's raw records: results.json, a table with the
issue's targets (met / missed), and cost_vs_size.png.

usage: report.py RAW_JSONL OUT_DIR
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def verdict(ok):
    return "met" if ok else "MISSED"


def main():
    raw_path, out = sys.argv[1], sys.argv[2]
    recs = load(raw_path)
    by = defaultdict(list)
    for r in recs:
        # veth records of the set comparison and of the program-statistics
        # rounds are sections of their own (veth-set, veth-progstats).
        group = r.get("group", "main") if r["section"] == "veth" else "main"
        by[r["section"] if group == "main" else f"veth-{group}"].append(r)
    machine = dict((by["machine"] or [{}])[0])
    machine.update((by["machine-end"] or [{}])[0])
    machine.pop("section", None)
    result = {"machine": machine, "control": by["control"], "cost": by["cost"],
              "cost_ratio": by["cost-ratio"], "scale": by["scale"], "nft_set": by["nft-set"],
              "veth_runs": by["veth"], "veth": [], "veth_set_runs": by["veth-set"],
              "veth_set": veth_sets(by["veth-set"]), "veth_progstats": progstats(by["veth-progstats"]),
              "agent": by["agent"], "targets": []}
    targets = result["targets"]

    # ---- cost
    mix = next((r for r in by["cost-ratio"] if r["class"] == "mix"), None)
    if mix:
        targets.append({"target": "test_run: traffic mix <= 3x bare XDP_DROP",
                        "value": mix["xdpguard_over_floor"], "met": mix["xdpguard_over_floor"] <= 3})
    per_class = [r for r in by["cost-ratio"] if not r["class"].startswith("mix")]
    if per_class and all(r["xdpguard_over_xdp_filter"] is not None for r in per_class):
        worst = max(per_class, key=lambda r: r["xdpguard_over_xdp_filter"])
        targets.append({"target": "test_run: <= 0.6x xdp-filter on every class",
                        "value": worst["xdpguard_over_xdp_filter"], "worst_class": worst["class"],
                        "met": worst["xdpguard_over_xdp_filter"] <= 0.6})

    # Issue 14: a drop no dearer than a pass, and drops scaling with the CPUs.
    ratio_of = {r["class"]: r["xdpguard_over_floor"] for r in per_class}
    if "drop-undocumented-port" in ratio_of and "tcp-443-allowed" in ratio_of:
        d, p = ratio_of["drop-undocumented-port"], ratio_of["tcp-443-allowed"]
        targets.append({"target": "test_run: undocumented-port drop <= allowed TCP 443 pass",
                        "value": d / p, "met": d <= p})
        targets.append({"target": "test_run: undocumented-port drop <= 2.5x bare XDP_DROP",
                        "value": d, "met": d <= 2.5})
    for r in by["cost-scaling"]:
        targets.append({"target": f"test_run: drop rate on {r['cpus']} CPUs >= 1.8x one CPU's ({r['flood']})",
                        "value": r["rate_ratio_median"], "met": r["rate_ratio_median"] >= 1.8})

    # ---- veth
    cases = defaultdict(list)
    for r in by["veth"]:
        cases[r["case"]].append(r)
    veth = {}
    for name, runs in cases.items():
        rate = [r["disposed_per_s"] for r in runs]
        ns = [r["rx_ns_per_packet"] for r in runs]
        veth[name] = {"case": name, "runs": len(runs), "disposed_per_s_median": med(rate),
                      "disposed_per_s_min": min(rate), "disposed_per_s_max": max(rate),
                      "rx_ns_per_packet_median": med(ns),
                      "rx_cpu_share_median": med([r["rx_cpu_seconds"] / r["seconds"] for r in runs]),
                      "offered_per_s_median": med([r["offered"] / r["seconds"] for r in runs])}
    floor = veth.get("bare XDP_DROP")
    # Ratios are taken within a round (every case runs once per round), then
    # the median over rounds: drift on a shared machine cancels.
    rounds = defaultdict(dict)
    for r in by["veth"]:
        rounds[r["run"]][r["case"]] = r

    def per_round(name, other, f):
        out = [f(rd[name], rd[other]) for rd in rounds.values() if name in rd and other in rd]
        out = [x for x in out if x is not None]
        return (med(out), min(out), max(out)) if out else (None, None, None)

    def cost_ratio(a, b):
        return a["rx_ns_per_packet"] / b["rx_ns_per_packet"] if a["rx_ns_per_packet"] and b["rx_ns_per_packet"] else None

    def rate_ratio(a, b):
        return a["disposed_per_s"] / b["disposed_per_s"] if b["disposed_per_s"] else None

    for name, v in veth.items():
        if not floor:
            break
        v["rx_cost_over_floor"], v["rx_cost_over_floor_min"], v["rx_cost_over_floor_max"] = \
            per_round(name, "bare XDP_DROP", cost_ratio)
        v["rate_over_floor"], v["rate_over_floor_min"], v["rate_over_floor_max"] = \
            per_round(name, "bare XDP_DROP", rate_ratio)
        v["rx_ns_over_floor"] = per_round(name, "bare XDP_DROP", lambda a, b: (
            a["rx_ns_per_packet"] - b["rx_ns_per_packet"]) if a["rx_ns_per_packet"] and b["rx_ns_per_packet"] else None)[0]
    result["veth"] = list(veth.values())
    guard, nft_in = veth.get("xdpguard (default policy)"), veth.get("nftables input drop")
    if guard and floor:
        targets.append({"target": "veth: receive cost <= 1.7x bare XDP_DROP",
                        "value": guard.get("rx_cost_over_floor"),
                        "met": (guard.get("rx_cost_over_floor") or 99) <= 1.7})
        targets.append({"target": "veth: drop rate >= 0.6x bare XDP_DROP (rate)",
                        "value": guard.get("rate_over_floor"),
                        "met": (guard.get("rate_over_floor") or 0) >= 0.6})
    if guard and nft_in:
        r = per_round("xdpguard (default policy)", "nftables input drop", rate_ratio)[0]
        c = per_round("nftables input drop", "xdpguard (default policy)", cost_ratio)[0]
        targets.append({"target": "veth: drop rate >= 5x nftables input drop (rate)", "value": r,
                        "met": r >= 5})
        targets.append({"target": "veth: nftables input cost per packet / xdpguard's (>= 5)",
                        "value": c, "met": c >= 5})

    # ---- scale
    scale = defaultdict(dict)
    for r in by["scale"]:
        scale[r["dimension"]][int(r["size"])] = r
    for dim, sizes in scale.items():
        lo, hi = min(sizes), max(sizes)
        if lo == hi:
            continue
        ratio = sizes[hi]["hit_median_ns"] / sizes[lo]["hit_median_ns"]
        targets.append({"target": f"scale {dim}: cost at {hi} <= 1.3x cost at {lo}", "value": ratio,
                        "met": ratio <= 1.3})
        if dim.startswith("cidrs"):
            t = sizes[hi]["compile_ms"] + sizes[hi]["load_ms"]
            targets.append({"target": f"scale {dim}: compile+load of {hi} CIDRs < 1 s",
                            "value": t / 1000, "met": t < 1000,
                            "parse_s": sizes[hi]["parse_ms"] / 1000})

    # ---- per packet against sets on veth (the targets, applied to
    # the set comparison: flat cost, and >= 5x nftables' input chain)
    vs = result["veth_set"]
    for fam in sorted({r["family"] for r in vs}):
        rows = sorted((r for r in vs if r["family"] == fam and r["impl"] == "xdpguard"), key=lambda r: r["size"])
        if len(rows) > 1 and rows[0]["rx_ns_median"] and rows[-1]["rx_ns_median"]:
            ratio = rows[-1]["rx_ns_median"] / rows[0]["rx_ns_median"]
            targets.append({"target": f"veth set v{fam}: xdpguard cost at {rows[-1]['size']} <= 1.3x cost at {rows[0]['size']}",
                            "value": ratio, "met": ratio <= 1.3})
        worst = [r for r in vs if r["family"] == fam and r["impl"] == "nftables input" and r.get("over_xdpguard")]
        if worst:
            w = min(worst, key=lambda r: r["over_xdpguard"])
            targets.append({"target": f"veth set v{fam}: nftables input cost / xdpguard's >= 5 at every size",
                            "value": w["over_xdpguard"], "worst_class": f"size {w['size']}",
                            "met": w["over_xdpguard"] >= 5})

    json.dump(result, open(f"{out}/results.json", "w"), indent=1)

    # ---- printout
    if result["veth"]:
        print("Drop rate on veth (median of rounds; ratios to bare XDP_DROP within each round):")
        print(f"  {'case':<30} {'disposed/s':>12} {'rx ns/pkt':>10} {'rx CPU':>7} {'cost/floor':>10} {'rate/floor':>10} {'ns above floor':>14}")
        for v in result["veth"]:
            print(f"  {v['case']:<30} {v['disposed_per_s_median'] / 1e6:>9.2f} M {v['rx_ns_per_packet_median'] or 0:>10.1f}"
                  f" {v['rx_cpu_share_median'] * 100:>6.0f}% {v.get('rx_cost_over_floor', 0):>10.2f} {v.get('rate_over_floor', 0):>10.2f} {v.get('rx_ns_over_floor', 0):>14.1f}")
        print()
    if result["veth_set"]:
        print("Per packet against sets on veth (receive ns/packet, median of rounds; ratios within a round):")
        print(f"  {'family':<6} {'size':>7} {'impl':<24} {'rx ns/pkt':>10} {'cost/floor':>10} {'/ xdpguard':>10}")
        for r in result["veth_set"]:
            rel = "-" if r.get("over_xdpguard") is None else f"{r['over_xdpguard']:.2f}"
            print(f"  IPv{r['family']:<4} {r['size']:>7} {r['impl']:<24} {r['rx_ns_median'] or 0:>10.1f} "
                  f"{r.get('over_floor') or 0:>10.2f} {rel:>10}")
        print()
    print("Targets:")
    for t in targets:
        extra = f" ({t['worst_class']})" if "worst_class" in t else ""
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        print(f"  {verdict(t['met']):<7} {t['target']:<58} {value}{extra}")
    print(f"\nresults: {out}/results.json")

    plot(scale, by, out)
    markdown(result, by, scale, out)


def round_ratios(runs, num, den):
    """Median [min, max] over rounds of num's rx ns/packet / den's, within a round."""
    rounds = defaultdict(dict)
    for r in runs:
        rounds[r["run"]][r["case"]] = r
    out = [rd[num]["rx_ns_per_packet"] / rd[den]["rx_ns_per_packet"] for rd in rounds.values()
           if num in rd and den in rd and rd[num]["rx_ns_per_packet"] and rd[den]["rx_ns_per_packet"]]
    return (med(out), min(out), max(out)) if out else (None, None, None)


def progstats(runs):
    """The receiver program's own ns per run on veth (kernel.bpf_stats), per case."""
    cases = defaultdict(list)
    for r in runs:
        cases[r["case"]].append(r)
    return [{"case": name, "runs": len(rs), "prog_ns_per_run_median": med([r.get("prog_ns_per_run") for r in rs]),
             "rx_ns_per_packet_median": med([r["rx_ns_per_packet"] for r in rs])}
            for name, rs in cases.items()]


def veth_sets(runs):
    """One row per (family, size, implementation) of the set comparison."""
    cases = defaultdict(list)
    for r in runs:
        if "impl" in r:
            cases[(r["family"], r["size"], r["impl"])].append(r)
    rows = []
    for (fam, size, impl), rs in sorted(cases.items()):
        ns = [r["rx_ns_per_packet"] for r in rs if r["rx_ns_per_packet"]]
        name = rs[0]["case"]
        row = {"family": fam, "size": size, "impl": impl, "case": name, "runs": len(rs),
               "rx_ns_median": med(ns), "rx_ns_min": min(ns) if ns else None, "rx_ns_max": max(ns) if ns else None,
               "disposed_per_s_median": med([r["disposed_per_s"] for r in rs])}
        row["over_floor"], row["over_floor_min"], row["over_floor_max"] = round_ratios(runs, name, "bare XDP_DROP")
        guard = f"set v{fam} {size}: xdpguard"
        if impl != "xdpguard":
            row["over_xdpguard"], row["over_xdpguard_min"], row["over_xdpguard_max"] = round_ratios(runs, name, guard)
        rows.append(row)
    return rows


def markdown(result, by, scale, out):
    """bench/results/summary.md: the tables of this run, for RESULTS.md."""
    m = result["machine"]
    L = [f"Run of {m.get('date', '?')}: kernel {m.get('kernel', '?')}, {m.get('cpu', '?')}, "
         f"{m.get('vcpus', '?')} vCPU, {m.get('mem_mib', '?')} MiB, clocksource {m.get('clocksource', '?')}, "
         f"load average at start {' '.join(m.get('loadavg_start', []))}, at end {m.get('loadavg_end', '?')}.", ""]
    cost = {(r["program"], r["class"]): r for r in by["cost"]}
    ratios = {r["class"]: r for r in by["cost-ratio"]}
    if cost:
        rep = next(iter(cost.values()))
        L += [f"### Per-packet cost (BPF_PROG_TEST_RUN, repeat {int(rep['repeat'])}, median of {int(rep['runs'])} runs [min-max], ns/packet)", "",
              "| class | mix weight | bare XDP_DROP | xdp-filter | xdpguard | xdpguard/floor | xdpguard/xdp-filter |",
              "|---|---|---|---|---|---|---|"]
        f = lambda r: f"{r['median_ns']:.2f} [{r['min_ns']:.2f}-{r['max_ns']:.2f}]" if r else "-"
        for cls, rr in ratios.items():
            if cls.startswith("mix"):
                continue
            xf = rr["xdpguard_over_xdp_filter"]
            xfr = "-" if xf is None else "%.2f" % xf
            L.append(f"| {cls} | {rr['mix_weight']:.2f} | {f(cost.get(('floor', cls)))} | {f(cost.get(('xdp-filter', cls)))} | "
                     f"{f(cost.get(('xdpguard', cls)))} | {rr['xdpguard_over_floor']:.2f} | {xfr} |")
        for key, label in (("mix", "**traffic mix**"), ("mix-without-tracked-replies", "mix without tracked replies")):
            rr = ratios.get(key)
            if rr:
                xf = rr["xdpguard_over_xdp_filter"]
                xfn = "-" if rr["xdp_filter_ns"] is None else "%.2f" % rr["xdp_filter_ns"]
                xfr = "-" if xf is None else "%.2f" % xf
                L.append(f"| {label} | | {rr['floor_ns']:.2f} | {xfn} | "
                         f"{rr['xdpguard_ns']:.2f} | {rr['xdpguard_over_floor']:.2f} | {xfr} |")
        for prog, label in (("floor-unheld", "bare XDP_DROP not held attached (pays the dispatcher swap)"),
                            ("probe-ktime", "probe: bpf_ktime_get_ns() alone"),
                            ("probe-ktime-coarse", "probe: bpf_ktime_get_coarse_ns() alone"),
                            ("probe-flow-lookup", "probe: flow-table lookup (40-byte key) alone"),
                            ("probe-flow-lookup16", "probe: flow-table lookup (16-byte key) alone")):
            r = next((x for x in by["cost"] if x["program"] == prog), None)
            if r:
                L.append(f"| {label} | | | | {f(r)} | | |")
        for r in by["cost-contended"]:
            L.append(f"| {r['class']} on every CPU at once (same flow) | | | | "
                     f"{r['median_ns']:.2f} [{r['min_ns']:.2f}-{r['max_ns']:.2f}]; precise clock "
                     f"{r['precise_median_ns']:.2f} [{r['precise_min_ns']:.2f}-{r['precise_max_ns']:.2f}] | | |")
        for r in by["cost-scaling"]:
            L.append(f"| {r['class']} on {r['cpus']} CPUs at once, {r['flood']}: drop rate / one CPU's "
                     f"{r['rate_ratio_median']:.2f} [{r['rate_ratio_min']:.2f}-{r['rate_ratio_max']:.2f}] | | | | "
                     f"alone {r['alone_median_ns']:.2f}, each at once {r['each_median_ns']:.2f} | | |")
        for r in (x for x in by["cost"] if x["program"] == "xdpguard-precise-clock"):
            fl = cost.get(("floor", r["class"]))
            if fl:
                L.append(f"| {r['class']}, xdpguard on the precise clock (bpf_ktime_get_ns) | | | | {f(r)} | "
                         f"{r['median_ns'] / fl['median_ns']:.2f} | |")
        for r in by["cost-learning"]:
            L.append(f"| {r['class']}, xdpguard learning (docs/learn.md; learning/not learning "
                     f"{r['on_over_off']:.2f}) | | | | {f(r)} | | |")
        L.append("")
    if scale:
        L += ["### Scale (median [min-max] ns/packet; times in ms; memlock in KiB)", "",
              "| dimension | size | map entries | member / allowed port (pass) | non-member / other port (drop) | parse | compile | load | lookup map KiB | all maps KiB |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for dim, sizes in sorted(scale.items()):
            for n in sorted(sizes):
                r = sizes[n]
                L.append(f"| {dim} | {n} | {int(r['entries'])} | {r['hit_median_ns']:.2f} [{r['hit_min_ns']:.2f}-{r['hit_max_ns']:.2f}] | "
                         f"{r['miss_median_ns']:.2f} [{r['miss_min_ns']:.2f}-{r['miss_max_ns']:.2f}] | {r['parse_ms']:.1f} | "
                         f"{r['compile_ms']:.1f} | {r['load_ms']:.1f} | {int(r['lookup_map_memlock']) // 1024} | {int(r['all_maps_memlock']) // 1024} |")
        if by["nft-set"]:
            L += ["", "nftables interval sets of the same sizes, load time (`nft -f`): " +
                  ", ".join(f"IPv{r['family']} {r['size']}: {r['load_ms']} ms" for r in by["nft-set"])]
        L.append("")
    if result["veth"]:
        L += ["### Drop rate on veth (live-frames generator; median of rounds, ratios within a round [min-max])", "",
              "| case | disposed/s | receive ns/packet | receiver CPU | cost / floor | rate / floor | ns above floor |",
              "|---|---|---|---|---|---|---|"]
        for v in result["veth"]:
            c = v.get("rx_cost_over_floor")
            rt = v.get("rate_over_floor")
            cs = "-" if c is None else "%.2f [%.2f-%.2f]" % (c, v["rx_cost_over_floor_min"], v["rx_cost_over_floor_max"])
            rs = "-" if rt is None else "%.2f [%.2f-%.2f]" % (rt, v["rate_over_floor_min"], v["rate_over_floor_max"])
            L.append(f"| {v['case']} | {v['disposed_per_s_median'] / 1e6:.2f} M | {v['rx_ns_per_packet_median']:.1f} | "
                     f"{v['rx_cpu_share_median'] * 100:.0f}% | {cs} | {rs} | {v.get('rx_ns_over_floor') or 0:.1f} |")
        L.append("")
    if result["veth_progstats"]:
        L += ["### The receiver program's own time on veth (kernel.bpf_stats on; separate rounds, median)", "",
              "| case | program ns/run | receive ns/packet (with the statistics' overhead) |", "|---|---|---|"]
        for r in result["veth_progstats"]:
            p = r["prog_ns_per_run_median"]
            L.append(f"| {r['case']} | {'-' if p is None else f'{p:.1f}'} | {r['rx_ns_per_packet_median'] or 0:.1f} |")
        L.append("")
    if result["veth_set"]:
        f = lambda v, lo, hi: "-" if v is None else f"{v:.2f} [{lo:.2f}-{hi:.2f}]"
        L += ["### Per packet against sets on veth (receive ns/packet, median [min-max] of rounds; ratios within a round)", "",
              "nftables: `udp dport 162 ip saddr @peers counter drop` (`ip6` for IPv6), interval set, the source a member. "
              "xdpguard: default policy, `managed-devices` (peers of the UDP 162 rule) = the same prefixes, the source a "
              "near non-member (sibling of a member prefix), dropped `peer_not_in_set`.", "",
              "| family | set size | implementation | receive ns/packet | disposed/s | cost / floor | cost / xdpguard's |",
              "|---|---|---|---|---|---|---|"]
        for r in result["veth_set"]:
            ns = "-" if r["rx_ns_median"] is None else f"{r['rx_ns_median']:.1f} [{r['rx_ns_min']:.1f}-{r['rx_ns_max']:.1f}]"
            L.append(f"| IPv{r['family']} | {r['size']} | {r['impl']} | {ns} | {r['disposed_per_s_median'] / 1e6:.2f} M | "
                     f"{f(r['over_floor'], r['over_floor_min'], r['over_floor_max'])} | "
                     f"{f(r.get('over_xdpguard'), r.get('over_xdpguard_min'), r.get('over_xdpguard_max')) if r['impl'] != 'xdpguard' else '1'} |")
        L.append("")
    if result["agent"]:
        L += ["### Control plane through the agent (`xdpguard` CLI and daemon, default policy, veth in a namespace)", ""]
        for r in result["agent"]:
            if "median_ms" in r:
                L.append(f"- {r['metric']}: {r['median_ms']:.1f} ms [{r['min_ms']:.1f}-{r['max_ms']:.1f}], {r['runs']} runs")
            elif r["metric"] == "daemon idle":
                L.append(f"- daemon idle: RSS {r['rss_kib']} KiB (anonymous {r['rss_anon_kib']}, file-backed {r['rss_file_kib']}), "
                         f"CPU {r['cpu_share'] * 100:.1f}%")
            elif r["metric"] == "daemon under drop-event flood":
                s = r["seconds"]
                L.append(f"- daemon under a drop-event flood ({s:.1f} s, {r['drops'] / s / 1e6:.2f} M drops/s): RSS max "
                         f"{r['rss_max_kib']} KiB, {r['rss_after_kib']} KiB after; CPU {r['cpu_share'] * 100:.1f}%; "
                         f"drop events read {r['events_read']} ({r['events_read_per_s']:.1f}/s), emitted by the kernel "
                         f"{r['events_emitted']:.0f}, suppressed by its rate limit {r['events_suppressed']:.0f}")
            elif r["metric"] == "daemon at exit":
                L.append(f"- daemon peak RSS (VmHWM) over the run, reloads included: {r['hwm_kib']} KiB")
        L.append("")
    if by["control"]:
        L += ["### Control plane (default policy)", ""]
        for r in by["control"]:
            if "median_ms" in r:
                L.append(f"- {r['metric']}: {r['median_ms']:.2f} ms [{r['min_ms']:.2f}-{r['max_ms']:.2f}]")
            elif r["metric"] == "rss":
                L.append(f"- bench process RSS: {int(r['rss_before_kib'])} KiB before, {int(r['rss_loaded_kib'])} KiB with a datapath loaded; "
                         f"kernel map memory {int(r['map_memlock_bytes']) // 1024} KiB")
            elif r["metric"] == "program size":
                L.append(f"- xdpguard_ingress: {int(r['xlated_insns'])} instructions, {int(r['jited_bytes'])} bytes JITed, "
                         f"{int(r['verified_insns'])} instructions verified")
        L.append("")
    L += ["### Target verdicts of this run (computed)", "", "| target | value | verdict |", "|---|---|---|"]
    for t in result["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        worst = " (%s)" % t["worst_class"] if "worst_class" in t else ""
        L.append(f"| {t['target']}{worst} | {value} | {verdict(t['met'])} |")
    open(f"{out}/summary.md", "w").write("\n".join(L) + "\n")
    print(f"tables: {out}/summary.md")


def plot(scale, by, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    if not scale and not by["veth-set"]:
        return
    fig, (ax, vx) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = {"cidrs-v4": "IPv4 peer set (member)", "cidrs-v6": "IPv6 peer set (member)",
              "ports": "ports/ranges (allowed port)"}
    for dim, sizes in sorted(scale.items()):
        xs = sorted(sizes)
        ys = [sizes[x]["hit_median_ns"] for x in xs]
        lo = [sizes[x]["hit_median_ns"] - sizes[x]["hit_min_ns"] for x in xs]
        hi = [sizes[x]["hit_max_ns"] - sizes[x]["hit_median_ns"] for x in xs]
        line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=labels.get(dim, dim))
        ax.plot(xs, [sizes[x]["miss_median_ns"] for x in xs], ls="--", marker="x",
                color=line[0].get_color(), alpha=0.6, label=labels.get(dim, dim).split(" (")[0] + " (non-member / other port: drop)")
    floor = [r["median_ns"] for r in by["cost"] if r["program"] == "floor"]
    if floor:
        f = statistics.median(floor)
        ax.axhline(f, color="grey", ls="--", label=f"bare XDP_DROP ({f:.1f} ns)")
    xf = [r["median_ns"] for r in by["cost"] if r["program"] == "xdp-filter"]
    if xf:
        f = statistics.median(xf)
        ax.axhline(f, color="red", ls=":", label=f"xdp-filter, 22 ports ({f:.1f} ns)")
    ax.set_xscale("log")
    ax.set_xlabel("set size (CIDRs, or ports/ranges)")
    ax.set_ylabel("ns per packet (BPF_PROG_TEST_RUN, median, min-max)")
    m = (by["machine"] or [{}])[0]
    ax.set_title("BPF_PROG_TEST_RUN: xdpguard cost vs set size", fontsize=9)
    fig.suptitle(f"{m.get('kernel', '?')}, {m.get('vcpus', '?')} vCPU, {m.get('date', '')[:10]}, "
                 f"load average {(m.get('loadavg_start') or ['?'])[0]} at start, {str(m.get('loadavg_end', '?')).split(' ')[0]} at end", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    plot_veth_sets(vx, veth_sets(by["veth-set"]), by["veth-set"])
    fig.tight_layout()
    fig.savefig(f"{out}/cost_vs_size.png", dpi=110)
    print(f"plot: {out}/cost_vs_size.png")


def plot_veth_sets(ax, rows, runs):
    """Receive-side ns/packet on veth against set size: xdpguard and nftables."""
    if not rows:
        ax.set_visible(False)
        return
    colors = {"xdpguard": "tab:blue", "nftables netdev ingress": "tab:orange", "nftables input": "tab:red"}
    for impl in ("xdpguard", "nftables netdev ingress", "nftables input"):
        for fam, ls in ((4, "-"), (6, "--")):
            pts = sorted((r["size"], r) for r in rows if r["impl"] == impl and r["family"] == fam and r["rx_ns_median"])
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1]["rx_ns_median"] for p in pts]
            err = [[y - p[1]["rx_ns_min"] for y, p in zip(ys, pts)], [p[1]["rx_ns_max"] - y for y, p in zip(ys, pts)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", ls=ls, capsize=3, color=colors[impl], label=f"{impl}, IPv{fam}")
    floor = [r["rx_ns_per_packet"] for r in runs if r["case"] == "bare XDP_DROP" and r["rx_ns_per_packet"]]
    if floor:
        f = statistics.median(floor)
        ax.axhline(f, color="grey", ls="--", label=f"bare XDP_DROP ({f:.0f} ns)")
    ax.set_xscale("log")
    ax.set_xlabel("prefixes in the set")
    ax.set_ylabel("receive CPU ns per packet dropped (median, min-max)")
    ax.set_title("veth, live frames: drop by source set, xdpguard vs nftables", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main()
