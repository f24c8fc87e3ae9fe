"""The local pool: N batch workers (grader/batch/worker.py), each a fresh process with its own
sandbox, fed one submission at a time.

A worker that dies (a grader bug, the kernel's OOM killer) or outlives a submission's hard limit
(the assignment's total time plus a margin: `grade` keeps its own budget, so only a grader hang
gets there) costs that submission a verdict that says so, and is replaced by a fresh one; the
batch goes on. Stopping the pool (Ctrl-C, SIGTERM, the end of the batch) ends every worker and
its sandbox: SIGTERM first, so that each cleans up its run directory and sandbox uid, then
SIGKILL for one that does not.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

HARD_LIMIT_MARGIN_S = 60.0
STOP_GRACE_S = 5.0


@dataclass
class Task:
    id: int
    path: str                        # the submission
    results: str                     # where its results.json goes
    only: list[str] | None = None

    def message(self) -> str:
        return json.dumps({"id": self.id, "path": self.path, "results": self.results, "only": self.only}) + "\n"


@dataclass
class _Worker:
    process: subprocess.Popen
    replies: object                  # the read end of its reply pipe, as a text file
    task: Task | None = None
    deadline: float = 0.0
    started: float = field(default_factory=time.monotonic)
    unread: bytes = b""              # what the pipe gave beyond the last whole line

    def read_lines(self) -> list[str] | None:
        """The whole lines the pipe has now (one read; call when select says it is readable), or
        None at its end. Read raw: a buffered readline could take two lines off the pipe (ready,
        then a result written just after it) and keep the second where select never sees it."""
        chunk = os.read(self.replies.fileno(), 1 << 16)
        if not chunk:
            return None
        self.unread += chunk
        return self.take_lines()

    def take_lines(self) -> list[str]:
        """The whole lines already read off the pipe (first_line may leave some)."""
        *lines, self.unread = self.unread.split(b"\n")
        return [line.decode() for line in lines if line.strip()]

    def first_line(self) -> str:
        """Block until the first whole line (the worker's ready line); '' if the pipe ends first."""
        while b"\n" not in self.unread:
            chunk = os.read(self.replies.fileno(), 1 << 16)
            if not chunk:
                return ""
            self.unread += chunk
        line, self.unread = self.unread.split(b"\n", 1)
        return line.decode()


def start_worker(assignment: str, mode: str = "staff", data_dir: str | None = None, warm: bool = False,
                 threads: int | None = None) -> _Worker:
    """A fresh batch worker process (its own session, so that stopping it stops its sandbox);
    with `warm`, it fills the staff-value disk cache before it says it is ready. `threads` caps
    torch's threads in it and its helpers (OMP_NUM_THREADS, read when torch is imported): N
    workers on N cores each with N threads would only make their threads wait on each other."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "grader.batch.worker", assignment, "--reply-fd", str(write_fd),
               "--mode", mode] + (["--data-dir", data_dir] if data_dir else []) + (["--warm"] if warm else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               pass_fds=(write_fd,), text=True, start_new_session=True, env=env)
    os.close(write_fd)
    return _Worker(process, os.fdopen(read_fd, "r"))


def stop_worker(worker: _Worker) -> None:
    """SIGTERM (the worker cleans up its run directory and sandbox uid), then SIGKILL."""
    if worker.process.poll() is None:
        try:
            os.killpg(worker.process.pid, signal.SIGTERM)
            worker.process.wait(STOP_GRACE_S)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.process.wait()
    for stream in (worker.process.stdin, worker.replies):
        try:
            stream.close()
        except (OSError, BrokenPipeError):
            pass


class LocalPool:
    name = "local"

    def __init__(self, assignment: str, jobs: int, hard_limit_s: float = 540.0, mode: str = "staff",
                 data_dir: str | None = None):
        self.assignment = assignment
        self.jobs = max(1, jobs)
        self.hard_limit_s = hard_limit_s + HARD_LIMIT_MARGIN_S
        self.mode = mode
        self.data_dir = data_dir
        self.started_workers = 0
        self._ready: list[_Worker] = []

    def _spawn(self, warm: bool = False) -> _Worker:
        self.started_workers += 1
        # the machine's cores shared out: one job alone may use them all
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        return start_worker(self.assignment, self.mode, self.data_dir, warm, threads)

    def prestart(self, count: int) -> None:
        """Start up to `count` workers now, before the tasks are known, the first of them told to
        warm the staff-value cache: their start-up (torch's import, the sandbox, the assignment)
        is all the start-up a batch pays."""
        self._ready = [self._spawn(warm=i == 0) for i in range(min(self.jobs, count))]

    def describe(self) -> dict:
        """The assignment's version, case names and time limit (grader/batch/describe.py), as the
        first worker started ahead reports them once it has loaded the assignment and warmed the
        cache. Raises AssignmentError with the worker's message if it could not."""
        from grader.errors import AssignmentError

        if not self._ready:
            self._ready = [self._spawn(warm=True)]
        first = self._ready[0]
        line = first.first_line()
        reply = json.loads(line) if line.strip() else {"error": "the first grading worker ended while starting "
                                                                 f"(exit status {first.process.wait()})"}
        if "error" in reply:
            raise AssignmentError(reply["error"])
        self.set_limit(reply["total_timeout"])
        return reply

    def set_limit(self, total_timeout: float) -> None:
        """The assignment's total time limit: a submission is given up on after it plus a margin."""
        self.hard_limit_s = total_timeout + HARD_LIMIT_MARGIN_S

    def close(self) -> None:
        """Stop workers started ahead that no task needed."""
        for worker in self._ready:
            stop_worker(worker)
        self._ready = []

    def run(self, tasks: list[Task], on_result) -> None:
        """Grade every task; `on_result(task, reply)` as each finishes, in the caller's thread. A
        reply is the worker's (grader/batch/worker.py) or one made here for a dead or hung worker."""
        pending = list(reversed(tasks))
        workers: list[_Worker] = []
        selector = selectors.DefaultSelector()
        try:
            ahead, self._ready = self._ready, []
            while len(ahead) > len(tasks):
                stop_worker(ahead.pop())
            for _ in range(min(self.jobs, len(tasks)) - len(ahead)):
                ahead.append(self._spawn())
            for worker in ahead:
                workers.append(worker)
                selector.register(worker.replies, selectors.EVENT_READ, worker)
            while workers:
                for worker in [w for w in workers if w.task is None]:
                    if not pending:
                        selector.unregister(worker.replies)
                        workers.remove(worker)
                        stop_worker(worker)
                        continue
                    self._assign(worker, pending.pop())
                if not workers:
                    break
                for worker in workers:          # lines read ahead of select (after the ready line)
                    if b"\n" in worker.unread:
                        self._handle(worker, worker.take_lines(), on_result)
                if any(w.task is None for w in workers):
                    continue
                timeout = max(0.0, min(w.deadline for w in workers) - time.monotonic())
                for key, _ in selector.select(timeout=min(timeout, 1.0)):
                    worker = key.data
                    lines = worker.read_lines()
                    if lines is None:
                        self._replace(worker, workers, selector, on_result, "grader-error",
                                      "the grading worker ended unexpectedly while grading this submission "
                                      f"(exit status {worker.process.poll()})")
                        continue
                    self._handle(worker, lines, on_result)
                for worker in [w for w in workers if w.task is not None and time.monotonic() > w.deadline]:
                    self._replace(worker, workers, selector, on_result, "grader-timeout",
                                  f"grading did not finish within {self.hard_limit_s:g} s; the worker was stopped")
        finally:
            for worker in workers:
                stop_worker(worker)
            selector.close()

    @staticmethod
    def _handle(worker: _Worker, lines: list[str], on_result) -> None:
        for line in lines:
            reply = json.loads(line)
            if "ready" in reply or worker.task is None:
                continue
            task, worker.task = worker.task, None
            on_result(task, reply)

    def _assign(self, worker: _Worker, task: Task) -> None:
        worker.task = task
        worker.deadline = time.monotonic() + self.hard_limit_s
        try:
            worker.process.stdin.write(task.message())
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass            # the worker is gone: its reply pipe reads empty, and it is replaced there

    def _replace(self, worker: _Worker, workers: list, selector, on_result, status: str, message: str) -> None:
        task = worker.task
        selector.unregister(worker.replies)
        workers.remove(worker)
        stop_worker(worker)
        if task is not None:
            on_result(task, {"id": task.id, "status": status, "message": message, "score": 0.0, "max_score": 0.0,
                             "cases": [], "mode": self.mode, "isolation": "", "seconds": self.hard_limit_s
                             if status == "grader-timeout" else 0.0, "peak_rss_mb": None,
                             "staff_values_computed": 0})
        fresh = self._spawn()
        workers.append(fresh)
        selector.register(fresh.replies, selectors.EVENT_READ, fresh)
