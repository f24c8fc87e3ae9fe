"""The parent's client of the student's sandbox: one live worker at a time, a fresh one (from
the zygote) after a timeout or crash, and the run's time kept.

Time is kept in two ways. Every request is clipped to what is left of the run's total budget
(`TimeBudget`), so the total limit is hard whatever the submission does. And when a call times
out, the worker's Python stack names the student's function that hung (`HungFunction`); later
requests carry it, and the worker stops any call that enters it at once (worker.NotRunAgain),
so one infinite loop costs one timeout, not one per case that calls it.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from grader.cases import StudentError
from grader.sandbox.isolation import Limits, fallback_warnings
from grader.sandbox.zygote import ReplyRefused, Sandbox, WorkerConfig, WorkerDied, WorkerTimeout


class TimeBudget:
    """The run's total time limit, kept hard: a margin is left to write results.json."""

    MARGIN_S = 5.0

    def __init__(self, total: float):
        self.total = total
        self.start = time.monotonic()
        self.deadline = self.start + max(total - self.MARGIN_S, 0.0)

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def clip(self, timeout: float) -> float:
        return min(timeout, self.remaining())

    def spent(self) -> bool:
        return self.remaining() <= 0.05


@dataclass(frozen=True)
class HungFunction:
    file: str           # the student's file, relative to the submission ("bert.py")
    function: str       # its code name ("attention")
    line: int           # the line it was on when stopped
    case: str           # the case that timed out
    seconds: float

    @property
    def where(self) -> str:
        return f"{self.function} ({self.file} line {self.line})"

    def for_worker(self) -> dict:
        return {"file": self.file, "function": self.function, "line": self.line, "case": self.case,
                "seconds": self.seconds, "where": self.where}


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)\s*$')


def hung_function(stack: str, scratch_root: str, student_files: set[str], case: str,
                  seconds: float) -> HungFunction | None:
    """The innermost frame of the student's own files in a faulthandler dump (most recent call
    first), in the thread that was running the call."""
    for line in stack.splitlines():
        found = _FRAME.match(line)
        if not found:
            continue
        path = found["file"]
        if not path.startswith(scratch_root):
            continue
        relative = path[len(scratch_root):].lstrip("/").split("/", 1)   # "worker3/bert.py"
        if len(relative) == 2 and relative[1] in student_files:
            return HungFunction(relative[1], found["function"], int(found["line"]), case, seconds)
    return None


def _import_failure_message(module: str, error: dict) -> tuple[str, str]:
    """Why `module` could not be imported, in the student's terms, in full and in one line;
    the cases of other files still run."""
    message = str(error.get("message", "import failed"))
    if error.get("type") == "ModuleNotFoundError":
        found = re.search(r"No module named '([^']+)'", message)
        missing = found.group(1) if found else "?"
        if missing == module:
            return (f"{module}.py was not found in the submission",) * 2
        full = (f"importing {module}.py failed: it imports {missing!r}, which the grading environment does not have "
                f"(remove that import, or use only torch, numpy and the course's files); the cases of your other files "
                f"are graded as usual\n{error.get('traceback', '')}").rstrip()
        return full, f"importing {module}.py failed: it imports {missing!r}, which the grading environment does not have"
    return f"importing {module}.py failed:\n{_raised(error)}", f"importing {module}.py failed: {message[:300]}"


def _raised(error: dict) -> str:
    """The student's exception once: their traceback already ends with its message."""
    tb = error.get("traceback", "") if type(error) is dict else ""
    return tb.rstrip() if tb else str(error.get("message", "an error")) if type(error) is dict else "an error"


class StudentProcess:
    """Requests to the student's code; StudentError (with a student-facing reason) otherwise."""

    def __init__(self, sandbox: Sandbox, files: dict[str, bytes], support: dict[str, bytes],
                 helpers: dict[str, bytes], modules: list[str], run_dir: Path, sandbox_uid: int | None,
                 memory_mb: int, hidden_paths: list[str], budget: TimeBudget, import_timeout: float = 60.0):
        self.sandbox = sandbox
        self.sandbox_uid = sandbox_uid
        self.files = {**helpers, **support, **files}
        self.student_files = set(files) | set(helpers)
        self.modules = modules
        self.run_dir = run_dir
        self.memory_mb = memory_mb
        self.hidden = hidden_paths
        self.budget = budget
        self.import_timeout = import_timeout
        self.worker = None
        self.module_failures: dict[str, tuple[str, str]] = {}   # module -> (why, in one line)
        self.fatal: dict[str, tuple[str, str]] = {}     # modules whose import ended or hung the worker
        self.import_output = ""
        self.isolation = ""
        self.spawned = 0
        self.hung: list[HungFunction] = []
        self.peak_rss_kb: int | None = None
        self._told: dict[str, str] = {}                  # cause -> first case that explained it

    # -- messages: one full explanation per cause, a pointer to it afterwards
    def _fail(self, cause: str, message: str, case: str, output: str = "", short: str = "") -> StudentError:
        first = self._told.setdefault(cause, case)
        if first != case:
            message = f"{short or message.splitlines()[0]} (explained in the case {first!r})"
        exc = StudentError(message)
        exc.output = output
        return exc

    def _scratch(self) -> str:
        scratch = self.run_dir / f"worker{self.spawned}"
        scratch.mkdir(mode=0o700)
        for name, data in self.files.items():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).write_bytes(data)
        if self.sandbox_uid is not None:
            for path in [scratch, *scratch.rglob("*")]:
                os.chown(path, self.sandbox_uid, self.sandbox_uid)
        return str(scratch)

    def _spawn(self):
        if self.worker is not None:
            self._note_peak(self.worker)     # the one this replaces (killed after a timeout or crash)
        self.spawned += 1
        config = WorkerConfig(
            scratch=self._scratch(),
            output_path=str(self.run_dir / "private" / f"worker{self.spawned}.out"),
            stack_path=str(self.run_dir / "private" / f"worker{self.spawned}.stack"),
            staging=str(self.run_dir / "staging"),
            hidden_paths=self.hidden,
            limits=Limits(memory_mb=self.memory_mb),
            sandbox_uid=self.sandbox_uid,
            namespaces=os.environ.get("DLGRADE_NAMESPACES", "1") != "0",
        )
        worker = self.sandbox.spawn(config)
        self.isolation = worker.isolation + fallback_warnings(worker.isolation, self.hidden, self.sandbox_uid)
        return worker

    def _start(self, import_timeout: float, case: str):
        """A fresh worker with every module imported that can be, one at a time: a file that ends
        the process or hangs at import (bert.py calling os._exit) then fails only the cases that
        need it, and a fresh worker imports the others (optimizer.py is still graded)."""
        while True:
            worker = self._spawn()
            failures: dict[str, tuple[str, str]] = {}
            for module in [m for m in self.modules if m not in self.fatal]:
                timeout = min(import_timeout, self._time_left(case))
                try:
                    reply = worker.request({"op": "import", "modules": [module]}, timeout)
                except WorkerTimeout:
                    self.fatal[module] = (f"importing {module}.py took longer than {timeout:.3g} s (it is imported once; "
                                          "move long-running code under `if __name__ == '__main__':`)",
                                          f"importing {module}.py timed out")
                    break
                except WorkerDied as exc:
                    self.fatal[module] = (f"the process ended while importing {module}.py ({exc}); is there a bare "
                                          "exit() or os._exit() at import time?",
                                          f"importing {module}.py ended the process")
                    break
                outcome = (reply.get("value") or {}).get(module)
                if type(outcome) is dict and not outcome.get("ok"):
                    error = outcome.get("error") if type(outcome.get("error")) is dict else {}
                    failures[module] = _import_failure_message(module, error)
            else:
                self.module_failures = {**failures, **self.fatal}
                self.import_output = worker.student_output()
                self.worker = worker
                return
            # that module took the worker down with it: a fresh one imports the others

    def _time_left(self, case: str) -> float:
        left = self.budget.remaining()
        if left <= 0.05:
            raise self._fail("budget", f"not run: the total time limit of {self.budget.total:g} s was reached "
                                       "(earlier cases used it up)", case, short="not run: the total time limit was reached")
        return left

    def request(self, message: dict, timeout: float, case: str):
        """Returns (value, printed output) or raises StudentError with a student-facing reason."""
        if self.worker is None or not self.worker.alive:
            self._start(self.import_timeout, case)
        spec = message.get("spec") or {}
        for module in spec.get("needs") or [spec.get("module")]:
            if module in self.module_failures:
                full, short = self.module_failures[module]
                raise self._fail(f"module:{module}", full, case, self.import_output, short=short)
        # the import of a fresh worker has its own limit; both are clipped to the run's budget
        timeout = min(timeout, self._time_left(case))
        message = dict(message, hung=[h.for_worker() for h in self.hung])
        try:
            reply = self.worker.request(message, max(timeout, 0.05))
        except WorkerTimeout as exc:
            raise self._timed_out(exc, timeout, case) from None
        except ReplyRefused as exc:
            raise self._fail(f"refused:{case}", f"the grader refused your code's result: {exc}", case,
                             self.worker.student_output()) from None
        except WorkerDied as exc:
            died = StudentError(f"the process running your code ended unexpectedly: {exc}"
                                + (" (likely out of memory: the limit is "
                                   f"{self.memory_mb} MB)" if "SIGKILL" in str(exc) or "SIGSEGV" in str(exc) else ""))
            died.output = self.worker.student_output()
            raise died from None
        printed = self.worker.student_output()
        if not reply["ok"]:
            error = reply.get("error") if type(reply.get("error")) is dict else {}
            if error.get("type") == "NotRunAgain":
                raise self._fail(f"hung:{error.get('message')}", f"not run: {error.get('message')}", case, printed)
            if error.get("type") == "UnsupportedValue":
                refused = StudentError(f"the grader cannot accept what your code returned: {error.get('message')}")
                refused.output = printed
                raise refused
            exc = StudentError(f"your code raised an exception:\n{_raised(error)}")
            exc.output = printed
            raise exc
        return reply.get("value"), printed

    def _timed_out(self, exc: WorkerTimeout, timeout: float, case: str) -> StudentError:
        printed = self.worker.student_output()
        if self.budget.spent():
            return self._fail("budget", f"stopped: the total time limit of {self.budget.total:g} s was reached "
                                        "during this case", case, printed)
        hung = hung_function(exc.stack, str(self.run_dir), self.student_files, case, round(timeout, 1))
        where = ""
        if hung:
            self.hung.append(hung)
            where = f" in {hung.where}; later cases that call it are stopped at once"
        err = StudentError(f"timed out: no result within {timeout:.3g} s{where} (the case was stopped; "
                           "other cases still ran)")
        err.output = printed
        return err

    def close(self):
        if self.worker is not None:
            self.worker.kill()
            self._note_peak(self.worker)

    def _note_peak(self, worker) -> None:
        if worker.peak_rss_kb is not None:
            self.peak_rss_kb = max(self.peak_rss_kb or 0, worker.peak_rss_kb)

    @property
    def peak_rss_mb(self) -> float | None:
        """The largest resident size any of this run's sandbox workers reached (its parent's
        wait4, not anything the student's process said), in MB; None before one has ended."""
        return round(self.peak_rss_kb / 1024, 1) if self.peak_rss_kb is not None else None
