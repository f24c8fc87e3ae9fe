"""Grading cost side by side with the floor grader, measured in one run (DESIGN.md section 8).

    python bench/grading_cost.py [--assignment A] [--submission S] [--repeats 5] [--minbert]

Runs, interleaved round by round (so that a machine getting busier or quieter affects all alike,
and the order rotates so that none always follows the same neighbour):

  import_torch       `python -c "import torch"`: what any PyTorch grader pays before grading
  floor              bench/floor_grader.py on SUBMISSION: gradescope-utils style, no isolation
  dlgrade            `python -m grader grade A SUBMISSION --quiet`
  dlgrade_correct    dlgrade on the staff reference submitted as the student's files (full marks)
  dlgrade_failing    the same with one known mistake applied (assignments/A/mistakes.py, through
                     grader.mutants): several cases fail, and their feedback looks for the mistake
  dlgrade_minbert    (--minbert) dlgrade on the minbert reference as a submission

Each run is measured by bench/meter.py under a memory limit (Gradescope's 768 MB by default):
wall time, CPU time of the whole process tree, the cgroup's peak usage and the peak of anonymous
memory. One unmeasured warm-up round first (--warmup) puts every file the runs read in the page
cache, so no run is charged for reading torch's libraries from disk (see meter.py).

dlgrade keeps the reference's and the known mistakes' values in a disk cache (grader/oracle.py),
warm on Gradescope (the image's setup.sh fills it). The benchmark gives dlgrade a cache of its
own (DLGRADE_CACHE_DIR in the scratch directory), never the machine's: with --oracle-cache warm
(the default) the warm-up round fills it, as on Gradescope; with `off` every run computes every
staff value itself, as a first-ever run would.

Writes a JSON report (medians, ratios to the floor, targets, raw runs, machine) and prints a
table. A run that fails (nonzero exit, timeout, OOM kill, no results.json) is reported loudly,
kept in the raw runs, left out of the medians, and makes the exit status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import meter

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("wall_s", "cpu_s", "peak_total_mb", "peak_anon_mb", "peak_processes")
RATIOS = {"wall": "wall_s", "cpu": "cpu_s", "anon": "peak_anon_mb", "peak": "peak_total_mb"}
FAILING_MARGIN = 1.05      # "no dearer": within the noise of a median of 5 on a quiet machine


@dataclass
class Run:
    name: str
    what: str
    command: list[str]
    assignment: str | None = None        # what it grades: ratios to the floor only for the floor's own
    results: Path | None = None          # the results.json it must write
    repeats: int = 1
    env: dict | None = None
    measured: list = field(default_factory=list)
    warmups: list = field(default_factory=list)


# ---- submissions made for the benchmark ---------------------------------------------------------

def _manifest(assignment: str) -> dict:
    with open(ROOT / "assignments" / assignment / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def reference_submission(assignment: str, where: Path) -> Path:
    """The staff reference copied under the student-facing file names of the manifest's
    [reference] table: a submission that earns full marks."""
    where.mkdir(parents=True, exist_ok=True)
    for student_name, source in _manifest(assignment).get("reference", {}).items():
        shutil.copyfile(ROOT / source, where / student_name)
    return where


def _mutants(assignment: str) -> list:
    """The assignment's known mistakes. mistakes.py imports only grader.mutants: loading it here
    keeps torch out of the measuring process."""
    path = ROOT / "assignments" / assignment / "mistakes.py"
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location(f"bench_mistakes_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.MUTANTS)


def failing_submission(assignment: str, correct: Path, where: Path, mistake: str | None) -> tuple[Path, str]:
    """The correct submission with one known mistake applied by its own patch."""
    mutants = _mutants(assignment)
    if not mutants:
        raise SystemExit(f"grading_cost: {assignment} lists no known mistakes to make a failing submission from")
    chosen = next((m for m in mutants if m.name == mistake), None) if mistake else mutants[0]
    if chosen is None:
        raise SystemExit(f"grading_cost: no mistake {mistake!r} in {assignment}; known: {[m.name for m in mutants]}")
    shutil.copytree(correct, where)
    target = where / chosen.file
    target.write_text(chosen.apply(target.read_text()))
    return where, chosen.name


# ---- the runs -----------------------------------------------------------------------------------

def grader_env(scratch: Path, mode: str) -> dict:
    """dlgrade's staff-value cache: the benchmark's own, so that its state is known."""
    return {**os.environ, "DLGRADE_CACHE_DIR": "off" if mode == "off" else str(scratch / "oracle-cache")}


def plan(args, scratch: Path) -> list[Run]:
    py = sys.executable
    submission = str(Path(args.submission).resolve())
    env = grader_env(scratch, args.oracle_cache)

    def grade(name: str, what: str, assignment: str, path: Path | str, repeats: int, extra=()) -> Run:
        results = scratch / f"{name}.results.json"
        command = [py, "-m", "grader", "grade", assignment, str(path), "--results", str(results), "--quiet", *extra]
        return Run(name, what, command, assignment, results, repeats, env)

    floor_results = scratch / "floor.results.json"
    runs = [
        Run("import_torch", "bare `import torch`", [py, "-c", "import torch"], None, None, args.repeats),
        Run("floor", f"floor grader on {args.submission}", [py, str(ROOT / "bench" / "floor_grader.py"),
            args.assignment, submission, "--results", str(floor_results)], args.assignment, floor_results,
            args.repeats),
        grade("dlgrade", f"dlgrade on {args.submission}", args.assignment, submission, args.repeats),
    ]
    if not args.no_failing:
        correct = reference_submission(args.assignment, scratch / "correct")
        failing, mistake = failing_submission(args.assignment, correct, scratch / "failing", args.mistake)
        runs.append(grade("dlgrade_correct", "dlgrade on the reference as a submission", args.assignment, correct,
                          args.repeats))
        runs.append(grade("dlgrade_failing", f"dlgrade on the reference with the mistake {mistake}", args.assignment,
                          failing, args.repeats))
    if args.minbert:
        extra = ("--data-dir", args.minbert_data_dir) if args.minbert_data_dir else ()
        runs.append(grade("dlgrade_minbert", "dlgrade on the minbert reference as a submission", "minbert",
                          reference_submission("minbert", scratch / "minbert"), args.minbert_repeats, extra))
    return runs


def _results_score(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        results = json.loads(path.read_text())
        return {"score": results["score"], "max_score": sum(t.get("max_score", 0) for t in results["tests"]),
                "failed_cases": sum(1 for t in results["tests"] if t.get("score", 0) < t.get("max_score", 0))}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"results_error": f"{path.name}: {exc}"}


def measure_once(run: Run, args) -> dict:
    if run.results is not None and run.results.exists():
        run.results.unlink()
    result = meter.measure(run.command, memory_limit_mb=args.memory_limit_mb or None, env=run.env, cwd=str(ROOT),
                           timeout_s=args.timeout_s)
    record = result.to_dict()
    record["extra"].update(_results_score(run.results))
    problems = []
    if result.returncode != 0:
        problems.append(f"exit status {result.returncode}")
    if result.timed_out:
        problems.append(f"killed after {args.timeout_s:g} s")
    if result.oom_kills:
        problems.append(f"{result.oom_kills} process(es) OOM-killed at the {result.memory_limit_mb} MB limit")
    if "results_error" in record["extra"]:
        problems.append(f"no readable results.json ({record['extra']['results_error']})")
    record["ok"] = not problems
    record["problems"] = problems
    return record


def _shout(run: Run, round_name: str, record: dict) -> None:
    bar = "!" * 78
    print(f"\n{bar}\nFAILED RUN: {run.name} ({round_name}): {'; '.join(record['problems'])}\n"
          f"command: {' '.join(record['command'])}\n"
          f"stderr tail:\n{record['stderr_tail'].strip() or '(empty)'}\n{bar}\n",
          file=sys.stderr, flush=True)


def execute(runs: list[Run], args) -> None:
    rounds = [("warm-up", i) for i in range(args.warmup)] + [("round", i) for i in range(max(r.repeats for r in runs))]
    for kind, index in rounds:
        active = [r for r in runs if kind == "warm-up" or index < r.repeats]
        shift = index % len(active)
        for run in active[shift:] + active[:shift]:
            record = measure_once(run, args)
            record["round"] = f"{kind} {index + 1}"
            (run.warmups if kind == "warm-up" else run.measured).append(record)
            if not record["ok"]:
                _shout(run, record["round"], record)
            if not args.quiet:
                print(f"  {record['round']:<10} {run.name:<16} {record['wall_s']:6.2f} s wall  "
                      f"{record['cpu_s']:6.2f} s CPU  {record['peak_total_mb']:5.0f} MB peak  "
                      f"{record['peak_anon_mb']:5.0f} MB anon"
                      + ("" if record["ok"] else "  FAILED"), flush=True)


# ---- the report ---------------------------------------------------------------------------------

def _median(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r["ok"]]
    return round(statistics.median(values), 3) if values else None


def _summary(run: Run, floor: Run | None) -> dict:
    ok = [r for r in run.measured if r["ok"]]
    median = {key: _median(run.measured, key) for key in METRICS}
    out = {"what": run.what, "command": run.command, "runs": len(run.measured),
           "failed_runs": len(run.measured) - len(ok), "median": median}
    scores = {(r["extra"].get("score"), r["extra"].get("max_score")) for r in ok if "score" in r["extra"]}
    if scores:
        out["score"] = [f"{s:g} / {m:g}" for s, m in sorted(scores)]
    if floor is not None and run is not floor and run.assignment in (None, floor.assignment):
        base = {key: _median(floor.measured, key) for key in METRICS}
        out["ratio_to_floor"] = {name: (round(median[key] / base[key], 3) if median[key] and base[key] else None)
                                 for name, key in RATIOS.items()}
    return out


def _target(name: str, value: float | None, limit: float, unit: str = "") -> dict:
    return {"target": name, "value": value, "limit": limit, "unit": unit,
            "met": None if value is None else value <= limit}


def targets(assignment: str, summaries: dict) -> list[dict]:
    def ratio(a: str, b: str, key: str) -> float | None:
        x = summaries.get(a, {}).get("median", {}).get(key)
        y = summaries.get(b, {}).get("median", {}).get(key)
        return round(x / y, 3) if x and y else None

    found = [
        _target(f"{assignment}: dlgrade wall time <= 1.5x the floor's", ratio("dlgrade", "floor", "wall_s"), 1.5, "x"),
        _target(f"{assignment}: dlgrade anonymous memory <= 1.3x the floor's",
                ratio("dlgrade", "floor", "peak_anon_mb"), 1.3, "x"),
    ]
    if "dlgrade_failing" in summaries:
        for label, key in (("wall time", "wall_s"), ("CPU time", "cpu_s"), ("cgroup peak", "peak_total_mb")):
            found.append(_target(f"{assignment}: a failing submission no dearer than a correct one ({label}, "
                                 f"within {FAILING_MARGIN:g}x)", ratio("dlgrade_failing", "dlgrade_correct", key),
                                 FAILING_MARGIN, "x"))
    if "dlgrade_minbert" in summaries:
        found.append(_target("minbert: cgroup peak of the whole tree under 450 MB",
                             summaries["dlgrade_minbert"]["median"]["peak_total_mb"], 450.0, "MB"))
    return found


def _sanity(runs: dict[str, Run]) -> list[str]:
    """The failing submission must lose points and the correct one must not, or their comparison
    measures nothing."""
    def scores(name: str) -> set:
        return {(r["extra"]["score"], r["extra"]["max_score"]) for r in runs[name].measured
                if r["ok"] and "score" in r["extra"]} if name in runs else set()
    problems = []
    if any(score >= maximum for score, maximum in scores("dlgrade_failing")):
        problems.append("the failing submission earned full marks: it does not fail (pick another --mistake)")
    if any(score < maximum for score, maximum in scores("dlgrade_correct")):
        problems.append("the reference submitted as a student's files lost points: the 'correct' run is not correct")
    return problems


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_digest() -> str:
    """Everything a grading run executes of ours: a change while the benchmark runs (someone
    editing grader/) makes its rounds incomparable, and the staff-value cache stale."""
    digest = hashlib.sha256()
    for folder in ("grader", "assignments", "reference", "bench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".toml") and "results" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine(load_before: tuple) -> dict:
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    changed = [line[3:] for line in _git("status", "--porcelain", "--", "grader").splitlines()]
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "torch": torch_version, "python": platform.python_version(), "kernel": platform.release(),
            "cgroups": meter.describe(), "git_head": _git("rev-parse", "--short", "HEAD"),
            "grader_uncommitted_changes": changed}


def print_table(summaries: dict, found: list[dict]) -> None:
    print(f"\n{'run':<17}{'score':>12}{'wall s':>9}{'CPU s':>8}{'peak MB':>9}{'anon MB':>9}{'procs':>6}"
          f"{'wall/fl':>9}{'CPU/fl':>8}{'anon/fl':>9}{'failed':>8}")

    def show(value, fmt):
        width = int(fmt.split(".")[0])
        return format(value, fmt) if value is not None else "-".rjust(width)
    for name, s in summaries.items():
        m, r = s["median"], s.get("ratio_to_floor", {})
        score = s["score"][0] if len(s.get("score", [])) == 1 else ("varies" if s.get("score") else "-")
        print(f"{name:<17}{score:>12}{show(m['wall_s'], '9.2f')}{show(m['cpu_s'], '8.2f')}"
              f"{show(m['peak_total_mb'], '9.0f')}{show(m['peak_anon_mb'], '9.0f')}"
              f"{show(m['peak_processes'], '6.0f')}{show(r.get('wall'), '9.2f')}{show(r.get('cpu'), '8.2f')}"
              f"{show(r.get('anon'), '9.2f')}{s['failed_runs']:>8}")
    print()
    for t in found:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        value = "-" if t["value"] is None else f"{t['value']:g}{t['unit']}"
        print(f"  [{verdict:^12}] {t['target']}: {value} (limit {t['limit']:g}{t['unit']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="linear_attention")
    parser.add_argument("--submission", default="examples/linear_attention_submission")
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--mistake", help="the known mistake of the failing submission (default: the first listed)")
    parser.add_argument("--no-failing", action="store_true", help="skip the correct/failing pair")
    parser.add_argument("--minbert", action="store_true", help="also grade the minbert reference as a submission")
    parser.add_argument("--minbert-repeats", type=int, default=3)
    parser.add_argument("--minbert-data-dir", help="minbert's data directory (default: as dlgrade finds it)")
    parser.add_argument("--memory-limit-mb", type=int, default=768, help="per run; 0: none (default: Gradescope's 768)")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="a run taking longer is killed and reported")
    parser.add_argument("--oracle-cache", choices=["warm", "off"], default="warm",
                        help="dlgrade's staff-value disk cache: warm (filled by the warm-up round, as on Gradescope) "
                             "or off (every run computes the reference's and the mistakes' values)")
    parser.add_argument("--out", default="bench/results/grading_cost.json")
    parser.add_argument("--quiet", action="store_true", help="only the final table")
    args = parser.parse_args()
    if args.repeats < 1 or args.minbert_repeats < 1:
        parser.error("--repeats and --minbert-repeats must be at least 1")
    if not Path(args.submission).exists():
        parser.error(f"--submission {args.submission}: no such file or directory")
    if args.oracle_cache == "warm" and args.warmup < 1:
        print("grading_cost: note: --warmup 0 with a warm cache: the first measured round fills it and pays for it",
              file=sys.stderr)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    digest_before = code_digest()
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as scratch:
        runs = plan(args, Path(scratch))
        execute(runs, args)
    by_name = {r.name: r for r in runs}
    summaries = {r.name: _summary(r, by_name["floor"]) for r in runs}
    found = targets(args.assignment, summaries)
    sanity = _sanity(by_name)
    failed = sum(s["failed_runs"] for s in summaries.values()) + sum(not w["ok"] for r in runs for w in r.warmups)
    changed = code_digest() != digest_before
    report = {
        "started": started, "assignment": args.assignment, "submission": args.submission, "repeats": args.repeats,
        "warmup": args.warmup, "memory_limit_mb": args.memory_limit_mb or None, "sample_s": meter.SAMPLE_S,
        "oracle_cache": args.oracle_cache, "code_digest": digest_before, "code_changed_during_run": changed,
        "machine": machine(load_before), "runs": summaries, "targets": found, "sanity_problems": sanity,
        "failed_runs": failed,
        "raw": {r.name: r.measured for r in runs}, "warmup_raw": {r.name: r.warmups for r in runs},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(summaries, found)
    m = report["machine"]
    print(f"\n  {m['nproc']} CPUs, load {m['load_average_before']} before, {m['load_average_after']} after; "
          f"torch {m['torch']}; memory limit {args.memory_limit_mb or 'none'} MB; "
          f"staff-value cache {args.oracle_cache}; medians of {args.repeats}; wrote {out}")
    for problem in sanity:
        print(f"\n  WARNING: {problem}", file=sys.stderr)
    if changed:
        print("\n  WARNING: grader/, assignments/, reference/ or bench/ changed while the benchmark ran: its rounds "
              "measured different code; run it again on a quiet checkout", file=sys.stderr)
    if failed:
        print(f"\n  {failed} RUN(S) FAILED: see the messages above and `raw` in {out}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
