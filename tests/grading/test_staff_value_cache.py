"""The staff-value cache (grader/oracle.py): computed once (`dlgrade warm`), it makes a failing
submission cost no staff computation at all, grades exactly as without it, and stays out of
the student's reach in both isolation modes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from gradingkit import ROOT, make_submission, patched, reference_source, run_grader

from grader import oracle

EXAMPLE = ROOT / "examples" / "linear_attention_submission"
MODES = {"namespaces": {}, "fallback": {"DLGRADE_NAMESPACES": "0"}}


def warm(cache, assignment="linear_attention"):
    run = subprocess.run([sys.executable, "-m", "grader", "warm", assignment, "--quiet"], cwd=ROOT,
                         env={**os.environ, "DLGRADE_CACHE_DIR": str(cache)}, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _scores(graded) -> dict:
    return {t["name"]: (t["score"], "Likely mistake" in t["output"]) for t in graded.tests}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the disk cache is kept only as root (the sandbox then runs as another uid)")
    path = tmp_path_factory.mktemp("oracle") / "cache"
    assert "staff values computed" in warm(path)
    return path


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """The example graded without any cache: every staff value computed in the run."""
    graded = run_grader(EXAMPLE, tmp_path_factory.mktemp("cold") / "results.json", env={"DLGRADE_CACHE_DIR": "off"})
    assert graded.results["extra_data"]["staff_values_computed"] > 0
    return _scores(graded)


def test_a_failing_submission_computes_no_staff_value_once_warm_and_grades_as_without_cache(cache, cold, tmp_path):
    warmed = run_grader(EXAMPLE, tmp_path / "warm.json", env={"DLGRADE_CACHE_DIR": str(cache)})
    assert warmed.results["score"] < sum(t["max_score"] for t in warmed.tests), "the example must fail somewhere"
    assert warmed.results["extra_data"]["staff_values_computed"] == 0, warmed.results["extra_data"]
    assert _scores(warmed) == cold
    assert any(hinted for _, hinted in cold.values()), "mistake hints come from the cache too"


def test_warming_twice_computes_nothing_new(cache):
    assert "0 staff values computed" in warm(cache)


def test_a_cache_directory_others_can_read_is_not_used(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the disk cache is kept only as root")
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    monkeypatch.setenv("DLGRADE_CACHE_DIR", str(loose))
    assert oracle.cache_root() is None
    monkeypatch.setenv("DLGRADE_CACHE_DIR", "off")
    assert oracle.cache_root() is None


PROBE = '''

def _probe():
    import os as _os
    _found = []
    for _directory, _dirs, _files in _os.walk({cache!r}):
        for _name in _files:
            try:
                with open(_os.path.join(_directory, _name), "rb") as _f:
                    _found.append(len(_f.read()))
            except OSError:
                pass
    try:
        _listed = len(_os.listdir({cache!r}))
    except OSError as _exc:
        _listed = type(_exc).__name__
    print("CACHE-PROBE: listed %s, read %d files" % (_listed, len(_found)))
'''


@pytest.mark.parametrize("mode", MODES)
def test_the_sandbox_cannot_read_the_cache(cache, tmp_path, mode):
    assert any(cache.rglob("*.wire")), "the probe needs a filled cache to look at"
    source = patched(reference_source(), "    D = Q.shape[-1]\n", "    _probe()\n    D = Q.shape[-1]\n")
    folder = make_submission(tmp_path / "submission", source + PROBE.format(cache=str(cache)))
    graded = run_grader(folder, tmp_path / "results.json", env={"DLGRADE_CACHE_DIR": str(cache), **MODES[mode]})
    printed = [t["output"] for t in graded.tests if "CACHE-PROBE" in t["output"]]
    assert printed, "the probe did not run"
    # covered by an empty mount (namespaces: listed 0), or closed by its mode (fallback: an error)
    assert all("read 0 files" in p for p in printed), printed[0]
    assert all(any(f"listed {what}," in p for what in ("0", "PermissionError", "FileNotFoundError")) for p in printed)


@pytest.mark.parametrize("damage", ["truncated", "not a frame", "empty"])
def test_a_damaged_cache_file_is_computed_again_not_trusted(cache, cold, tmp_path, damage):
    """The cache is root's own, but a disk can still tear a file: such a file is recomputed and
    replaced, and the grades are those of a run without the cache."""
    damaged = tmp_path / "cache"
    shutil.copytree(cache, damaged)
    files = sorted(damaged.rglob("*.wire"))
    for path in files:
        data = path.read_bytes()
        path.write_bytes({"truncated": data[: len(data) // 2], "not a frame": b"\x80\x04K\x01." * 8,
                          "empty": b""}[damage])
    written = {path: path.read_bytes() for path in files}
    graded = run_grader(EXAMPLE, tmp_path / "results.json", env={"DLGRADE_CACHE_DIR": str(damaged)})
    assert _scores(graded) == cold
    computed = graded.results["extra_data"]["staff_values_computed"]
    assert computed > 0
    # every value the run needed was computed again and its file replaced (the run reads only
    # the values its cases ask for: the mistakes' values of cases it passed are left as they are)
    replaced = [path for path in files if path.read_bytes() != written[path]]
    assert len(replaced) == computed, (len(replaced), computed)
