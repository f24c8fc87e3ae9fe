"""Grading cost next to bare `import torch`, measured in the same run (DESIGN.md section 8).

For each of `--repeats` runs: wall time, and the peak over time of the memory of the whole
process tree (grader parent, fork server, workers), sampled every 10 ms from /proc:
PSS (shared pages split between the processes that share them: what the tree really costs)
and the sum of RSS (what a naive count, or a cgroup without page sharing, would charge).
Writes a JSON file of medians and raw numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def measure(command: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_pss = peak_rss = peak_procs = 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        totals = [_memory_kb(p) for p in pids]
        peak_pss = max(peak_pss, sum(t[0] for t in totals))
        peak_rss = max(peak_rss, sum(t[1] for t in totals))
        peak_procs = max(peak_procs, len(pids))
        time.sleep(0.01)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed: {proc.stderr.read().decode()[-2000:]}")
    return {"wall_s": wall, "peak_pss_mb": peak_pss / 1024, "peak_rss_sum_mb": peak_rss / 1024, "peak_processes": peak_procs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="linear_attention")
    parser.add_argument("--submission", default="examples/linear_attention_submission")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench/results/grading_cost.json")
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp()) / "results.json"
    commands = {
        "bare_import_torch": [sys.executable, "-c", "import torch"],
        "dlgrade_grade": [sys.executable, "-m", "grader", "grade", args.assignment, args.submission,
                          "--results", str(results), "--quiet"],
    }
    raw = {name: [] for name in commands}
    for _ in range(args.repeats):  # interleaved, so drift affects both alike
        for name, command in commands.items():
            raw[name].append(measure(command))
    report = {"assignment": args.assignment, "submission": args.submission, "repeats": args.repeats,
              "cpus": os.cpu_count(), "median": {}, "raw": raw}
    for name, runs in raw.items():
        report["median"][name] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for name, m in report["median"].items():
        print(f"{name:<18} wall {m['wall_s']:.2f} s   peak PSS {m['peak_pss_mb']:.0f} MB   "
              f"peak RSS (summed) {m['peak_rss_sum_mb']:.0f} MB   processes {m['peak_processes']:.0f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
