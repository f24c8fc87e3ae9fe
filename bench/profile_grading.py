"""Where the time of one `dlgrade grade` goes, phase by phase, in the parent and in the worker.

    python bench/profile_grading.py [--assignment A] [--submission S] [--oracle-cache warm|off]

After one warm-up grade that fills the staff-value cache (--oracle-cache warm, as on Gradescope;
`off`: every staff value is computed), two fresh interpreters grade the submission in-process, as
`python -m grader grade` would (this script calls grader.cli.main):

  phases    grader functions wrapped with timers (this script only; grader/ is never edited),
            while this script samples the anonymous memory of each process of the tree by role
            (parent, fork server, worker, bounded helpers).
            Time is exclusive: a phase's nested phases are subtracted from it, so the phases
            add up to the run's wall time. The worker's side of each request comes from the
            `wall` its reply carries (grader/sandbox/worker.py measures it around the request);
            the rest of the round trip is the wire (encoding, the socket, decoding).
  cprofile  cProfile of the parent, of the worker (its request handlers, profiled inside the
            sandbox and collected from its scratch directory before the run directory is
            removed) and of the bounded helpers (complexity replay, symbolic answers).

Prints the breakdown and writes bench/results/profile.json, plus the .prof files beside it
(`python -m pstats bench/results/profile/parent.prof` to explore them).

The wrapped names follow grader/ as it is; a name that no longer exists is reported as not
instrumented (its time then shows under the enclosing phase), never an error.
"""
from __future__ import annotations

import time

_STARTED = time.perf_counter()      # before any import of ours: the interpreter's own start ends here

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER_PROFILE = ".bench-worker.prof"


def _seconds_since_exec() -> float:
    """How long this process has existed (the kernel's start time, 10 ms resolution)."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


INTERPRETER_S = _seconds_since_exec() - (time.perf_counter() - _STARTED)


# ---- exclusive phase timing ---------------------------------------------------------------------

class Phases:
    """Exclusive seconds per phase: the time of nested phases is subtracted from the enclosing
    one, so that the phases of a run add up to its wall time."""

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter = collections.Counter()
        self.stack: list[list] = []           # [label, seconds spent in nested phases]

    @contextlib.contextmanager
    def __call__(self, label: str | None):
        if label is None:
            yield
            return
        start = time.perf_counter()
        self.stack.append([label, 0.0])
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            _, nested = self.stack.pop()
            self.add(label, elapsed - nested, elapsed)

    def add(self, label: str, seconds: float, enclosing: float | None = None) -> None:
        """`seconds` to `label`; `enclosing` (default the same) is taken from the current phase."""
        self.seconds[label] += seconds
        self.calls[label] += 1
        if self.stack:
            self.stack[-1][1] += seconds if enclosing is None else enclosing

    def inside(self, *labels: str) -> bool:
        return any(entry[0] in labels for entry in self.stack)

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)


PHASES = Phases()
NOT_INSTRUMENTED: list[str] = []
HINTS = "mistake hints: compare with the known mistakes"


def _resolve(path: str):
    """("grader.context", "GradingContext.hint") -> (owner, attribute name) or None."""
    module_name, _, qualname = path.partition(":")
    try:
        owner = __import__(module_name, fromlist=["_"])
    except ImportError:
        return None
    *parents, attr = qualname.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, attr) if hasattr(owner, attr) else None


def wrap(path: str, label, around=None) -> bool:
    """Time calls of `module:qualname` as the phase `label` (a string, or a function of the call's
    arguments giving one, None for no phase). `around(original, *args, **kwargs)` replaces the
    call where more than timing is needed."""
    found = _resolve(path)
    if found is None:
        NOT_INSTRUMENTED.append(path)
        return False
    owner, attr = found
    raw = owner.__dict__.get(attr) if isinstance(owner, type) else None
    kind = type(raw) if isinstance(raw, (classmethod, staticmethod)) else None
    original = getattr(owner, attr)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        name = label(*args, **kwargs) if callable(label) else label
        with PHASES(name):
            return around(original, *args, **kwargs) if around else original(*args, **kwargs)

    if kind is classmethod:
        setattr(owner, attr, classmethod(lambda cls, *a, **k: timed(*a, **k)))
    elif kind is staticmethod:
        setattr(owner, attr, staticmethod(timed))
    else:
        setattr(owner, attr, timed)
    return True


# ---- what the worker did, from its replies ------------------------------------------------------

REQUESTS: list[dict] = []


def _worker_request(original, worker, message, timeout, *args, **kwargs):
    """A request's round trip, split into the worker's own time (the reply's `wall`) and the wire."""
    start = time.perf_counter()
    reply = original(worker, message, timeout, *args, **kwargs)
    elapsed = time.perf_counter() - start
    wall = reply.get("wall") if isinstance(reply, dict) else None
    wall = min(float(wall), elapsed) if isinstance(wall, (int, float)) else 0.0
    op = message.get("op")
    kind = "import student modules" if op == "import" else {
        "call": "student calls", "record": "complexity: student calls under the operation recorder",
    }.get(message.get("measure"), f"{message.get('measure')} requests")
    PHASES.add(f"worker: {kind}", wall, elapsed)
    PHASES.add("wire: parent <-> worker (encode, socket, decode)", elapsed - wall, 0.0)
    REQUESTS.append({"op": op, "measure": message.get("measure"), "round_trip_s": round(elapsed, 4),
                     "worker_s": round(wall, 4)})
    return reply


# ---- per case -----------------------------------------------------------------------------------

CASES: list[dict] = []


def _run_case(original, case, ctx, *args, **kwargs):
    before = PHASES.snapshot()
    start = time.perf_counter()
    verdict = original(case, ctx, *args, **kwargs)
    after = PHASES.snapshot()
    spent = {k: round(v - before.get(k, 0.0), 4) for k, v in after.items() if v - before.get(k, 0.0) > 5e-4}
    CASES.append({"case": case.name, "kind": type(case).__name__, "seconds": round(time.perf_counter() - start, 4),
                  "passed": getattr(verdict, "status", "") == "passed", "phases": spent})
    return verdict


def _judge_label(ctx, fn, *args, **kwargs):
    name = getattr(fn, "__name__", "")
    if "replay" in name:
        return "complexity: replay + count the trace (bounded helper)"
    if "answer" in name:
        return "symbolic answers (bounded helper)"
    return f"bounded helper: {name or 'judge'}"


def _staff_compute_label(*args, **kwargs):
    return "mistake hints: compute the mistakes' values" if PHASES.inside(HINTS) else \
        "reference: compute expected values"


def _compare_label(*args, **kwargs):
    return None if PHASES.inside(HINTS) else "compare with the expected value"


def instrument_phases() -> None:
    wrap("grader.sandbox.zygote:Sandbox.start", "sandbox: start the fork server (zygote)")
    wrap("grader.sandbox.zygote:Sandbox.spawn", "worker: spawn (fork, namespaces, mounts, uid, ready)")
    wrap("grader.sandbox.zygote:Worker.request", None, _worker_request)
    wrap("grader.sandbox.zygote:Worker.kill", "teardown: kill worker, wait for its exit status")
    wrap("grader.sandbox.zygote:Sandbox.close", "teardown: stop the fork server")
    wrap("grader.cli:_check_grade_paths", "command line: check paths")
    wrap("grader.assignment:load", "assignment: load manifest, cases, mistakes")
    wrap("grader.submission:load", "submission: load files")
    wrap("grader.sandbox.uids:SandboxUid.acquire", "sandbox uid: acquire")
    wrap("grader.sandbox.uids:SandboxUid.release", "teardown: release the sandbox uid")
    wrap("grader.sandbox.cleanup:RunDirectory.__init__", "run directory: create (and sweep stale ones)")
    wrap("grader.sandbox.cleanup:RunDirectory.close", "teardown: remove the run directory")
    wrap("grader.student:StudentProcess._scratch", "worker: write the scratch files")
    wrap("grader.student:StudentProcess._start", "worker: start (parent side)")
    wrap("grader.student:StudentProcess.request", "student calls: parent side (request, output, checks)")
    wrap("grader.context:GradingContext.inputs", "inputs: build seeded tensors")
    wrap("grader.context:GradingContext.hint", HINTS)
    wrap("grader.context:GradingContext.judge", _judge_label)
    wrap("grader.oracle:Oracle.__init__", "staff values: assignment version digest")
    wrap("grader.oracle:Oracle.reference_modules", "staff code: load the reference modules")
    wrap("grader.oracle:Oracle.mutant_modules", "staff code: load the mistakes' modules")
    wrap("grader.oracle:Oracle._compute", _staff_compute_label)
    wrap("grader.oracle:Oracle._load", "staff values: disk cache read")
    wrap("grader.oracle:Oracle._store", "staff values: disk cache write")
    wrap("grader.cases:Value.compare", _compare_label)
    wrap("grader.runner:_run_case", None, _run_case)
    wrap("grader.results:gradescope_results", "results: build results.json")
    wrap("grader.results:write_results", "results: write results.json")


# ---- cProfile of the parent, the worker and the bounded helpers ---------------------------------

def instrument_profiles(out: Path) -> None:
    """The worker and the helpers are forked from this process: what is patched here before the
    fork server starts runs there too."""
    import cProfile

    import grader.bounded as bounded
    import grader.sandbox.worker as worker
    import grader.sandbox.zygote as zygote

    state = {"profile": None}

    def in_worker(original, scratch_index):
        def profiled(*args):
            if state["profile"] is None:
                state["profile"] = cProfile.Profile()
            state["profile"].enable()
            try:
                return original(*args)
            finally:
                state["profile"].disable()
                try:   # the worker's own scratch directory: the one place it may write
                    state["profile"].dump_stats(os.path.join(args[scratch_index], WORKER_PROFILE))
                except OSError:
                    pass
        return profiled

    for name, index in (("_run", 2), ("_import", 1)):
        if hasattr(worker, name):
            setattr(worker, name, in_worker(getattr(worker, name), index))
        else:
            NOT_INSTRUMENTED.append(f"grader.sandbox.worker:{name} (worker profile)")

    zygote_main = getattr(zygote, "_zygote", None)

    def quiet_zygote(*args, **kwargs):
        sys.setprofile(None)       # the parent's profiler is inherited through the fork: not here
        return zygote_main(*args, **kwargs)
    if zygote_main is not None:
        zygote._zygote = quiet_zygote
    else:
        NOT_INSTRUMENTED.append("grader.sandbox.zygote:_zygote (the fork server then profiles too)")

    bounded_run = bounded.run

    def profiled_run(fn, *args, **kwargs):
        @functools.wraps(fn)
        def helper(*a):
            profile = cProfile.Profile()
            profile.enable()
            try:
                return fn(*a)
            finally:
                profile.disable()
                profile.dump_stats(out / f"helper-{getattr(fn, '__name__', 'fn')}-{os.getpid()}.prof")
        return bounded_run(helper, *args, **kwargs)
    bounded.run = profiled_run

    def collect(original, process, *args, **kwargs):
        for path in Path(process.run_dir).glob(f"worker*/{WORKER_PROFILE}"):
            shutil.copyfile(path, out / f"worker-{path.parent.name}.prof")
        return original(process, *args, **kwargs)
    wrap("grader.student:StudentProcess.close", None, collect)


# ---- the child: one grade, in-process -----------------------------------------------------------

def child(args) -> int:
    out = Path(args.child_out)
    start = time.perf_counter()
    import torch  # noqa: F401
    torch_s = time.perf_counter() - start
    start = time.perf_counter()
    import grader.cli as cli
    grader_imports_s = time.perf_counter() - start
    if args.child == "phases":
        instrument_phases()
    else:
        instrument_profiles(out)
    argv = ["grade", args.assignment, args.submission, "--results", str(out / "results.json"), "--quiet"]
    profile = None
    if args.child == "cprofile":
        import cProfile
        profile = cProfile.Profile()
        profile.enable()
    start = time.perf_counter()
    with PHASES("grader parent: other (not in a wrapped function)"):
        status = cli.main(argv)
    grade_s = time.perf_counter() - start
    if profile is not None:
        profile.disable()
        profile.dump_stats(out / "parent.prof")
    report = {"status": status, "interpreter_s": round(INTERPRETER_S, 3), "import_torch_s": round(torch_s, 3),
              "grader_imports_s": round(grader_imports_s, 3), "grade_s": round(grade_s, 3),
              "phases": {k: round(v, 4) for k, v in PHASES.seconds.items()}, "calls": dict(PHASES.calls),
              "cases": CASES, "requests": REQUESTS, "not_instrumented": NOT_INSTRUMENTED}
    (out / "child.json").write_text(json.dumps(report, indent=2))
    return status


# ---- memory by process role, sampled from outside ------------------------------------------------

ROLES_BY_DEPTH = {1: "fork server (zygote)", 2: "worker setup process", 3: "worker"}


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, first word of its command line)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().split(b"\0")[0].decode(errors="replace")
            table[int(entry)] = (ppid, command)
        except (OSError, IndexError, ValueError):
            pass
    return table


def _roles(root: int) -> dict[int, str]:
    """The grader's processes by what they are: the fork server and its descendants rename
    themselves `dlgrade-sandbox`; the parent's other children are bounded helpers."""
    table = _process_table()
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    roles = {root: "parent"}
    stack = [(pid, 1, None) for pid in children[root]]
    while stack:
        pid, depth, inherited = stack.pop()
        sandbox = table.get(pid, (0, ""))[1].startswith("dlgrade-sandbox")
        role = inherited or (ROLES_BY_DEPTH.get(depth, "worker") if sandbox else "bounded helper")
        roles[pid] = role
        below = "student's own processes" if role == "worker" else (role if role == "bounded helper" else None)
        stack += [(child, depth + 1, below) for child in children[pid]]
    return roles


def _anon_kb(pid: int) -> tuple[int, int]:
    """(Pss_Anon, Private_Dirty): anonymous pages with those shared copy-on-write split between
    their sharers (the processes' numbers add up to what the tree holds), and the pages only this
    process has (what it adds; nearly all anonymous)."""
    found = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss_Anon", "Private_Dirty"):
                    found[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found.get("Pss_Anon", 0), found.get("Private_Dirty", 0)


def sample_memory(process: subprocess.Popen, period: float = 0.02) -> dict:
    """Peak anonymous memory of the tree and, at that moment, its split by role (each role's own
    private pages, and the pages they share); each role's own peak."""
    peak_total, at_peak, private_at_peak, role_peaks = 0, {}, {}, collections.Counter()
    while process.poll() is None:
        pss: collections.Counter = collections.Counter()
        private: collections.Counter = collections.Counter()
        for pid, role in _roles(process.pid).items():
            pss_kb, private_kb = _anon_kb(pid)
            pss[role] += pss_kb
            private[role] += private_kb
        for role, kb in pss.items():
            role_peaks[role] = max(role_peaks[role], kb)
        if sum(pss.values()) > peak_total:
            peak_total, at_peak, private_at_peak = sum(pss.values()), dict(pss), dict(private)
        time.sleep(period)
    mb = lambda kb: round(kb / 1024, 1)   # noqa: E731
    shared = peak_total - sum(private_at_peak.values())
    return {"peak_anon_mb": mb(peak_total), "at_peak_pss_by_role_mb": {r: mb(v) for r, v in at_peak.items()},
            "at_peak_private_by_role_mb": {**{r: mb(v) for r, v in private_at_peak.items()},
                                           "shared copy-on-write between them": mb(shared)},
            "peak_pss_by_role_mb": {r: mb(v) for r, v in role_peaks.items()}, "sample_s": period}


# ---- the orchestrator ---------------------------------------------------------------------------

def _run(command: list[str], env: dict, what: str, timeout: float, sample: bool = False) -> dict:
    """Run a grade to completion (sampling its memory by role if asked); stop on failure."""
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            memory = sample_memory(process) if sample else {}
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            err.seek(0)
            raise SystemExit(f"profile_grading: {what} failed (exit status {process.returncode}):\n"
                             f"{err.read()[-3000:].decode(errors='replace')}")
    return memory


def _top(stats_files: list[Path], key: str, limit: int, ours_only: bool) -> list[dict]:
    import pstats

    if not stats_files:
        return []
    stats = pstats.Stats(*map(str, stats_files))
    rows = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in stats.stats.items():
        if ours_only and not any(part in filename for part in ("/grader/", "/assignments/", "/reference/", "<reference",
                                                                "<mutant", "<support")):
            continue
        if "profile_grading.py" in filename:
            continue
        where = f"{os.path.relpath(filename, ROOT) if filename.startswith(str(ROOT)) else filename}:{line}"
        rows.append({"function": function, "where": where, "calls": calls, "tottime_s": round(tottime, 4),
                     "cumtime_s": round(cumtime, 4)})
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:limit]


def profiles(folder: Path, keep: Path) -> dict:
    """Merge the .prof files by process kind, keep them, and list the heaviest functions."""
    import pstats

    keep.mkdir(parents=True, exist_ok=True)
    found = {"parent": [folder / "parent.prof"], "worker": sorted(folder.glob("worker-*.prof")),
             "helpers": sorted(folder.glob("helper-*.prof"))}
    out = {}
    for kind, files in found.items():
        files = [f for f in files if f.is_file()]
        if not files:
            out[kind] = {"files": 0}
            continue
        pstats.Stats(*map(str, files)).dump_stats(str(keep / f"{kind}.prof"))
        out[kind] = {"files": len(files), "prof": str(keep / f"{kind}.prof"),
                     "top_self_time": _top(files, "tottime_s", 25, ours_only=False),
                     "top_cumulative_ours": _top(files, "cumtime_s", 25, ours_only=True)}
    return out


def breakdown(child_report: dict, total_s: float) -> list[dict]:
    rows = [{"phase": "interpreter start", "seconds": child_report["interpreter_s"]},
            {"phase": "import torch", "seconds": child_report["import_torch_s"]},
            {"phase": "grader imports (before the fork server)", "seconds": child_report["grader_imports_s"]}]
    rows += [{"phase": k, "seconds": v} for k, v in sorted(child_report["phases"].items(), key=lambda kv: -kv[1])]
    # torch's teardown at exit, this script's own bookkeeping, the kernel reaping the process
    rows.append({"phase": "exit and unaccounted", "seconds": round(total_s - sum(r["seconds"] for r in rows), 4)})
    for row in rows:
        row["share"] = round(row["seconds"] / total_s, 4) if total_s else None
    return rows


def by_case_kind(cases: list[dict]) -> dict:
    kinds: dict = {}
    for case in cases:
        entry = kinds.setdefault(case["kind"], {"cases": 0, "seconds": 0.0, "phases": collections.Counter()})
        entry["cases"] += 1
        entry["seconds"] += case["seconds"]
        entry["phases"].update(case["phases"])
    return {k: {"cases": v["cases"], "seconds": round(v["seconds"], 3),
                "phases": {p: round(s, 3) for p, s in v["phases"].most_common()}} for k, v in kinds.items()}


def print_report(report: dict) -> None:
    total = report["total_s"]
    print(f"\nwhere the time goes: dlgrade grade {report['assignment']} {report['submission']}  "
          f"(one run, {total:.2f} s from exec to exit; staff-value cache {report['oracle_cache']})\n")
    for row in report["breakdown"]:
        if row["seconds"] >= 0.005:
            print(f"  {row['seconds']:7.3f} s {100 * (row['share'] or 0):5.1f}%  {row['phase']}")
    print("\n  by kind of case (seconds inside the cases, with their largest phases):")
    for kind, entry in report["by_case_kind"].items():
        top = ", ".join(f"{p} {s:.2f}" for p, s in list(entry["phases"].items())[:4])
        print(f"    {kind:<12} {entry['cases']:>3} cases {entry['seconds']:7.2f} s   {top}")
    memory = report.get("memory") or {}
    if memory:
        def listed(values: dict) -> str:
            return ", ".join(f"{r} {v:.0f}" for r, v in sorted(values.items(), key=lambda kv: -kv[1]))
        print(f"\n  anonymous memory (sampled every {memory['sample_s'] * 1000:.0f} ms): "
              f"peak {memory['peak_anon_mb']:.0f} MB"
              f"\n    at the peak, private pages: {listed(memory['at_peak_private_by_role_mb'])} MB"
              f"\n    at the peak, Pss_Anon by role: {listed(memory['at_peak_pss_by_role_mb'])} MB")
    slow = sorted(report["cases"], key=lambda c: -c["seconds"])[:5]
    print("\n  slowest cases:")
    for case in slow:
        print(f"    {case['seconds']:6.2f} s  {case['case']}{'' if case['passed'] else '  (failed)'}")
    for kind in ("parent", "worker", "helpers"):
        rows = report["profiles"].get(kind, {}).get("top_self_time", [])[:8]
        if rows:
            print(f"\n  cProfile, {kind}: most self time (profiling inflates these)")
            for r in rows:
                print(f"    {r['tottime_s']:7.3f} s self {r['cumtime_s']:7.3f} s cum {r['calls']:>8}x  "
                      f"{r['function']}  {r['where']}")
    if report["not_instrumented"]:
        print(f"\n  not instrumented (renamed in grader/?): {', '.join(report['not_instrumented'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="linear_attention")
    parser.add_argument("--submission", default="examples/linear_attention_submission")
    parser.add_argument("--oracle-cache", choices=["warm", "off"], default="warm",
                        help="dlgrade's staff-value disk cache: warm (as on Gradescope) or off")
    parser.add_argument("--no-cprofile", action="store_true", help="phase timings only")
    parser.add_argument("--out", default="bench/results/profile.json")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--child", choices=["phases", "cprofile"], help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    submission = str(Path(args.submission).resolve())
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="dlgrade-profile-") as scratch:
        scratch = Path(scratch)
        cache = "off" if args.oracle_cache == "off" else str(scratch / "oracle-cache")
        env = {**os.environ, "DLGRADE_CACHE_DIR": cache}   # the run's own, so that its state is known
        if args.oracle_cache == "warm":
            _run([sys.executable, "-m", "grader", "grade", args.assignment, submission, "--results",
                  str(scratch / "warm.json"), "--quiet"], env, "the warm-up grade", args.timeout_s)
        me = [sys.executable, str(Path(__file__).resolve()), "--assignment", args.assignment,
              "--submission", submission]
        (scratch / "phases").mkdir()
        start = time.perf_counter()
        memory = _run(me + ["--child", "phases", "--child-out", str(scratch / "phases")], env, "the timed grade",
                      args.timeout_s, sample=True)
        total = time.perf_counter() - start
        child_report = json.loads((scratch / "phases" / "child.json").read_text())
        prof = {}
        if not args.no_cprofile:
            (scratch / "cprofile").mkdir()
            _run(me + ["--child", "cprofile", "--child-out", str(scratch / "cprofile")], env, "the profiled grade",
                 args.timeout_s)
            prof = profiles(scratch / "cprofile", out.parent / "profile")
    report = {"assignment": args.assignment, "submission": args.submission, "oracle_cache": args.oracle_cache,
              "total_s": round(total, 3), "grade_s": child_report["grade_s"],
              "breakdown": breakdown(child_report, total), "by_case_kind": by_case_kind(child_report["cases"]),
              "cases": child_report["cases"], "requests": child_report["requests"], "memory": memory, "profiles": prof,
              "not_instrumented": child_report["not_instrumented"], "load_average": os.getloadavg(),
              "nproc": len(os.sched_getaffinity(0))}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
