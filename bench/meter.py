"""Measure one command: wall time, CPU time and peak memory of its whole process tree.

Every process the command starts (the grader's fork server, its workers, bounded helpers, even
ones that detach with setsid) is counted, because cgroup membership is inherited on fork and no
namespace the sandbox enters changes it.

Memory, best method first (`memory_method` in each result says which was used):

  cgroup-v1   a child memory cgroup of our own, made for the run and removed after it:
              `memory.max_usage_in_bytes` (the kernel's own peak of everything charged to the
              run: anonymous memory, tmpfs, kernel memory, and the page cache the run itself
              faulted in) and the peak of anonymous memory (`total_rss + total_shmem` of
              `memory.stat`, sampled every `sample_s`). v1's usage counters are batched per
              CPU, so both are exact to a few hundred kB, not to the byte.
  cgroup-v2   the same with `memory.peak` (or the sampled peak of `memory.current`) and
              `anon + shmem`; needs the memory controller delegated to our cgroup's children.
  pss         no writable cgroup: /proc/<pid>/smaps_rollup of every process of the tree, sampled
              every `sample_s`: sum of PSS (shared pages split between sharers) and of Pss_Anon.
              A process that lives shorter than one sample is missed.

Anonymous memory is what a container limit is really spent on. torch's shared libraries are
file-backed and, once in the page cache, stay charged to whichever cgroup read them first: a
run measured after a warm-up finds them cached and is charged only for what it allocates, the
way every run but the first is on a warm machine. Run one unmeasured warm-up of each command.

A memory limit (`memory_limit_mb`, Gradescope's container default is 768 MB) is set on the
child cgroup, with swap limited alike where swap accounting exists (`swap_limited`). Without
a writable cgroup no limit can be set: the run goes ahead, `memory_limit_mb` is None in the
result and a warning is printed once.

CPU (user + system of every process of the tree, those that exited included):

  cgroup-v1   a child cpuacct cgroup: `cpuacct.usage` (exact, ns), split into user and system
              by `cpuacct.usage_user` / `cpuacct.usage_sys`
  cgroup-v2   `cpu.stat` (`usage_usec`, `user_usec`, `system_usec`) of the same child cgroup
  rusage      `wait4` of the command: itself and the descendants it (or they) waited for; a
              lower bound where a grandchild is killed without being reaped by its parent

The rusage numbers are recorded in every mode (`cpu_rusage_s`), as a cross-check.

The measuring process samples every `sample_s`; on a two-core machine it competes with the run
for a core, so keep the period coarse enough (10 ms costs well under 1% of a core).
"""
from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SAMPLE_S = 0.01
PREFIX = "dlgrade-bench"
_counter = 0
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"meter: warning: {message}", file=sys.stderr, flush=True)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def _stat(path: Path) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _own_cgroups() -> dict[str, str]:
    """controller ("memory", "cpuacct", "" for v2) -> this process's cgroup path."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                own[name] = path
    return own


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root inside the hierarchy, fstype, super options) of cgroup mounts."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.rstrip("\n").partition(" - ")
            fields, rest = left.split(), right.split()
            if rest and rest[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], fields[3], rest[0], set(rest[2].split(",")) if len(rest) > 2 else set()))
    return found


def _cgroup_dir(controller: str) -> Path | None:
    """The directory of this process's cgroup for a v1 controller ("": the v2 hierarchy)."""
    own = _own_cgroups()
    if controller not in own:
        return None
    path = own[controller]
    for point, root, fstype, options in _mounts():
        if (controller == "" and fstype == "cgroup2") or (controller and fstype == "cgroup" and controller in options):
            # a container sees its own cgroup as the mount's root: the path is relative to it
            relative = path[len(root):] if root != "/" and path.startswith(root) else path
            candidate = Path(point) / relative.lstrip("/")
            if candidate.is_dir():
                return candidate
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(parent: Path) -> None:
    """Child cgroups of earlier benchmarks that were killed before they could remove them."""
    pattern = re.compile(rf"^{PREFIX}-(\d+)-\d+-\w+$")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        found = pattern.match(entry.name)
        if found and int(found.group(1)) != os.getpid() and not _pid_alive(int(found.group(1))):
            try:
                if not _read(entry / "cgroup.procs").split():
                    entry.rmdir()
            except OSError:
                pass


def _make_child(parent: Path | None, tag: str) -> Path | None:
    global _counter
    if parent is None or not os.access(parent, os.W_OK):
        return None
    _remove_stale(parent)
    _counter += 1
    child = parent / f"{PREFIX}-{os.getpid()}-{_counter}-{tag}"
    try:
        child.mkdir()
    except OSError:
        return None
    return child


def _remove(child: Path | None) -> None:
    """rmdir is refused while a dying process is still attached: retry for two seconds."""
    if child is None:
        return
    for _ in range(200):
        try:
            child.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                _warn_once(f"could not remove the cgroup {child}: {exc}")
                return
            time.sleep(0.01)
    _warn_once(f"could not remove the cgroup {child}: still busy")


class _Cgroups:
    """The child cgroups of one run (memory and cpu), made before it starts, removed after."""

    def __init__(self, memory_method: str, cpu_method: str, limit_mb: int | None):
        self.memory_method, self.cpu_method = "pss", "rusage"
        self.mem = self.cpu = self.v2 = None
        self.limit_mb: int | None = None
        self.swap_limited = False
        if memory_method in ("auto", "cgroup-v1"):
            self.mem = _make_child(_cgroup_dir("memory"), "mem")
            if self.mem is not None:
                self.memory_method = "cgroup-v1"
        if self.mem is None and memory_method in ("auto", "cgroup-v2"):
            parent = _cgroup_dir("")
            if parent is not None and self._delegate_memory(parent):
                self.v2 = _make_child(parent, "v2")
                if self.v2 is not None and (self.v2 / "memory.current").exists():
                    self.memory_method = "cgroup-v2"
        if cpu_method in ("auto", "cgroup-v1"):
            self.cpu = _make_child(_cgroup_dir("cpuacct"), "cpu")
            if self.cpu is not None:
                self.cpu_method = "cgroup-v1"
        if self.cpu is None and cpu_method in ("auto", "cgroup-v2"):
            if self.v2 is None:
                self.v2 = _make_child(_cgroup_dir(""), "v2")
            if self.v2 is not None and (self.v2 / "cpu.stat").exists():
                self.cpu_method = "cgroup-v2"
        if self.v2 is not None and "cgroup-v2" not in (self.memory_method, self.cpu_method):
            _remove(self.v2)
            self.v2 = None
        if self.memory_method == "pss" and memory_method == "auto":
            _warn_once("no writable memory cgroup (not root, or cgroups not mounted read-write): memory is the "
                       "sampled PSS of the process tree, and no memory limit can be set")
        if self.cpu_method == "rusage" and cpu_method == "auto":
            _warn_once("no writable cpuacct/cpu cgroup: CPU time comes from wait4 (a lower bound)")
        if limit_mb:
            self._set_limit(limit_mb)

    @staticmethod
    def _delegate_memory(parent: Path) -> bool:
        """Enable the memory controller for our cgroup's children (refused while our cgroup has
        processes of its own, unless it is the root: then we fall back to PSS sampling)."""
        try:
            if "memory" in _read(parent / "cgroup.subtree_control").split():
                return True
            if "memory" not in _read(parent / "cgroup.controllers").split():
                return False
            with open(parent / "cgroup.subtree_control", "w") as f:
                f.write("+memory")
            return True
        except OSError:
            return False

    def _set_limit(self, limit_mb: int) -> None:
        limit = str(limit_mb * 2**20)
        try:
            self._write_limit(limit)
        except OSError as exc:
            _warn_once(f"could not set the memory limit ({exc}): runs are measured without one")
            return
        self.limit_mb = limit_mb

    def _write_limit(self, limit: str) -> None:
        if self.memory_method == "cgroup-v1":
            (self.mem / "memory.limit_in_bytes").write_text(limit)
            # memsw (memory + swap) must be set after the memory limit, which it may not undercut;
            # without swap accounting the file is absent and the run could swap past the limit
            try:
                (self.mem / "memory.memsw.limit_in_bytes").write_text(limit)
                self.swap_limited = True
            except OSError:
                _warn_once("no swap accounting (memory.memsw.*): a run could swap beyond the memory limit")
        elif self.memory_method == "cgroup-v2":
            (self.v2 / "memory.max").write_text(limit)
            try:
                (self.v2 / "memory.swap.max").write_text("0")
                self.swap_limited = True
            except OSError:
                _warn_once("memory.swap.max not writable: a run could swap beyond the memory limit")
        else:
            raise OSError("no writable memory cgroup")

    def dirs(self) -> list[Path]:
        return [d for d in (self.mem, self.cpu, self.v2) if d is not None]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs():
            try:
                out.update(int(p) for p in _read(d / "cgroup.procs").split())
            except OSError:
                pass
        return out

    def anon_bytes(self) -> int:
        if self.memory_method == "cgroup-v1":
            s = _stat(self.mem / "memory.stat")
            return s.get("total_rss", 0) + s.get("total_shmem", 0)
        s = _stat(self.v2 / "memory.stat")
        return s.get("anon", 0) + s.get("shmem", 0)

    def usage_bytes(self) -> int:
        if self.memory_method == "cgroup-v1":
            return int(_read(self.mem / "memory.usage_in_bytes"))
        return int(_read(self.v2 / "memory.current"))

    def peak_bytes(self, sampled: int) -> int:
        if self.memory_method == "cgroup-v1":
            return int(_read(self.mem / "memory.max_usage_in_bytes"))
        try:
            return int(_read(self.v2 / "memory.peak"))
        except OSError:                       # kernels before 5.19: the sampled peak
            return sampled

    def limit_events(self) -> tuple[int, int]:
        """(times the run hit its memory limit and had to reclaim, processes OOM-killed)."""
        try:
            if self.memory_method == "cgroup-v1":
                return (int(_read(self.mem / "memory.failcnt")),
                        _stat(self.mem / "memory.oom_control").get("oom_kill", 0))
            if self.memory_method == "cgroup-v2":
                events = _stat(self.v2 / "memory.events")
                return events.get("max", 0), events.get("oom_kill", 0)
        except OSError:
            pass
        return 0, 0

    def cpu_seconds(self) -> tuple[float, float, float] | None:
        """(total, user, system)."""
        if self.cpu_method == "cgroup-v1":
            return (int(_read(self.cpu / "cpuacct.usage")) / 1e9,
                    int(_read(self.cpu / "cpuacct.usage_user")) / 1e9,
                    int(_read(self.cpu / "cpuacct.usage_sys")) / 1e9)
        if self.cpu_method == "cgroup-v2":
            s = _stat(self.v2 / "cpu.stat")
            return s.get("usage_usec", 0) / 1e6, s.get("user_usec", 0) / 1e6, s.get("system_usec", 0) / 1e6
        return None

    def kill_all(self) -> None:
        """Only processes of this run's own cgroups: a straggler of the tree, never anyone else."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        for d in self.dirs():
            _remove(d)


# ---- /proc sampling (the fallback) -------------------------------------------------------------

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


def _rollup_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Pss_Anon", "Pss_Shmem", "Rss", "Anonymous"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


@dataclass
class Result:
    command: list[str]
    wall_s: float
    cpu_s: float
    cpu_user_s: float
    cpu_sys_s: float
    cpu_rusage_s: float
    peak_anon_mb: float
    peak_total_mb: float          # cgroup: everything charged to the run (exact peak); pss: PSS
    peak_processes: int
    returncode: int
    timed_out: bool
    limit_hits: int               # reclaim at the memory limit (cgroup only)
    oom_kills: int
    memory_method: str
    cpu_method: str
    memory_limit_mb: int | None
    swap_limited: bool
    stderr_tail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.oom_kills

    def to_dict(self) -> dict:
        return asdict(self)


def _pin_to(dirs: list[Path]):
    """Runs in the forked child before exec: everything the command allocates is charged to the
    run's cgroups, and everything it starts inherits them."""
    paths = [str(d / "cgroup.procs") for d in dirs]

    def pin():
        for path in paths:
            with open(path, "w") as f:
                f.write(str(os.getpid()))
    return pin


class _Sampler:
    def __init__(self, groups: _Cgroups, root: int):
        self.groups, self.root = groups, root
        self.anon = self.total = self.procs = 0
        self.cgroup = groups.memory_method != "pss"
        self.start = time.perf_counter()
        self.anon_at = {"seconds": 0.0, "processes": 0}     # when the anonymous peak was seen

    def _note_anon(self, anon: int, processes: int) -> None:
        if anon > self.anon:
            self.anon = anon
            self.anon_at = {"seconds": round(time.perf_counter() - self.start, 2), "processes": processes}

    def sample(self) -> None:
        if self.cgroup:
            try:
                processes = len(self.groups.pids())
                self._note_anon(self.groups.anon_bytes(), processes)
                self.total = max(self.total, self.groups.usage_bytes())
                self.procs = max(self.procs, processes)
            except OSError:
                pass
            return
        pids = _tree(self.root)
        rollups = [_rollup_kb(p) for p in pids]
        self.total = max(self.total, 1024 * sum(r.get("Pss", 0) for r in rollups))
        self._note_anon(1024 * sum(r.get("Pss_Anon", r.get("Anonymous", 0)) + r.get("Pss_Shmem", 0) for r in rollups),
                        len(pids))
        self.procs = max(self.procs, len(pids))


def measure(command: list[str], memory_method: str = "auto", cpu_method: str = "auto",
            memory_limit_mb: int | None = None, sample_s: float = SAMPLE_S, env: dict | None = None,
            cwd: str | None = None, timeout_s: float | None = None) -> Result:
    """Run `command` to completion in cgroups of its own (where possible) and measure it.
    Its stdout is discarded; the tail of its stderr is kept in the result."""
    groups = _Cgroups(memory_method, cpu_method, memory_limit_mb)
    proc = None
    try:
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd,
                                    preexec_fn=_pin_to(groups.dirs()) if groups.dirs() else None)
            sampler = _Sampler(groups, proc.pid)
            deadline = None if timeout_s is None else start + timeout_s
            timed_out = False
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                sampler.sample()
                if deadline is not None and time.perf_counter() > deadline and not timed_out:
                    timed_out = True
                    proc.kill()
                    groups.kill_all()
                time.sleep(sample_s)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            # a worker may outlive the grader for a moment (being killed): let it go, then end it
            settle = time.monotonic() + 5.0
            while groups.dirs() and groups.pids() and time.monotonic() < settle:
                time.sleep(0.01)
            groups.kill_all()
            peak_total = groups.peak_bytes(sampler.total) if sampler.cgroup else sampler.total
            cpu = groups.cpu_seconds()
            limit_hits, oom = groups.limit_events()
            err.seek(0)
            tail = err.read()[-3000:].decode("utf-8", "replace")
    finally:
        if proc is not None and proc.returncode is None:     # interrupted: leave nothing running
            proc.kill()
            groups.kill_all()
            proc.wait()
        groups.close()
    rusage_cpu = rusage.ru_utime + rusage.ru_stime
    if cpu is None:
        cpu = (rusage_cpu, rusage.ru_utime, rusage.ru_stime)
    return Result(
        command=list(command),
        wall_s=wall,
        cpu_s=cpu[0],
        cpu_user_s=cpu[1],
        cpu_sys_s=cpu[2],
        cpu_rusage_s=rusage_cpu,
        peak_anon_mb=sampler.anon / 2**20,
        peak_total_mb=peak_total / 2**20,
        peak_processes=sampler.procs,
        returncode=proc.returncode,
        timed_out=timed_out,
        limit_hits=limit_hits,
        oom_kills=oom,
        memory_method=groups.memory_method,
        cpu_method=groups.cpu_method,
        memory_limit_mb=groups.limit_mb,
        swap_limited=groups.swap_limited,
        stderr_tail=tail,
        extra={"peak_anon_at": sampler.anon_at},
    )


def describe() -> dict:
    """What this machine allows, for the benchmark's report."""
    return {name or "v2": str(_cgroup_dir(name)) for name in ("memory", "cpuacct", "")}


if __name__ == "__main__":
    import json

    result = measure(sys.argv[1:] or [sys.executable, "-c", "import torch"], memory_limit_mb=768)
    print(json.dumps(result.to_dict(), indent=2))
