"""Where a class's submissions come from: a folder of them, or Gradescope's "Export Submissions".

    folder/                         one entry per student: a folder, a .zip, a .py or an .ipynb,
      alice/  bob.zip  carol.py     named after the student (the name is the student's key)
    export.zip or export/           Gradescope's export: submission_metadata.yml beside one
      submission_metadata.yml       folder per submission; the metadata names the submitters
      submission_123456/ ...        (name, SID, email), when they submitted, the submission id

Nothing here runs student code; an export zip is unpacked with the same limits as a single
submission (no absolute paths or "..", a bounded size), into a folder the caller owns.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.submission import IGNORED_PARTS

METADATA = "submission_metadata.yml"
MAX_EXPORT_BYTES = 4 * 1024 ** 3          # a whole class, uncompressed
MAX_EXPORT_FILES = 200_000
SUBMISSION_SUFFIXES = (".zip", ".py", ".ipynb")


class SourceError(ValueError):
    """The source cannot be read as submissions; the message says why, for staff."""


@dataclass
class Submitter:
    name: str = ""
    sid: str = ""
    email: str = ""


@dataclass
class Entry:
    """One submission of the batch."""
    key: str                                  # the student's key: SID, email, or the entry's name
    path: Path                                # what `dlgrade grade` would be given
    submitters: list[Submitter] = field(default_factory=list)
    submission_id: str = ""                   # Gradescope's, for an export
    submitted_at: str = ""

    @property
    def name(self) -> str:
        return self.submitters[0].name if self.submitters and self.submitters[0].name else self.key


def content_hash(path: Path) -> str:
    """sha256 of a submission's content: a file's bytes, or a folder's files (names and bytes,
    in sorted order; symlinks and the loader's ignored folders left out, as grading leaves them)."""
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_PARTS)
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if file.is_symlink() or not file.is_file():
                continue
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _is_submission(path: Path) -> bool:
    return (path.is_dir() and path.name not in IGNORED_PARTS and not path.name.startswith(".")) or \
        (path.is_file() and path.suffix in SUBMISSION_SUFFIXES)


def _safe_extract(data: bytes, target: Path) -> None:
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > MAX_EXPORT_FILES:
            raise SourceError(f"the export has {len(members)} files, more than {MAX_EXPORT_FILES}")
        for info in members:
            name = PurePosixPath(info.filename)
            if info.is_dir() or name.is_absolute() or ".." in name.parts or IGNORED_PARTS & set(name.parts):
                continue
            total += info.file_size
            if total > MAX_EXPORT_BYTES:
                raise SourceError("the export is larger than 4 GB uncompressed")
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(destination, "wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)


def _export_root(folder: Path) -> Path | None:
    """The folder holding submission_metadata.yml: the folder itself or one level down."""
    if (folder / METADATA).is_file():
        return folder
    found = [p for p in folder.iterdir() if p.is_dir() and (p / METADATA).is_file()] if folder.is_dir() else []
    return found[0] if len(found) == 1 else None


def _text(value) -> str:
    return "" if value is None else str(value)


def _gradescope_entries(root: Path) -> list[Entry]:
    import yaml

    try:
        metadata = yaml.safe_load((root / METADATA).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourceError(f"{root / METADATA} could not be read: {exc}") from None
    if not isinstance(metadata, dict):
        raise SourceError(f"{root / METADATA} is not a mapping of submission folders")
    entries = []
    for folder, info in sorted(metadata.items(), key=lambda item: str(item[0])):
        info = info if isinstance(info, dict) else {}
        path = root / str(folder)
        if not path.is_dir():
            continue        # listed, but not exported (Gradescope lists ungraded ones too)
        people = [p for p in (info.get(":submitters") or []) if isinstance(p, dict)]
        submitters = [Submitter(_text(p.get(":name")), _text(p.get(":sid")), _text(p.get(":email"))) for p in people]
        first = submitters[0] if submitters else Submitter()
        key = first.sid or first.email or str(folder)
        entries.append(Entry(key, path, submitters, str(folder).removeprefix("submission_"),
                             _text(info.get(":created_at"))))
    return entries


def find_submissions(source: str | Path, unpack_to: Path) -> list[Entry]:
    """The submissions of `source` (see the module's docstring); an export zip is unpacked
    into `unpack_to`. Keys are unique: a second entry with the same key is an error."""
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source}: no such file or directory")
    if source.is_file() and source.suffix == ".zip":
        data = source.read_bytes()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                is_export = any(PurePosixPath(n).name == METADATA for n in archive.namelist())
        except zipfile.BadZipFile:
            raise SourceError(f"{source} is not a readable zip") from None
        if not is_export:
            raise SourceError(f"{source} has no {METADATA}: give a folder of submissions, or Gradescope's "
                              "\"Export Submissions\" zip")
        unpack_to.mkdir(parents=True, exist_ok=True)
        _safe_extract(data, unpack_to)
        source = unpack_to
    if not source.is_dir():
        raise SourceError(f"{source}: give a folder of submissions or Gradescope's export zip")
    root = _export_root(source)
    if root is not None:
        entries = _gradescope_entries(root)
    else:
        entries = [Entry(p.stem if p.is_file() else p.name, p) for p in sorted(source.iterdir()) if _is_submission(p)]
    seen: dict[str, Path] = {}
    for entry in entries:
        if entry.key in seen:
            raise SourceError(f"two submissions for {entry.key!r}: {seen[entry.key].name} and {entry.path.name}")
        seen[entry.key] = entry.path
    return entries
