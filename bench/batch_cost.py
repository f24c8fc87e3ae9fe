"""Batch grading throughput: `dlgrade grade-all` serially and with 2 jobs, against `dlgrade grade`.

    python bench/batch_cost.py [--students 40] [--out bench/results/batch_cost.json]

A class of N linear-attention submissions (a mix: the reference, each known mistake in turn, the
untouched starter, and hostile ones: a syntax error, an exit at import, a function that calls
sys.exit, one that floods its output, one that hangs in one function) is graded three ways, each
into a fresh gradebook, with the staff-value cache of the machine as it is:

  single    `dlgrade grade` once per submission, one after another (what N separate runs cost)
  serial    `dlgrade grade-all --jobs 1`         } --repeats rounds, interleaved, the order
  parallel  `dlgrade grade-all --jobs 2`         } alternating; medians

Reported: wall time, submissions per minute, the parallel speed-up over serial and its
efficiency (speed-up / jobs), and the cost per submission of grade-all (serial) next to a single
`dlgrade grade` (whose every run pays a Python and torch start-up that a batch worker pays once).
Targets (issue "A whole class at once"): speed-up >= 1.8 with 2 jobs on 2 cores; grade-all's cost
per submission no higher than a single grade's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import assignment as assignments  # noqa: E402

HOSTILE = {
    "syntax_error.py": "def softmax_attention(Q, K, V:\n    pass\n",
    "exit_at_import.py": "import os\nos._exit(3)\n",
    "exits_in_a_call.py": "import sys\n\ndef softmax_attention(Q, K, V, causal=False):\n    sys.exit(0)\n",
    "floods_output.py": "def softmax_attention(Q, K, V, causal=False):\n    print('x' * 10_000_000)\n",
    "hangs.py": "def softmax_attention(Q, K, V, causal=False):\n    while True:\n        pass\n",
}


def make_class(folder: Path, students: int) -> None:
    """`students` submissions, cycling through correct, each known mistake, the starter, hostile."""
    assignment = assignments.load("linear_attention")
    reference = (ROOT / "reference" / "attention" / "linear_attention.py").read_text()
    answers = (ROOT / "reference" / "attention" / "answers.toml").read_text()
    kinds = [("correct", reference)] + [(m.name, m.apply(reference)) for m in assignment.mutants] \
        + [("starter", (assignment.starter / "linear_attention.py").read_text())] + list(HOSTILE.items())
    for i in range(students):
        name, source = kinds[i % len(kinds)]
        student = folder / f"s{i:03d}_{Path(name).stem}"
        student.mkdir(parents=True)
        (student / "linear_attention.py").write_text(source)
        (student / "answers.toml").write_text(answers)


def timed(command: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="grade-all rounds (serial and parallel); medians")
    parser.add_argument("--out", default="bench/results/batch_cost.json")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="dlgrade-batch-bench-") as tmp:
        tmp = Path(tmp)
        source = tmp / "class"
        make_class(source, args.students)
        entries = sorted(source.iterdir())
        # warm the staff-value cache and the page cache once, unmeasured
        timed([python, "-m", "grader", "grade", "linear_attention", str(entries[0]), "--results", str(tmp / "w.json"),
               "--quiet"])
        single = sum(timed([python, "-m", "grader", "grade", "linear_attention", str(e), "--results",
                            str(tmp / "single.json"), "--quiet"]) for e in entries)
        samples = {"serial": [], "parallel": []}
        for round_ in range(args.repeats):
            # interleaved, the order alternating, so that a machine getting busier or quieter
            # weighs on both alike
            order = (("serial", 1), ("parallel", 2)) if round_ % 2 == 0 else (("parallel", 2), ("serial", 1))
            for name, jobs in order:
                out = tmp / name
                samples[name].append(timed([python, "-m", "grader", "grade-all", "linear_attention", str(source),
                                            "--out", str(out), "--jobs", str(jobs), "--quiet"]))
                shutil.rmtree(out, ignore_errors=True)
    runs = {"single": single, **{k: statistics.median(v) for k, v in samples.items()}}
    n = args.students
    speedup = runs["serial"] / runs["parallel"]
    report = {
        "students": n, "cpus": os.cpu_count(), "load_after": os.getloadavg(), "repeats": args.repeats,
        "samples_s": {k: [round(x, 2) for x in v] for k, v in samples.items()},
        "wall_s": {k: round(v, 2) for k, v in runs.items()},
        "per_minute": {k: round(60 * n / v, 1) for k, v in runs.items()},
        "per_submission_s": {k: round(v / n, 3) for k, v in runs.items()},
        "speedup_2_jobs": round(speedup, 2), "parallel_efficiency": round(speedup / 2, 2),
        "targets": {"speedup >= 1.8 with 2 jobs": speedup >= 1.8,
                    "grade-all per submission <= a single dlgrade grade": runs["serial"] <= runs["single"]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{n} submissions on {os.cpu_count()} CPUs")
    print(f"{'run':<10} {'wall s':>8} {'per min':>8} {'s each':>7}")
    for k in ("single", "serial", "parallel"):
        print(f"{k:<10} {runs[k]:>8.1f} {report['per_minute'][k]:>8.1f} {report['per_submission_s'][k]:>7.2f}")
    print(f"speed-up with 2 jobs: {speedup:.2f}x (efficiency {speedup / 2:.2f}); rounds: "
          + "; ".join(f"{k} {', '.join(f'{x:.1f}' for x in v)} s" for k, v in samples.items()))
    for target, met in report["targets"].items():
        print(f"  [{'met' if met else 'NOT MET':^9}] {target}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
