"""`dlgrade package`: the Gradescope autograder zip (setup.sh and run_autograder at its root),
and `dlgrade bundle`: the public student bundle (engine, starter, public golden values; no
reference, no expected answers, no mutant patches, which quote reference code)."""
from __future__ import annotations

import json
import re
import tomllib
import zipfile
from pathlib import Path

from grader.assignment import Assignment
from grader.paths import ROOT

SOURCE_DIRS = ("grader", "reference")
SOURCE_FILES = ("pyproject.toml", "README.md")


def _add_tree(archive: zipfile.ZipFile, folder: Path, arc_prefix: str, skip: tuple[str, ...] = ()) -> None:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and "__pycache__" not in relative.parts and relative.parts[0] not in skip:
            archive.write(path, f"{arc_prefix}/{path.relative_to(folder).as_posix()}")


def _add_shared_support(archive: zipfile.ZipFile, assignment: Assignment) -> None:
    """Support files the manifest takes from a sibling assignment (summarization part II uses part
    I's stand-ins and notebook replay), where the manifest's relative path finds them."""
    for source in sorted(set(assignment.support_files.values())):
        resolved = source.resolve()
        if not resolved.is_relative_to(assignment.path.resolve()):
            archive.write(resolved, resolved.relative_to(ROOT.resolve()).as_posix())


class Packaged(type(Path())):
    """The autograder zip's path, with `warnings`: what staff should know before uploading it
    (e.g. that the labels packed are the public, hidden ones). Behaves as a plain Path."""
    warnings: list[str] = []   # set on each result; paths derived from it (.parent) have none


def requirements(pyproject: Path | None = None) -> str:
    """requirements.txt of the autograder: the project's third-party dependencies only (what
    setup.sh installs). The project itself is never installed: `pip install .` would copy
    reference/ into site-packages, where the sandbox uid can import it."""
    with open(pyproject or ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    dependencies = project["project"]["dependencies"]
    alone = set(project.get("tool", {}).get("dlgrade", {}).get("install-without-dependencies", []))

    def line(requirement: str) -> str:
        name = re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0]
        return f"{requirement}  # no-deps\n" if name in alone else f"{requirement}\n"

    return ("# third-party dependencies of the grader, from pyproject.toml; setup.sh installs them, and never\n"
            "# this project itself (grader/ and reference/ run from /autograder/source); lines marked\n"
            "# no-deps are data packages installed without their own dependencies\n"
            + "".join(line(d) for d in dependencies))


def _data_warnings(assignment: Assignment, data_dir: Path | None) -> list[str]:
    """What the cases say of the data directory they will read (missing files, hidden labels)."""
    found = []
    for case in assignment.cases:
        check = getattr(case, "data_warnings", None)
        if check is not None:
            found += [w for w in check(data_dir) if w not in found]
    return found


def package(assignment: Assignment, out_dir: Path | None = None, data_dir: Path | None = None) -> Packaged:
    """dist/<name>-autograder.zip: setup.sh, run_autograder, ASSIGNMENT and requirements.txt at its
    root, beside the source tree (grader/, reference/, assignments/<name>/).

    `data_dir`: the labels and fixtures to pack as assignments/<name>/data (staff pass the real
    labels here); default: the assignment's own data directory (DLGRADE_DATA_DIR, its data/,
    or the manifest's [data] dir). The result's `warnings` lists what staff should fix before
    uploading, e.g. hidden labels (all one class) that would leave an accuracy unscored."""
    out_dir = out_dir or ROOT / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise FileNotFoundError(f"data directory {data_dir} does not exist")
    elif assignment.data_dir is not None and assignment.data_dir.is_dir():
        data_dir = assignment.data_dir
    own_data = assignment.path / "data"
    target = out_dir / f"{assignment.name}-autograder.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for script in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(script)
            info.external_attr = 0o755 << 16
            archive.writestr(info, (ROOT / "docker" / script).read_bytes())
        archive.writestr("ASSIGNMENT", assignment.name + "\n")
        archive.writestr("requirements.txt", requirements())
        for name in SOURCE_FILES:
            archive.write(ROOT / name, name)
        for name in SOURCE_DIRS:
            _add_tree(archive, ROOT / name, name)
        # labels and fixtures travel inside the assignment folder (root-only on Gradescope,
        # covered in the workers' mount namespace); one data directory only
        packs_other_data = data_dir is not None and data_dir.resolve() != own_data.resolve()
        _add_tree(archive, assignment.path, f"assignments/{assignment.name}",
                  skip=("data",) if packs_other_data else ())
        if packs_other_data:
            _add_tree(archive, data_dir, f"assignments/{assignment.name}/data")
        _add_shared_support(archive, assignment)
    result = Packaged(target)
    result.warnings = _data_warnings(assignment, data_dir)
    return result


# what never leaves the staff: expected symbolic answers, mutant patches (they quote the
# reference), and labels (students use their own copy of the course data)
STAFF_ONLY = ("questions.py", "mistakes.py", "data", "ANSWERS.md")


def student_bundle(assignment: Assignment, out_dir: Path | None = None) -> Path:
    """dist/<name>-student.zip: `pip install -e .` then `dlgrade grade <name> <submission>`
    grades the public cases against the golden values, with the named mistake hints.

    Its cases.py holds the public cases only (generated, see grader/public_cases.py). The built
    zip is checked before it is returned; one that would leak a hidden case is deleted and the
    problem raised (BundleError, an AssignmentError: `dlgrade bundle` exits 2 with the message)."""
    from grader.public_cases import public_source

    out_dir = out_dir or ROOT / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{assignment.name}-student.zip"
    cases = assignment.path / "cases.py"
    generated = {"cases.py": public_source(cases.read_text())} if cases.is_file() else {}
    try:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in SOURCE_FILES:
                archive.write(ROOT / name, name)
            _add_tree(archive, ROOT / "grader", "grader")
            prefix = f"assignments/{assignment.name}"
            for path in sorted(assignment.path.rglob("*")):
                relative = path.relative_to(assignment.path)
                if not path.is_file() or relative.parts[0] in STAFF_ONLY or "__pycache__" in relative.parts:
                    continue
                if relative.as_posix() in generated:
                    archive.writestr(f"{prefix}/{relative.as_posix()}", generated[relative.as_posix()])
                else:
                    archive.write(path, f"{prefix}/{relative.as_posix()}")
            _add_shared_support(archive, assignment)
            hints = "".join(f"{m.name} = {tomllib_string(m.hint)}\n" for m in assignment.mutants)
            archive.writestr(f"{prefix}/hints.toml", "# what a student sees when an output matches a known mistake\n" + hints)
        _check_bundle(assignment, target)
    except BaseException:
        target.unlink(missing_ok=True)     # never leave a bundle that failed its checks
        raise
    return target


def _check_bundle(assignment: Assignment, target: Path) -> None:
    """Checks the zip as built, not the intentions that built it: what students receive."""
    from grader.public_cases import BundleError, bundle_leaks

    with zipfile.ZipFile(target) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    problems = bundle_leaks(assignment, files)
    if problems:
        raise BundleError(f"{assignment.name}: the student bundle would leak hidden cases, so it was not written:\n  "
                          + "\n  ".join(problems))


def tomllib_string(text: str) -> str:
    """A TOML basic string (json's escaping is valid TOML for these characters)."""
    encoded = json.dumps(text)
    tomllib.loads(f"x = {encoded}")   # fail loudly rather than write a file the loader rejects
    return encoded
