"""Plots for a harmony-bench report, from DIR/data.json into DIR:
s2-latency-cdf.png (last-receiver latency per target at the largest receiver count),
s2-throughput.png (deliveries per server CPU-second against receivers, per target),
s1-memory.png (bytes per idle connection against connections, per target)."""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = Path(sys.argv[1])
data = json.loads((out / "data.json").read_text())

rounds = data.get("s2", [])
if rounds:
    largest = max(r["conns"] for r in rounds)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for target in sorted({r["target"] for r in rounds}):
        samples = sorted(
            s / 1000 for r in rounds if r["target"] == target and r["conns"] == largest
            for s in r["last_samples"]
        )
        if samples:
            ax.plot(samples, [(i + 1) / len(samples) for i in range(len(samples))], label=target)
    ax.set_xscale("log")
    ax.set_xlabel("last-receiver latency, ms (log)")
    ax.set_ylabel("fraction of messages")
    ax.set_title(f"S2 broadcast, {largest} receivers: last-receiver latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "s2-latency-cdf.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    per = defaultdict(lambda: defaultdict(list))
    for r in rounds:
        if r["server_cpu_secs"] > 0:
            per[r["target"]][r["conns"]].append(r["deliveries"] / r["server_cpu_secs"])
    for target, by_conns in sorted(per.items()):
        xs = sorted(by_conns)
        ax.plot(xs, [statistics.median(by_conns[x]) for x in xs], marker="o", label=target)
    ax.set_xlabel("receivers")
    ax.set_ylabel("deliveries per server CPU-second (median of rounds)")
    ax.set_yscale("log")
    ax.set_title("S2 broadcast: efficiency against connections")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "s2-throughput.png", dpi=110)

steps = data.get("s1", [])
if steps:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for target in sorted({s["target"] for s in steps}):
        mine = [s for s in steps if s["target"] == target]
        ax.plot([s["conns"] for s in mine], [s["user_bytes_per_conn"] / 1024 for s in mine], marker="o", label=f"{target} (user)")
    kernel = [s for s in steps if s["target"] == steps[0]["target"]]
    ax.plot([s["conns"] for s in kernel], [s["kernel_bytes_per_conn"] / 1024 for s in kernel], linestyle="--", color="grey", label="kernel, both ends")
    ax.set_xlabel("idle connections")
    ax.set_ylabel("KiB per connection")
    ax.set_title("S1 memory per idle connection")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "s1-memory.png", dpi=110)
