"""The Ray backend of `grade-all`: submissions graded on a Ray cluster's nodes.

    grade_all(..., pool=RayPool("linear_attention", address="ray://head:10001"))
    dlgrade grade-all linear_attention submissions/ --backend ray --address auto

Each Ray actor owns one batch worker (grader/batch/worker.py): a fresh interpreter on that node,
started by the actor, which starts its sandbox before it loads the assignment, exactly as the
local pool's workers do. The actor process itself never loads staff code or values (it only
moves bytes), so every isolation rule of a local run holds on the node too. A submission
travels to the node as a zip in Ray's object store and its results.json comes back as text; the
coordinator writes it and the gradebook, as for the local pool. The nodes need dlgrade installed
at the same path (`pip install dlgrade[ray]` and a checkout of the course's assignments), and, as
root, the disk cache is warmed by the first worker on each node.

Ray is an optional extra: nothing on Gradescope's path imports this module.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from grader.batch.pool import HARD_LIMIT_MARGIN_S, Task, start_worker, stop_worker


def _pack(path: Path) -> bytes:
    """A submission as zip bytes (a file keeps its name; a folder its tree, symlinks left out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if path.is_file():
            archive.write(path, path.name)
        else:
            for file in sorted(path.rglob("*")):
                if file.is_file() and not file.is_symlink():
                    archive.writestr(file.relative_to(path).as_posix(), file.read_bytes())
    return buffer.getvalue()


class GradingActor:
    """Holds one batch worker on its node; grades the submissions it is sent, one at a time."""

    def __init__(self, assignment: str, mode: str):
        self.worker = start_worker(assignment, mode)
        self.scratch = Path(tempfile.mkdtemp(prefix="dlgrade-ray-"))
        os.chmod(self.scratch, 0o700)

    def grade(self, task_id: int, name: str, blob: bytes, is_file: bool, only) -> dict:
        folder = self.scratch / str(task_id)
        folder.mkdir()
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            archive.extractall(folder / "submission")     # our own zip (_pack): no ".." or absolute names
        path = folder / "submission" / name if is_file else folder / "submission"
        results = folder / "results.json"
        task = Task(task_id, str(path), str(results), only)
        self.worker.process.stdin.write(task.message())
        self.worker.process.stdin.flush()
        while True:
            line = self.worker.replies.readline()
            if not line:
                raise RuntimeError(f"the grading worker on {os.uname().nodename} ended unexpectedly")
            reply = json.loads(line)
            if "ready" not in reply:
                break
        reply["results_json"] = results.read_text() if results.is_file() else ""
        reply["node"] = os.uname().nodename
        return reply

    def stop(self) -> None:
        stop_worker(self.worker)


class RayPool:
    name = "ray"

    def __init__(self, assignment: str, address: str | None = None, mode: str = "staff", jobs: int | None = None):
        self.assignment = assignment
        self.address = address
        self.mode = mode
        self.jobs = jobs
        self.hard_limit_s = 540.0 + HARD_LIMIT_MARGIN_S
        self.started_workers = 0

    def prestart(self, count: int) -> None:
        """Actors start with the batch (Ray schedules them): nothing to do ahead."""

    def close(self) -> None:
        """Nothing started ahead to stop."""

    def describe(self) -> dict:
        """The assignment's version, case names and time limit, worked out here (the workers are
        on the cluster's nodes); the local disk cache is warmed on the way, as root."""
        from grader.batch.describe import describe_here

        info = describe_here(self.assignment)
        self.set_limit(info["total_timeout"])
        return info

    def set_limit(self, total_timeout: float) -> None:
        """The assignment's total time limit: a submission is given up on after it plus a margin."""
        self.hard_limit_s = total_timeout + HARD_LIMIT_MARGIN_S

    def _actor(self, remote_class):
        self.started_workers += 1
        return remote_class.remote(self.assignment, self.mode)

    def run(self, tasks: list[Task], on_result) -> None:
        import ray

        from grader.results import write_results

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}})
        remote_class = ray.remote(num_cpus=1)(GradingActor)
        size = self.jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        idle = [self._actor(remote_class) for _ in range(min(size, len(tasks)))]
        pending = list(reversed(tasks))
        running: dict = {}                 # future -> (task, actor, deadline)
        try:
            while pending or running:
                while idle and pending:
                    task, actor = pending.pop(), idle.pop()
                    path = Path(task.path)
                    future = actor.grade.remote(task.id, path.name, _pack(path), path.is_file(), task.only)
                    running[future] = (task, actor, time.monotonic() + self.hard_limit_s)
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for future in done:
                    task, actor, _ = running.pop(future)
                    try:
                        reply = ray.get(future)
                    except Exception as exc:      # the actor or its node died: a verdict, a new actor
                        reply = self._failure(task, "grader-error", f"grading on the Ray cluster failed ({exc})")
                        ray.kill(actor)
                        actor = self._actor(remote_class)
                    else:
                        text = reply.pop("results_json", "")
                        if text:
                            write_results(json.loads(text), task.results)
                    idle.append(actor)
                    on_result(task, reply)
                for future, (task, actor, deadline) in list(running.items()):
                    if time.monotonic() > deadline:
                        running.pop(future)
                        ray.kill(actor)
                        idle.append(self._actor(remote_class))
                        on_result(task, self._failure(task, "grader-timeout", f"grading did not finish within "
                                                      f"{self.hard_limit_s:g} s on the Ray cluster"))
        finally:
            for actor in idle + [a for _, a, _ in running.values()]:
                try:
                    ray.get(actor.stop.remote(), timeout=30)
                except Exception:
                    pass
                ray.kill(actor)
            if started_here:
                ray.shutdown()

    def _failure(self, task: Task, status: str, message: str) -> dict:
        return {"id": task.id, "status": status, "message": message, "score": 0.0, "max_score": 0.0, "cases": [],
                "mode": self.mode, "isolation": "", "seconds": 0.0, "peak_rss_mb": None, "staff_values_computed": 0}
