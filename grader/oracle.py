"""The staff side's values: what the reference, and each known mistake, computes for a call on
given inputs and seed. Shared by grading (expected values, timeouts, mistake hints), `record`
(golden files), `verify` and `warm`.

Every value is computed once per assignment version: kept in memory for the process, and on
disk where the sandbox can never read it (see `cache_root`), so that a failing submission costs
no more than a correct one: the known mistakes' values are not computed again for each student.
With a warm disk cache (`dlgrade warm`, run by the Gradescope image's setup.sh), the parent
does not even load the reference: minbert's parent then never holds the pretrained model.

Staff code runs exactly as the student's does: the same seed (grader/seeding.py), the same call
interpreter and the same measures (grader/sandbox/measures.py), normalized to plain data.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from grader.modules import load_module_set
from grader.sandbox import measures, wire
from grader.seeding import seed_everything

GRADER = Path(__file__).resolve().parent
# engine files that change what a staff call computes; a change makes every cached value stale
ENGINE_FILES = ("seeding.py", "modules.py", "mutants.py", "cases.py", "sandbox/invoke.py", "sandbox/measures.py",
                "sandbox/wire.py")
DEFAULT_CACHE_ROOT = "/var/cache/dlgrade"
STALE_AFTER_S = 14 * 24 * 3600      # a version directory untouched this long is removed


@dataclass(frozen=True)
class Computed:
    """One staff call's outcome: its plain value and how long it took, or why it raised (a known
    mistake may raise where the reference does not; the reference raising is a grader bug)."""
    value: object
    seconds: float
    raised: str = ""


def call_value(modules: dict, spec: dict, inputs, seed: int | None, measure: str = "call",
               options: dict | None = None):
    """Run staff code as the student's is run: seeded, through the measure's function."""
    seed_everything(seed if seed is not None else 0)
    return measures.run(measure, modules, spec, inputs, options)


def reference_value(modules: dict, case, inputs, default_module: str, seed: int | None = None):
    """The plain value of `case`'s call with `modules` (the reference's, a mistake's, ...)."""
    return call_value(modules, case.call.spec(default_module), inputs, seed)


def cache_root() -> Path | None:
    """The disk cache, or None where there is none. Only as root: the sandbox then runs as
    another uid, and the cache is a 0700 root directory (and hidden from the sandbox's view of
    the filesystem as well). As any other user the sandbox may share our uid in the fallback
    isolation, so nothing staff-only is written to disk. DLGRADE_CACHE_DIR moves it; "off"
    turns it off."""
    setting = os.environ.get("DLGRADE_CACHE_DIR", DEFAULT_CACHE_ROOT)
    if setting == "off" or os.geteuid() != 0:
        return None
    root = Path(setting)
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = root.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        return None     # someone else's, or readable by others: not a place for expected values
    return root


def assignment_version(assignment) -> str:
    """A digest of everything a staff value depends on: the reference, the assignment's own code
    (cases, mistakes, glue, support files, manifest), the engine files that run staff calls and
    torch's version. A value cached under another version is never used."""
    digest = hashlib.sha256(torch.__version__.encode())
    files = [GRADER / name for name in ENGINE_FILES]
    files += sorted(p for p in assignment.path.rglob("*") if p.suffix in (".py", ".toml") and p.is_file()
                    and "starter" not in p.relative_to(assignment.path).parts)
    files += [assignment.reference_files[k] for k in sorted(assignment.reference_files)]
    # support files may live in a sibling assignment (summarization part II uses part I's)
    files += sorted(p.resolve() for p in set(assignment.support_files.values())
                    if not p.resolve().is_relative_to(assignment.path.resolve()))
    for path in files:
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()[:24]


def _remove_stale(root: Path, keep: Path) -> None:
    """Versions nobody used for two weeks (a reference since edited, a removed homework)."""
    now = time.time()
    for entry in root.iterdir():
        try:
            if entry != keep and entry.is_dir() and not entry.is_symlink() and now - entry.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def _key(who: str, measure: str, spec: dict, inputs, seed: int | None, options: dict | None) -> str:
    digest = hashlib.sha256(wire.encode({"who": who, "measure": measure, "spec": spec, "seed": seed,
                                         "options": options or {}}))
    digest.update(wire.encode(inputs))
    return digest.hexdigest()


class Oracle:
    """Reference and mistake values of one assignment, cached by a key of the call, its inputs,
    its seed and the measure. Get it with `Oracle.of(assignment)`: one per loaded assignment."""

    def __init__(self, assignment, root: Path | None = None):
        self.assignment = assignment
        self.version = assignment_version(assignment)
        self.directory = root / f"{assignment.name}-{self.version}" if root else None
        if root:
            _remove_stale(root, keep=self.directory)
        self._memory: dict[str, Computed] = {}
        self._modules: dict[str, dict] = {}
        self.computed = 0           # staff calls actually run (not found in a cache)
        self._touched = False

    @classmethod
    def of(cls, assignment) -> "Oracle":
        if "oracle" not in assignment.cache:
            assignment.cache["oracle"] = cls(assignment, cache_root())
        return assignment.cache["oracle"]

    # -- the staff module sets, loaded only when a value is not cached
    def _staff_files(self) -> tuple[dict[str, Path], dict[str, Path]]:
        support = {name: path for name, path in self.assignment.support_files.items() if "/" not in name}
        reference = {f: p for f, p in self.assignment.reference_files.items() if f.endswith(".py")}
        return support, reference

    def _support_modules(self) -> dict:
        if "support" not in self._modules:
            support, _ = self._staff_files()
            self._modules["support"] = load_module_set(support, "support") if support else {}
        return self._modules["support"]

    def reference_modules(self) -> dict:
        if "reference" not in self._modules:
            support, reference = self._staff_files()
            self._modules["reference"] = load_module_set({**support, **reference}, "reference",
                                                         shared=self._support_modules())
        return self._modules["reference"]

    def mutant_modules(self, mutant) -> dict:
        key = f"mutant {mutant.name}"
        if key not in self._modules:
            support, reference = self._staff_files()
            patched = mutant.apply(Path(reference[mutant.file]).read_text())
            self._modules[key] = load_module_set({**support, **reference}, key, {mutant.file: patched},
                                                 shared=self._support_modules())
        return self._modules[key]

    # -- values
    def reference(self, spec: dict, inputs, seed: int | None, measure: str = "call",
                  options: dict | None = None) -> Computed:
        """The reference's value; its exception propagates (a grader bug, not a student's)."""
        return self._get("reference", spec, inputs, seed, measure, options, self.reference_modules, strict=True)

    def mistake(self, mutant, spec: dict, inputs, seed: int | None) -> Computed:
        """A known mistake's value, or `raised` when the mistaken code raises."""
        return self._get(f"mutant {mutant.name}", spec, inputs, seed, "call", None,
                         lambda: self.mutant_modules(mutant), strict=False)

    def _get(self, who, spec, inputs, seed, measure, options, modules, strict: bool) -> Computed:
        if not measures.MEASURES[measure].deterministic:   # a timing is measured, never remembered
            return self._compute(modules(), spec, inputs, seed, measure, options, strict)
        key = _key(who, measure, spec, inputs, seed, options)
        if key in self._memory:
            return self._memory[key]
        computed = self._load(key)
        if computed is None:
            computed = self._compute(modules(), spec, inputs, seed, measure, options, strict)
            self._store(key, computed)
        self._memory[key] = computed
        return computed

    def _compute(self, modules, spec, inputs, seed, measure, options, strict: bool) -> Computed:
        self.computed += 1
        start = time.perf_counter()
        try:
            value = call_value(modules, spec, inputs, seed, measure, options)
        except Exception as exc:
            if strict:
                raise
            return Computed(None, time.perf_counter() - start, raised=f"{type(exc).__name__}: {exc}"[:500])
        return Computed(value, time.perf_counter() - start)

    # -- the disk cache: one file per value, written atomically, read back as trusted data
    def _path(self, key: str) -> Path | None:
        return self.directory / key[:2] / f"{key}.wire" if self.directory else None

    def _load(self, key: str) -> Computed | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        if not self._touched:
            self._touched = True
            try:
                os.utime(self.directory)      # in use: not stale
            except OSError:
                pass
        try:
            entry = wire.decode(path.read_bytes(), trusted=True)
            return Computed(entry["value"], float(entry["seconds"]), str(entry["raised"]))
        except Exception:   # a torn or foreign file is recomputed and replaced
            return None

    def _store(self, key: str, computed: Computed) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            path.parent.mkdir(mode=0o700, exist_ok=True)
            data = wire.encode({"value": computed.value, "seconds": computed.seconds, "raised": computed.raised})
            fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except (OSError, wire.WireError):
            pass            # a cache that cannot be written only costs time
