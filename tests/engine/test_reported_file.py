"""The child's reader of self-reported files (grader/sandbox/reported.py): what a CS182 notebook
really saves is read (numpy scalars from either numpy major version), anything that could run
code or is not the notebook's format is refused with a message, and nothing it names runs."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import torch

from grader.sandbox import reported


def save(path, obj) -> None:
    torch.save(obj, path)


@pytest.fixture
def here(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def test_the_notebooks_numpy_accuracy_arrives_as_a_python_float(here):
    save("autograder.pt", {"output": {"vit_acc": np.mean([0.6, 0.8]), "x": (torch.ones(2), torch.arange(3))}})
    entry = reported.entry("autograder.pt", "vit_acc")
    assert entry["found"] and type(entry["value"]) is float and entry["value"] == pytest.approx(0.7)
    value = reported.entry("autograder.pt", "x")["value"]
    assert type(value) is tuple and torch.equal(value[1], torch.arange(3))
    assert reported.entry("autograder.pt", "y") == {"keys": ["vit_acc", "x"], "found": False, "value": None}


def test_a_file_written_by_numpy_1_names_the_old_scalar_module_and_is_read(here):
    buffer = io.BytesIO()
    torch.save({"output": {"acc": np.float64(0.5)}}, buffer)
    old = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile("autograder.pt", "w") as z:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            z.writestr(info.filename, data)
    assert reported.entry("autograder.pt", "acc")["value"] == 0.5


class RunsAShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload, said", [
    (lambda d: {"output": {"acc": RunsAShell(d / "pwned")}}, "objects other than tensors"),
    (lambda d: {"output": {"acc": np.ones(3)}}, "objects other than tensors"),
    (lambda d: [1, 2], "is not what the notebook saves"),
    (lambda d: {"outputs": {}}, "is not what the notebook saves"),
])
def test_anything_but_the_notebooks_format_is_refused_and_nothing_runs(here, payload, said):
    save("autograder.pt", payload(here))
    entry = reported.entry("autograder.pt", "acc")
    assert said in entry["error"]
    assert not (here / "pwned").exists()


def test_names_sizes_and_kinds_of_file_are_checked_before_reading(here):
    assert "not a plain file name" in reported.entry("../autograder.pt", "acc")["error"]
    assert "not in the submission" in reported.entry("autograder.pt", "acc")["error"]
    os.mkdir("folder.pt")
    assert "not a regular file" in reported.entry("folder.pt", "acc")["error"]
    save("big.pt", {"output": {"acc": torch.zeros(1000)}})
    assert "MiB the grader reads" in reported.entry("big.pt", "acc", max_bytes=1000)["error"]
    (here / "garbage.pt").write_bytes(b"\x00not torch" * 50)
    assert "could not be read with torch.load(weights_only=True)" in reported.entry("garbage.pt", "acc")["error"]


def test_deep_nesting_is_refused_with_a_message(here):
    deep = 0.9
    for _ in range(40):
        deep = [deep]
    save("autograder.pt", {"output": {"acc": deep}})
    assert "nested" in reported.entry("autograder.pt", "acc")["error"]
