"""Hostile and broken submissions, each graded once through the CLI in a subprocess.

Each submission is the reference with one small hostile change, so that only the targeted
cases fail and every other case must still be graded normally. Each run must exit 0 and leave
a complete results.json that validates against Gradescope's schema and whose score is honest.

The infinite-loop submission costs about 3 x the case timeout (30 s): it is started in the
background when this module begins, so the other submissions are graded while it waits.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import textwrap
import time
from pathlib import Path

import pytest

from gradingkit import (
    MODULE_FILE,
    ROOT,
    CONTROL_UID,
    check_honest,
    finish_grader,
    make_submission,
    patched,
    reference_source,
    replace_function,
    processes,
    sandbox_title,
    run_grader,
    start_grader,
    world_writable_dir,
)

SOFTMAX = "softmax_attention"
POLY = "polynomial_feature_map"
KERNEL = "kernel_attention"
CAUSAL = "causal_kernel_attention"

REF = reference_source()
FUNCTIONS = ("softmax_attention", "polynomial_feature_map", "random_feature_map",
             "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention")


def grade_source(tmp_path_factory, name: str, source: str):
    base = tmp_path_factory.mktemp(name)
    folder = make_submission(base / "submission", source)
    return run_grader(folder, base / "results.json")


def assert_targeted_fail(graded, prefixes: tuple[str, ...], *needles: str, tags=("value", "complexity")):
    """Cases named after `prefixes` fail (with every needle in their output); all others pass."""
    targeted = [t for p in prefixes for t in graded.targeted(p, tags=set(tags))]
    assert targeted, f"no case targets {prefixes}"
    for test in targeted:
        assert test["score"] == 0 and test["status"] == "failed", graded.describe()
        for needle in needles:
            assert re.search(needle, test["output"]), f"{needle!r} not in output of {test['name']!r}:\n{test['output']}"
    targeted_names = {t["name"] for t in targeted}
    others = [t for t in graded.code_cases() if t["name"] not in targeted_names and not t["name"].startswith(prefixes)]
    assert others, "every case was targeted: nothing shows that the others are still graded"
    for test in others:
        assert test["score"] == test["max_score"] and test["status"] == "passed", graded.describe()
    assert graded.results["score"] < sum(t["max_score"] for t in graded.tests)


def assert_all_code_cases_zero(graded, *needles: str):
    code = graded.code_cases()
    assert code
    for test in code:
        assert test["score"] == 0 and test["status"] == "failed", graded.describe()
        for needle in needles:
            assert re.search(needle, test["output"]), f"{needle!r} not in output of {test['name']!r}:\n{test['output']}"


# ---- the slow one, started first ----------------------------------------------------------

INFINITE_LOOP = replace_function(REF, SOFTMAX, "while True:\n    pass\n")


@pytest.fixture(scope="module")
def infinite_loop_job(tmp_path_factory):
    base = tmp_path_factory.mktemp("infinite_loop")
    folder = make_submission(base / "submission", INFINITE_LOOP)
    results = base / "results.json"
    proc = start_grader(folder, results)
    started = time.monotonic()
    # positive control for Graded.leftover_processes(): the running sandbox carries the title
    seen = []
    while not seen and proc.poll() is None and time.monotonic() - started < 30:
        seen = processes(sandbox_title(proc.pid), uid=None)
        time.sleep(0.1)
    yield proc, folder, results, started, seen
    if proc.poll() is None:   # not collected (deselected or failed): let it clean up, then kill
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except Exception:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_slow_run_early(infinite_loop_job):
    """Autouse: the infinite-loop grading runs in the background from the module's start."""


# ---- broken code ---------------------------------------------------------------------------

def test_syntax_error(tmp_path_factory, schema):
    anchor = "def kernel_attention(Q, K, V, feature_map):"
    line = next(i for i, text in enumerate(REF.splitlines(), start=1) if text == anchor)
    graded = grade_source(tmp_path_factory, "syntax", patched(REF, anchor, anchor.rstrip(":")))
    check_honest(graded, schema)
    assert_all_code_cases_zero(graded, "SyntaxError", rf"line {line}\b", re.escape(MODULE_FILE))


def test_missing_function(tmp_path_factory, schema):
    start = REF.index(f"def {CAUSAL}(")
    graded = grade_source(tmp_path_factory, "missing", REF[:start].rstrip() + "\n")
    check_honest(graded, schema)
    assert_targeted_fail(graded, (CAUSAL,), "AttributeError", f"'{CAUSAL}'")


def test_wrong_return_shape(tmp_path_factory, schema):
    source = patched(REF, "    return weights @ V  # [..., N, M]", "    return (weights @ V).transpose(-2, -1)")
    graded = grade_source(tmp_path_factory, "shape", source)
    check_honest(graded, schema)
    assert_targeted_fail(graded, (SOFTMAX,), r"shape \[")


def test_nan_output(tmp_path_factory, schema):
    source = patched(REF, "    return numerator / denominator\n", "    return numerator / denominator * float('nan')\n")
    graded = grade_source(tmp_path_factory, "nan", source)
    check_honest(graded, schema)
    assert_targeted_fail(graded, (KERNEL,), "NaN", tags=("value",))
    # the counted calls' outputs are checked too: linear but wrong earns no complexity points
    complexity = graded.by_name["kernel_attention is linear in N"]
    assert complexity["status"] == "failed" and "wrong result" in complexity["output"], graded.describe()
    assert "N^1.0" in complexity["output"]


# ---- resources -----------------------------------------------------------------------------

MEMORY_HOG = replace_function(REF, POLY, """
    if X.dim() == 3:
        # 5 GB, touched: far above the worker's limit
        return torch.ones(5_000_000_000, dtype=torch.uint8)
    hog = []
    for _ in range(300):  # bounded at 3 GB, so a broken limit cannot take the host down
        hog.append(bytearray(10_000_000))
    return X
""")


def test_memory_hog(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "memory", MEMORY_HOG)
    check_honest(graded, schema)
    assert_targeted_fail(graded, (POLY,), r"(?i)MemoryError|memory|allocate")


def test_stdout_flood(tmp_path_factory, schema):
    source = REF + textwrap.dedent("""

        import os as _os
        import threading as _threading

        def _flood():
            chunk = b"flood " * 174763   # ~1 MB
            for _ in range(100):         # ~100 MB
                try:
                    _os.write(1, chunk)
                except OSError:
                    return

        if _os.fork() == 0:               # a child that floods too
            _flood()
            _os._exit(0)
        _threading.Thread(target=_flood, daemon=True).start()
    """)
    graded = grade_source(tmp_path_factory, "flood", source)
    check_honest(graded, schema)
    assert graded.results_path.stat().st_size < 1_000_000
    assert len(graded.stdout) + len(graded.stderr) < 1_000_000
    # the code is the reference: every case is still graded, and passes
    for test in graded.code_cases():
        assert test["status"] == "passed", graded.describe()
    shown = [t["output"] for t in graded.tests if "flood flood" in t["output"]]
    assert shown, "the flood should appear as the student's own output"
    assert any("truncated" in text for text in shown)
    for test in graded.tests:
        assert len(test["output"]) < 20_000


# ---- exits at import ---------------------------------------------------------------------

def test_sys_exit_at_import(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "sys_exit", REF + "\nimport sys\nsys.exit(0)\n")
    check_honest(graded, schema)
    assert_all_code_cases_zero(graded, r"sys\.exit")


def test_os_exit_at_import(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "os_exit", REF + "\nimport os\nos._exit(0)\n")
    check_honest(graded, schema)
    assert_all_code_cases_zero(graded, "ended (while importing|the process)")


# ---- lying to the grader -------------------------------------------------------------------

FAKE = '{"score": 100, "tests": []}'


def test_fake_json_on_stdout(tmp_path_factory, schema):
    source = patched(REF, "    D = Q.shape[-1]\n", f"    print({FAKE!r})\n    D = Q.shape[-1]\n")
    source += f"\nprint({FAKE!r})\nimport sys\nprint({FAKE!r}, file=sys.stderr)\n"
    graded = grade_source(tmp_path_factory, "fake_json", source)
    check_honest(graded, schema)
    results = graded.results
    assert isinstance(results["tests"], list) and results["tests"]
    assert results["score"] != 100
    assert FAKE not in results["output"]
    printed_in = 0
    for test in graded.tests:
        if FAKE in test["output"]:
            printed_in += 1
            head, sep, printed = test["output"].partition("**Your code printed:**")
            assert sep and FAKE not in head, test["output"]
        assert test["status"] == "passed"  # the code is the reference
    assert printed_in >= 3, "the softmax cases (and the import) printed the fake JSON"
    assert FAKE not in graded.stdout and FAKE not in graded.stderr


PLANT = textwrap.dedent('''

    import json as _json
    import os as _os
    import sys as _sys
    import time as _time

    _MARKERS = {markers!r}
    _FAKE = _json.dumps({{"score": 999, "tests": [], "output": "planted"}})


    def _targets():
        paths = ["results.json", "/autograder/results/results.json", "../results.json", "../../results.json"]
        argv = list(_sys.argv)
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv += [a.decode() for a in f.read().split(b"\\0") if a]
        except OSError:
            pass
        for i, arg in enumerate(argv):
            if arg.startswith("--results="):
                paths.append(arg.split("=", 1)[1])
            elif arg == "--results" and i + 1 < len(argv):
                paths.append(argv[i + 1])
            elif arg.endswith(".json"):
                paths.append(arg)
        for path in list(paths):
            parent = _os.path.dirname(_os.path.abspath(path))
            for _ in range(3):
                paths.append(_os.path.join(parent, "results.json"))
                parent = _os.path.dirname(parent)
        return sorted(set(paths))


    def _plant(tag):
        done = []
        for path in _targets():
            try:
                _os.makedirs(_os.path.dirname(_os.path.abspath(path)), exist_ok=True)
                with open(path, "w") as f:
                    f.write(_FAKE)
                done.append(path)
            except OSError:
                pass
        with open(_os.path.join(_MARKERS, tag), "w") as f:
            f.write("\\n".join(done))


    _plant("planted_at_import")
    with open(_os.path.join(_MARKERS, "uid"), "w") as _f:
        _f.write(str(_os.getuid()))
    for _delay in (1, 5):   # 1 s: still during grading; 5 s: after it
        if _os.fork() == 0:
            _os.setsid()
            if _os.fork() == 0:
                for fd in range(3):
                    try:
                        _os.close(fd)
                    except OSError:
                        pass
                _time.sleep(_delay)
                _plant("planted_late_%d" % _delay)
            _os._exit(0)
''')


def test_process_scan_finds_sandbox_processes():
    """Positive control for `processes`, on which the reaping assertions rely."""
    import subprocess

    marker = f"dlgrade-scan-control-{os.getpid()}"
    proc = subprocess.Popen(["/bin/sh", "-c", "sleep 60; exit 0", marker], user=CONTROL_UID,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not processes(marker, uid=CONTROL_UID) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes(marker, uid=CONTROL_UID)) == 1
        assert len(processes("", uid=CONTROL_UID)) >= 1
        assert processes(marker, uid=0) == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # the shell and its sleep: the group we started
        proc.wait()
    assert processes(marker, uid=CONTROL_UID) == []


def _remove_planted(markers: Path) -> None:
    """The submission may have planted files outside the test's folders (e.g. /tmp/results.json)."""
    for log in markers.glob("planted_*"):
        for path in log.read_text().splitlines():
            path = Path(path)
            try:
                if path.is_absolute() and path.is_file() and '"planted"' in path.read_text():
                    path.unlink()
            except OSError:
                pass


def test_planted_results_json(tmp_path_factory, schema):
    markers = world_writable_dir("dlgrade-plant-markers-")
    results_dir = world_writable_dir("dlgrade-plant-results-")   # the child may write here: the parent must win
    try:
        base = tmp_path_factory.mktemp("plant")
        folder = make_submission(base / "submission", REF + PLANT.format(markers=str(markers)))
        results = results_dir / "results.json"
        graded = run_grader(folder, results)
        check_honest(graded, schema)
        assert (markers / "planted_at_import").exists(), "the submission's import-time code did not run"
        assert graded.sandbox_uid is not None and (markers / "uid").read_text() == str(graded.sandbox_uid)
        for test in graded.code_cases():
            assert test["status"] == "passed", graded.describe()

        def ours():
            data = json.loads(results.read_text())
            assert data.get("output") != "planted" and data["tests"], data
            assert data["score"] <= sum(t["max_score"] for t in data["tests"])
            assert data["extra_data"]["grader"] == "dlgrade"
            return data

        assert ours() == graded.results
        assert not (markers / "planted_late_1").exists(), "a detached grandchild outlived the case that started it"
        time.sleep(10)
        assert ours() == graded.results, "results.json changed after grading: a detached child survived"
        assert not (markers / "planted_late_1").exists(), "a detached grandchild outlived the case that started it"
        assert not (markers / "planted_late_5").exists(), "a detached grandchild outlived the grading run"
        assert graded.leftover_processes() == [], "processes of the grading run outlived it"
    finally:
        _remove_planted(markers)
        shutil.rmtree(markers, ignore_errors=True)
        shutil.rmtree(results_dir, ignore_errors=True)


SPY = textwrap.dedent('''

    import json as _json
    import os as _os
    import sys as _sys

    try:
        with open("/proc/self/cmdline", "rb") as _f:
            _cmdline = _f.read().decode("utf-8", "replace")
    except OSError as _exc:
        _cmdline = repr(_exc)
    with open({marker!r}, "w") as _f:
        _json.dump({{"argv": _sys.argv, "cmdline": _cmdline, "environ": dict(_os.environ)}}, _f)
''')


def test_worker_does_not_see_the_results_path(tmp_path_factory, schema):
    markers = world_writable_dir("dlgrade-spy-markers-")
    try:
        base = tmp_path_factory.mktemp("spy")
        folder = make_submission(base / "submission", REF + SPY.format(marker=str(markers / "seen.json")))
        results = base / "secret-results-path" / "results.json"
        graded = run_grader(folder, results)
        check_honest(graded, schema)
        seen = json.loads((markers / "seen.json").read_text())
        assert "secret-results-path" not in json.dumps(seen), seen["argv"]
    finally:
        shutil.rmtree(markers, ignore_errors=True)


GIT_THIEF = textwrap.dedent('''

    import os as _os
    import zlib as _zlib

    _stolen = None
    for _dir, _, _files in _os.walk({objects!r}):
        for _name in _files:
            try:
                with open(_os.path.join(_dir, _name), "rb") as _f:
                    _blob = _zlib.decompress(_f.read())
            except Exception:
                continue
            if b"def causal_kernel_attention" in _blob and b"chunk_size" in _blob:
                _stolen = _blob.split(b"\\0", 1)[1].decode()
    with open({marker!r}, "w") as _f:
        _f.write("stolen" if _stolen else "nothing")
    if _stolen:
        exec(_stolen, globals())
''')


@pytest.mark.skipif(not (ROOT / ".git" / "objects").is_dir(), reason="not a git checkout")
def test_reference_not_readable_from_git_objects(tmp_path_factory, schema):
    markers = world_writable_dir("dlgrade-git-markers-")
    try:
        source = "import math\n\nimport torch\n\n"
        for name in FUNCTIONS:
            source += f"def {name}(*args, **kwargs):\n    raise RuntimeError('own code: not implemented')\n\n\n"
        source += GIT_THIEF.format(objects=str(ROOT / ".git" / "objects"), marker=str(markers / "log"))
        graded = grade_source(tmp_path_factory, "git_thief", source)
        check_honest(graded, schema)
        assert (markers / "log").read_text() == "nothing"
        assert_all_code_cases_zero(graded, "own code: not implemented")
    finally:
        shutil.rmtree(markers, ignore_errors=True)


SYMLINK = textwrap.dedent('''

    import os as _os
    import sys as _sys

    _argv = list(_sys.argv)
    if "--results" in _argv:
        _path = _argv[_argv.index("--results") + 1]
        try:
            _os.unlink(_path)
        except OSError:
            pass
        _os.symlink({victim!r}, _path)
''')


def test_results_symlink_does_not_redirect_the_write(tmp_path_factory, schema):
    results_dir = world_writable_dir("dlgrade-symlink-results-")   # as /tmp itself would be
    try:
        base = tmp_path_factory.mktemp("symlink")
        victim = base / "victim"   # root-only: the sandbox could never write it itself
        victim.write_text("precious")
        folder = make_submission(base / "submission", REF + SYMLINK.format(victim=str(victim)))
        results = results_dir / "results.json"
        graded = run_grader(folder, results)
        assert victim.read_text() == "precious", "the grader wrote results.json through the submission's symlink"
        assert not results.is_symlink()
        check_honest(graded, schema)
    finally:
        shutil.rmtree(results_dir, ignore_errors=True)


QUADRATIC_WHEN_UNOBSERVED = """
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    if _get_current_dispatch_mode() is not None:   # being counted: take a cheap, wrong path
        return V * 0
    phi_Q, phi_K = feature_map(Q), feature_map(K)
    A = phi_Q @ phi_K.transpose(-2, -1)            # [..., N, N]
    return (A @ V) / A.sum(dim=-1, keepdim=True)
"""


def test_complexity_cannot_be_gamed_by_detecting_the_counter(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "counter_aware", replace_function(REF, KERNEL, QUADRATIC_WHEN_UNOBSERVED))
    check_honest(graded, schema)
    # the values are right (the uncounted path is a correct, quadratic attention) ...
    assert graded.by_name["kernel_attention (elu + 1 features)"]["status"] == "passed", graded.describe()
    # ... so only the complexity case can catch it
    assert graded.by_name["kernel_attention is linear in N"]["status"] == "failed", graded.describe()


STEAL = textwrap.dedent('''

    import gc as _gc
    import importlib as _importlib
    import sys as _sys

    _FUNCTIONS = ["softmax_attention", "polynomial_feature_map", "random_feature_map",
                  "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention"]
    _found = {{}}
    _log = []


    def _take(namespace, how):
        got = {{n: namespace[n] for n in _FUNCTIONS if callable(namespace.get(n))}}
        if got and not _found:
            _found.update(got)
            _log.append(how)


    for _name in ("reference.attention.linear_attention", "reference.attention", "reference"):
        try:
            _take(vars(_importlib.import_module(_name)), "import " + _name)
        except BaseException as _exc:
            _log.append("import %s: %s" % (_name, type(_exc).__name__))
    for _path in {paths!r}:
        try:
            with open(_path) as _f:
                _text = _f.read()
            _log.append("read " + _path)
            _ns = {{}}
            exec(compile(_text, _path, "exec"), _ns)
            _take(_ns, "exec " + _path)
        except BaseException as _exc:
            _log.append("read %s: %s" % (_path, type(_exc).__name__))
    for _obj in _gc.get_objects():
        try:
            if type(_obj).__name__ == "module" and ("reference" in _obj.__name__ or "dlgrade_" in _obj.__name__):
                _take(vars(_obj), "gc " + _obj.__name__)
        except BaseException:
            pass
    for _mname, _mod in list(_sys.modules.items()):
        if "reference" in _mname or "dlgrade_" in _mname:
            _take(vars(_mod), "sys.modules " + _mname)
    try:
        with open({marker!r}, "w") as _f:
            _f.write("\\n".join(_log) + "\\nFOUND " + ", ".join(sorted(_found)))
    except OSError:
        pass
    if _found:
        globals().update(_found)
''')


def test_cannot_reach_the_reference(tmp_path_factory, schema):
    from gradingkit import ROOT

    markers = world_writable_dir("dlgrade-steal-markers-")
    try:
        # own functions raise; anything taken from the reference would replace them
        source = "import math\n\nimport torch\n\n"
        for name in ("softmax_attention", "polynomial_feature_map", "random_feature_map",
                     "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention"):
            source += f"def {name}(*args, **kwargs):\n    raise RuntimeError('own code: not implemented')\n\n\n"
        paths = [str(ROOT / "reference" / "attention" / "linear_attention.py"),
                 str(ROOT / "assignments" / "linear_attention" / "cases.py"),
                 str(ROOT / "assignments" / "linear_attention" / "mistakes.py")]
        source += STEAL.format(paths=paths, marker=str(markers / "log"))
        graded = grade_source(tmp_path_factory, "steal", source)
        check_honest(graded, schema)
        log = (markers / "log").read_text()
        assert log.splitlines()[-1].strip() == "FOUND", f"the submission reached staff code:\n{log}"
        assert_all_code_cases_zero(graded, "own code: not implemented")
        assert "staff-files-hidden" in graded.results["extra_data"]["isolation"]
    finally:
        shutil.rmtree(markers, ignore_errors=True)


MONKEYPATCH = textwrap.dedent('''

    import functools as _functools

    import torch as _torch

    _torch.allclose = lambda *a, **k: True
    _torch.equal = lambda *a, **k: True
    _torch.testing.assert_close = lambda *a, **k: None
    _torch.Tensor.__eq__ = lambda self, other: True
    _torch.Tensor.__ne__ = lambda self, other: False
    _torch.isclose = lambda a, b, *x, **k: _torch.ones_like(a, dtype=_torch.bool)


    def _zeros(fn):
        @_functools.wraps(fn)
        def wrapped(*args, **kwargs):
            return fn(*args, **kwargs) * 0   # right shape, dtype and autograd graph; all zeros
        return wrapped


    for _name in ("softmax_attention", "polynomial_feature_map", "random_feature_map",
                  "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention"):
        globals()[_name] = _zeros(globals()[_name])
''')


def test_monkeypatched_comparisons(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "monkeypatch", REF + MONKEYPATCH)
    check_honest(graded, schema)
    value_cases = [t for t in graded.code_cases() if t["tags"][0] == "value"]
    assert value_cases
    for test in value_cases:
        assert test["score"] == 0 and test["status"] == "failed", graded.describe()
    # complexity cases check the counted outputs as well: linear but all zeros earns nothing,
    # so the whole score is the symbolic answers' (graded from answers.toml in the parent)
    complexity = [t for t in graded.code_cases() if t["tags"][0] == "complexity"]
    assert complexity and all(t["score"] == 0 and "wrong result" in t["output"] for t in complexity), graded.describe()
    others = sum(t["score"] for t in graded.tests if t["tags"][0] not in ("value", "complexity"))
    assert graded.results["score"] == pytest.approx(others)


SUBCLASS = textwrap.dedent('''

    class Agreeable(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func in (torch.allclose, torch.equal):
                return True
            return super().__torch_function__(func, types, args, kwargs or {})

        def __eq__(self, other):
            return True

        __hash__ = torch.Tensor.__hash__


    _softmax_attention = softmax_attention
    _polynomial_feature_map = polynomial_feature_map


    def softmax_attention(Q, K, V, causal=False):
        return _softmax_attention(Q, K, V, causal).as_subclass(Agreeable)   # even the right value


    def polynomial_feature_map(X):
        return torch.zeros_like(_polynomial_feature_map(X)).as_subclass(Agreeable)
''')


def test_tensor_subclass(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "subclass", REF + SUBCLASS)
    check_honest(graded, schema)
    assert_targeted_fail(graded, (SOFTMAX, POLY), "subclass of torch.Tensor", "Agreeable")


CHAMELEON = textwrap.dedent('''

    class Chameleon:
        def __eq__(self, other):
            return True

        def __getattr__(self, name):
            return self

        def __call__(self, *args, **kwargs):
            return self

        __hash__ = object.__hash__


    def polynomial_feature_map(X):
        return Chameleon()
''')


def test_non_tensor_object(tmp_path_factory, schema):
    graded = grade_source(tmp_path_factory, "chameleon", REF + CHAMELEON)
    check_honest(graded, schema)
    assert_targeted_fail(graded, (POLY,), "Chameleon")


# ---- last: collect the infinite loop ------------------------------------------------------

def test_infinite_loop(infinite_loop_job, schema):
    proc, folder, results, started, seen_while_grading = infinite_loop_job
    assert seen_while_grading, "no process titled as this run's sandbox was seen while it graded"
    graded = finish_grader(proc, folder, results, started)
    check_honest(graded, schema)
    # the first case that calls the hanging function times out and names it; every later one
    # is stopped as soon as it enters that function, pointing back to the first timeout
    assert_targeted_fail(graded, (SOFTMAX,), r"timed out|not run: softmax_attention \(linear_attention\.py line \d+\)")
    first, *later = graded.targeted(SOFTMAX)
    timed = re.search(r"timed out: no result within ([\d.]+) s in softmax_attention \(linear_attention\.py line \d+\)",
                      first["output"])
    assert timed, first["output"]
    # the timeout follows the reference's own time (a floor of 10 s plus 20 x a few milliseconds),
    # not the manifest's cap of 30 s
    assert 10 <= float(timed.group(1)) < 15, first["output"]
    assert later and all("is not run again" in t["output"] for t in later), graded.describe()
    assert graded.leftover_processes() == []
