"""The Ray backend: a local Ray cluster (ray.init(num_cpus=2)) grades a class to the same scores,
case by case, as the local process pool, into the same kind of gradebook and results.json."""
from __future__ import annotations

import json

import pytest
import ray
from batchkit import make_class

from grader.batch.grade_all import grade_all
from grader.batch.gradebook import Gradebook
from grader.batch.ray_pool import RayPool


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def scores(out):
    with Gradebook(out / "gradebook.sqlite") as book:
        return {row["key"]: {n: c.score for n, c in row["cases"].items()} for row in book.current("linear_attention")}


def test_a_ray_cluster_grades_the_class_as_the_local_pool_does(cluster, tmp_path):
    source = make_class(tmp_path / "class")
    on_ray = grade_all("linear_attention", source, tmp_path / "ray", pool=RayPool("linear_attention", jobs=2))
    local = grade_all("linear_attention", source, tmp_path / "local", jobs=2)
    assert on_ray.graded == local.graded == 5 and on_ray.failed == 0
    assert scores(tmp_path / "ray") == scores(tmp_path / "local")
    with Gradebook(tmp_path / "ray" / "gradebook.sqlite") as book:
        assert {r[0] for r in book.db.execute("SELECT backend FROM runs")} == {"ray"}
    ada = json.loads((tmp_path / "ray" / "results" / "ada" / "results.json").read_text())
    assert ada["score"] == 45 and "pid-namespace" in ada["extra_data"]["isolation"]
    # resumable on Ray too: nothing left to grade
    assert grade_all("linear_attention", source, tmp_path / "ray", pool=RayPool("linear_attention")).graded == 0
