"""Scratch space is private per run and cleaned; a run killed or interrupted leaves nothing.

These tests grade a copy of the assignment cut down to two cheap cases (DLGRADE_ROOT points the
grader at it): what is under test here is what a run leaves on the machine, not the cases.
Markers (what the submission did, as it saw it) are written outside /tmp, /var/tmp and /dev/shm,
which each worker gets privately in namespace mode.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from gradingkit import (
    ASSIGNMENT,
    ROOT,
    assignment_copy,
    check_honest,
    make_submission,
    reference_source,
    run_directory_of,
    run_grader,
    world_writable_dir,
)

REF = reference_source()
KEEP = ("softmax_attention", "softmax_attention, causal")
SCRATCH_SPACES = ("/tmp", "/var/tmp", "/dev/shm")
WORKER_TMPFS_BYTES = 64 * 2**20
MODES = {"namespaces": {}, "fallback": {"DLGRADE_NAMESPACES": "0"}}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """The assignment with two cases and no symbolic answers."""
    return assignment_copy(tmp_path_factory.mktemp("small_root"), keep=KEEP, answers=False)


def grade(folder: Path, results: Path, root: Path, env: dict):
    return run_grader(folder, results, env={"DLGRADE_ROOT": str(root), **env})


def _enterable_by(path: str, uid: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return bool(info.st_mode & 0o001) or info.st_uid == uid


def files_of(uid: int, roots=SCRATCH_SPACES) -> list[str]:
    """What `uid` owns anywhere it could have reached under the host's scratch spaces (a full
    walk, independent of the engine's own sweep, which walks only the directories a uid can
    write). Directories others cannot enter (pytest's own, mode 700) are left out: files of the
    uid there were put there by another test through a bind mount, not by a run."""
    found = []
    for root in roots:
        for directory, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if _enterable_by(os.path.join(directory, d), uid)]
            for name in dirs + files:
                path = os.path.join(directory, name)
                try:
                    if os.lstat(path).st_uid == uid:
                        found.append(path)
                except OSError:
                    pass
    return found


def shm_segments() -> list[dict]:
    with open("/proc/sysvipc/shm") as f:
        header, *rows = f.read().splitlines()
    return [dict(zip(header.split(), row.split())) for row in rows]


def assert_passed(graded) -> None:
    code = graded.code_cases()
    assert code and all(t["status"] == "passed" for t in code), graded.describe()


# ---- D1 + D2: files and shared memory left for a later submission -----------------------------

PLANT = textwrap.dedent('''

    # ---- hostile: leave files (a "solution" among them) and shared memory for later runs ----
    import ctypes as _ctypes
    import json as _json
    import os as _os

    _TAG = {tag!r}
    _log = {{"uid": _os.getuid(), "cwd": _os.getcwd(), "planted": [], "errors": [], "shm_bytes": 0}}
    for _dir in ("/tmp", "/var/tmp", "/dev/shm"):
        for _name, _text in (("dlgrade_planted_%s.txt" % _TAG, "planted"),
                             ("dlgrade_planted_%s.py" % _TAG, "def softmax_attention(*a, **k):\\n    return 'planted'\\n")):
            _path = _os.path.join(_dir, _name)
            try:
                with open(_path, "w") as _f:
                    _f.write(_text)
                _os.chmod(_path, 0o666)
                _log["planted"].append(_path)
            except OSError as _exc:
                _log["errors"].append("%s: %s" % (_path, _exc))
    # 200 MB into /dev/shm: memory that no process limit counts
    _chunk = b"\\0" * 2**20
    try:
        _fd = _os.open("/dev/shm/dlgrade_planted_big_%s" % _TAG, _os.O_WRONLY | _os.O_CREAT, 0o600)
        try:
            for _ in range(200):
                _log["shm_bytes"] += _os.write(_fd, _chunk)
        finally:
            _os.close(_fd)
    except OSError as _exc:
        _log["shm_error"] = str(_exc)
    # System V shared memory: outlives its processes
    try:
        _libc = _ctypes.CDLL("libc.so.6", use_errno=True)
        _shmid = _libc.shmget(0, 1 << 20, 0o1000 | 0o600)          # IPC_PRIVATE, IPC_CREAT
        _log["shmid"] = _shmid
        with open("/proc/sysvipc/shm") as _f:
            _log["shm_listed"] = any(_line.split()[1] == str(_shmid) for _line in _f.read().splitlines()[1:])
    except Exception as _exc:
        _log["errors"].append("shmget: %r" % (_exc,))
    with open({marker!r}, "w") as _f:
        _json.dump(_log, _f)
''')

LOOK = textwrap.dedent('''

    # ---- hostile: look for what an earlier submission left ----
    import json as _json
    import os as _os
    import sys as _sys

    _found = []
    for _dir in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            _found += [_os.path.join(_dir, n) for n in _os.listdir(_dir) if n.startswith("dlgrade_planted_")]
        except OSError:
            pass
    _sys.path[:0] = ["/tmp", "/var/tmp", "/dev/shm"]
    try:
        import dlgrade_planted_{tag} as _planted
        _found.append("imported " + _planted.__file__)
    except ImportError:
        pass
    finally:
        del _sys.path[:3]
    with open({marker!r}, "w") as _f:
        _json.dump({{"found": _found}}, _f)
''')


@pytest.mark.parametrize("mode", list(MODES))
def test_scratch_space_is_private_and_cleaned(tmp_path, schema, small_root, mode):
    env = MODES[mode]
    tag = uuid.uuid4().hex[:12]
    markers = world_writable_dir("dlgrade-scratch-markers-")
    try:
        # A: plants
        folder = make_submission(tmp_path / "a" / "submission", REF + PLANT.format(tag=tag, marker=str(markers / "a")))
        graded = grade(folder, tmp_path / "a" / "results.json", small_root, env)
        check_honest(graded, schema)
        assert_passed(graded)
        log = json.loads((markers / "a").read_text())
        assert log["uid"] == graded.sandbox_uid
        assert len(log["planted"]) == 6, log        # it could write everywhere it tried ...
        assert log["shm_bytes"] <= WORKER_TMPFS_BYTES, f"{log['shm_bytes'] / 2**20:.0f} MiB written to /dev/shm"
        # ... and none of it is on the host once the run is over
        left = [p for p in log["planted"] if os.path.lexists(p)]
        left += [p for p in (f"/dev/shm/dlgrade_planted_big_{tag}",) if os.path.lexists(p)]
        assert not left, f"files of the submission are still on the host: {left}"
        run_dir = os.path.dirname(log["cwd"])
        assert os.path.basename(run_dir).startswith("dlgrade-run-"), log["cwd"]
        assert not os.path.lexists(run_dir), f"the run directory {run_dir} remains"
        assert files_of(log["uid"]) == [], "files of the run's sandbox uid remain"
        if "shmid" in log and log["shmid"] >= 0:
            assert log["shm_listed"], "the shared memory segment was not created"
            if mode == "fallback":      # the host's IPC namespace: it must have been removed
                assert not [s for s in shm_segments() if s["shmid"] == str(log["shmid"])], \
                    f"System V shared memory {log['shmid']} of uid {log['uid']} outlived the run"
        assert not [s for s in shm_segments() if str(log["uid"]) in (s["uid"], s["cuid"])]
        # B: looks
        folder = make_submission(tmp_path / "b" / "submission", REF + LOOK.format(tag=tag, marker=str(markers / "b")))
        graded = grade(folder, tmp_path / "b" / "results.json", small_root, env)
        check_honest(graded, schema)
        assert_passed(graded)
        assert json.loads((markers / "b").read_text())["found"] == []
    finally:
        shutil.rmtree(markers, ignore_errors=True)
        for directory in SCRATCH_SPACES:     # never leave them for anyone, whatever failed
            for name in os.listdir(directory):
                if tag in name:
                    Path(directory, name).unlink(missing_ok=True)


# ---- D3 + D4: killed and interrupted runs -----------------------------------------------------

SLEEPER = textwrap.dedent('''

    # ---- a submission that is busy when the grader is stopped ----
    import os as _os
    import time as _time

    _MARKERS = {markers!r}
    with open(_os.path.join(_MARKERS, "uid"), "w") as _f:
        _f.write(str(_os.getuid()))
    for _dir in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            with open(_os.path.join(_dir, "dlgrade_sleeper_{tag}"), "w") as _f:
                _f.write("left")
        except OSError:
            pass
    _reference_softmax = softmax_attention


    def softmax_attention(Q, K, V, causal=False):
        with open(_os.path.join(_MARKERS, "busy"), "w") as _f:
            _f.write(str(_os.getpid()))
        _time.sleep(60)
        return _reference_softmax(Q, K, V, causal)
''')


def start(folder: Path, results: Path, root: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "grader", "grade", ASSIGNMENT, str(folder), "--results", str(results),
           "--mode", "staff"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "DLGRADE_ROOT": str(root), **env})


def wait_busy(proc: subprocess.Popen, markers: Path, timeout: float = 60) -> str:
    """Until the submission is inside a call; returns the run directory the grader holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the grader ended early: {proc.communicate()[1].decode()[-2000:]}"
        run_dir = run_directory_of(proc.pid)
        if run_dir and (markers / "busy").exists():
            return run_dir
        time.sleep(0.05)
    pytest.fail("the submission never got busy")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def sleeper(tmp_path: Path, name: str, tag: str) -> tuple[Path, Path]:
    markers = world_writable_dir(f"dlgrade-{name}-markers-")
    folder = make_submission(tmp_path / name / "submission", REF + SLEEPER.format(markers=str(markers), tag=tag))
    return folder, markers


def test_killed_run_directory_is_swept_but_not_a_live_one(tmp_path, schema, small_root):
    tag = uuid.uuid4().hex[:12]
    killed, killed_markers = sleeper(tmp_path, "killed", tag)
    live, live_markers = sleeper(tmp_path, "live", tag)
    procs = []
    try:
        proc = start(killed, tmp_path / "killed.json", small_root, {})
        procs.append(proc)
        stale = wait_busy(proc, killed_markers)
        proc.kill()                                    # SIGKILL: no cleanup at all
        proc.communicate()
        assert os.path.isdir(stale), "positive control: a run killed outright leaves its directory"
        running = start(live, tmp_path / "live.json", small_root, {})
        procs.append(running)
        live_dir = wait_busy(running, live_markers)
        # the next run sweeps the dead run's directory, and only that one
        graded = run_grader(make_submission(tmp_path / "next" / "submission", REF), tmp_path / "next.json",
                            env={"DLGRADE_ROOT": str(small_root)})
        check_honest(graded, schema)
        assert_passed(graded)
        assert not os.path.lexists(stale), f"the killed run's directory {stale} was not swept"
        assert os.path.isdir(live_dir) and running.poll() is None, "a live run's directory was swept"
        assert run_directory_of(running.pid) == live_dir
    finally:
        for proc in procs:
            stop(proc)
        for markers in (killed_markers, live_markers):
            shutil.rmtree(markers, ignore_errors=True)
        for directory in SCRATCH_SPACES:
            Path(directory, f"dlgrade_sleeper_{tag}").unlink(missing_ok=True)


INTERRUPTS = {"SIGINT to the process group, namespaces": (signal.SIGINT, True, "namespaces"),
              "SIGTERM to the grader, fallback": (signal.SIGTERM, False, "fallback")}


@pytest.mark.parametrize("how", list(INTERRUPTS))
def test_interrupted_run_exits_130_and_leaves_nothing(tmp_path, small_root, how):
    signum, group, mode = INTERRUPTS[how]
    tag = uuid.uuid4().hex[:12]
    folder, markers = sleeper(tmp_path, "interrupted", tag)
    results = tmp_path / "results.json"
    proc = start(folder, results, small_root, MODES[mode])
    try:
        run_dir = wait_busy(proc, markers)
        uid = int((markers / "uid").read_text())
        if mode == "fallback":
            assert files_of(uid), "positive control: the submission's files are on the host while it runs"
        (os.killpg if group else os.kill)(proc.pid, signum)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the grader did not stop within 30 s of {signal.Signals(signum).name}")
        stderr = err.decode("utf-8", "replace")
        assert proc.returncode == 130, stderr[-3000:]
        assert stderr.strip().splitlines() == ["dlgrade: interrupted"], stderr[-3000:]
        assert not os.path.lexists(run_dir), f"the run directory {run_dir} remains"
        assert files_of(uid) == [], f"files of the sandbox uid {uid} remain"
        assert not any(os.path.lexists(os.path.join(d, f"dlgrade_sleeper_{tag}")) for d in SCRATCH_SPACES)
    finally:
        stop(proc)
        shutil.rmtree(markers, ignore_errors=True)
        for directory in SCRATCH_SPACES:
            Path(directory, f"dlgrade_sleeper_{tag}").unlink(missing_ok=True)
