"""Every known minbert mistake changes the value of at least one graded case beyond its
tolerance, and every accepted variant changes none: `dlgrade verify minbert` without the
sandbox (staff code only, in this process), so it can run on every commit.

The golden values of the public cases must also match the reference (`dlgrade record minbert`).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from grader import assignment as assignments
from grader.cases import Value, build_inputs, case_seed
from grader.compare import DEFAULT_ATOL_SCALE
from grader.modules import load_module_set
from grader.mutants import Mutant
from grader.oracle import reference_value
from grader.sandbox import wire

MINBERT = assignments.load("minbert")
DATA_READY = MINBERT.data_dir is not None and (MINBERT.data_dir / "optimizer_test.npy").is_file()
pytestmark = pytest.mark.skipif(not DATA_READY, reason=f"course data directory {MINBERT.data_dir} missing")

SUPPORT = {name: path for name, path in MINBERT.support_files.items() if "/" not in name}
REFERENCE = {name: path for name, path in MINBERT.reference_files.items() if name.endswith(".py")}


@pytest.fixture(scope="module")
def support():
    return load_module_set(SUPPORT, "support")


def modules_for(support, patch=None) -> dict:
    sources = {patch.file: patch.apply(Path(REFERENCE[patch.file]).read_text())} if patch else None
    return load_module_set({**SUPPORT, **REFERENCE}, patch.name if patch else "reference", sources, shared=support)


def value_cases(filename: str) -> list[Value]:
    return [c for c in MINBERT.cases_using(filename) if isinstance(c, Value)]


def inputs_of(case) -> dict:
    return build_inputs(case.inputs, case_seed(MINBERT.name, case.name))


@pytest.fixture(scope="module")
def expected(support):
    """Expected value of every code case: the reference's, or the course fixture's."""
    reference = modules_for(support)
    ctx = SimpleNamespace(data_dir=MINBERT.data_dir)
    return {c.name: c.expected_value(ctx, inputs_of(c)) if getattr(c, "fixture", "") else
            reference_value(reference, c, inputs_of(c), MINBERT.default_module)
            for c in MINBERT.cases if isinstance(c, Value)}


EXPENSIVE = ("sanity check", "classifier")   # they build MiniLM: tried last


def mismatches(support, expected, patch, first_only: bool = False) -> list[str]:
    modules = modules_for(support, patch)
    found = []
    cases = sorted(value_cases(patch.file), key=lambda c: c.name.startswith(EXPENSIVE))
    for case in cases:
        if found and first_only:
            break
        try:
            value = reference_value(modules, case, inputs_of(case), MINBERT.default_module)
        except Exception as exc:  # a mutant may crash: that is a caught mistake too
            found.append(f"{case.name}: raised {type(exc).__name__}")
            continue
        if not case.compare(expected[case.name], value).ok:
            found.append(case.name)
    return found


def test_reference_matches_every_expected_value_including_the_course_fixture(support, expected):
    reference = modules_for(support)
    for case in (c for c in MINBERT.cases if isinstance(c, Value)):
        value = reference_value(reference, case, inputs_of(case), MINBERT.default_module)
        result = case.compare(expected[case.name], value)
        assert result.ok, f"{case.name}: {result.message}"


@pytest.mark.parametrize("mutant", MINBERT.mutants, ids=lambda m: m.name)
def test_mutant_is_caught(support, expected, mutant):
    assert mismatches(support, expected, mutant, first_only=True), f"{mutant.name} changes no graded value"


@pytest.mark.parametrize("variant", MINBERT.variants, ids=lambda m: m.name)
def test_accepted_variant_keeps_every_value(support, expected, variant):
    assert mismatches(support, expected, variant) == []


def test_at_least_fifteen_mutants_with_the_issue_s_mistakes():
    names = {m.name for m in MINBERT.mutants}
    assert len(names) >= 15
    assert {"no_scaling", "softmax_wrong_axis", "mask_ignored", "mask_sign_flipped", "heads_merged_without_transpose",
            "pre_layer_norm", "no_token_type_embedding", "no_position_embedding", "pooler_without_tanh",
            "classifier_returns_logits", "classifier_returns_probabilities", "coupled_weight_decay",
            "no_bias_correction", "eps_inside_sqrt", "no_attention_dropout", "dropout_after_layer_norm",
            "embedding_dropout_twice"} <= names


def test_golden_values_match_the_reference(expected):
    golden = wire.decode(MINBERT.golden_path.read_bytes(), trusted=True)
    public = [c for c in MINBERT.cases if isinstance(c, Value) and c.public]
    assert sorted(golden) == sorted(c.name for c in public)
    for case in public:
        result = case.compare(expected[case.name], golden[case.name]["expected"])
        assert result.ok, f"{case.name}: golden value is stale; run `dlgrade record minbert`\n{result.message}"


# ---- the float64 tolerance: honest rounding passes, the smallest mistake fails ------------------

FLOAT32_CONSTANT = Mutant("float32_constant", "", "bert.py", "scores = scores / math.sqrt(self.attention_head_size)",
                          "scores = scores / torch.sqrt(torch.tensor(self.attention_head_size))")


def _relative_error(expected, value) -> float:
    """The largest |value - expected| over the largest |expected|, over every float64 tensor."""
    if isinstance(expected, dict):
        return max((_relative_error(expected[k], value[k]) for k in expected), default=0.0)
    if isinstance(expected, (list, tuple)):
        return max((_relative_error(e, v) for e, v in zip(expected, value)), default=0.0)
    if not (isinstance(expected, torch.Tensor) and expected.dtype == torch.float64 and expected.numel()):
        return 0.0
    return float((value - expected).abs().nan_to_num(float("inf")).max() / expected.abs().max())


def test_the_scaled_tolerance_separates_rounding_from_the_smallest_mistake(support, expected):
    cases = [c for c in value_cases("bert.py") if not c.name.startswith(EXPENSIVE)]
    rounded = modules_for(support, FLOAT32_CONSTANT)
    rounding = max(_relative_error(expected[c.name], reference_value(rounded, c, inputs_of(c), MINBERT.default_module))
                   for c in cases)
    mistakes = {}
    for mutant in (m for m in MINBERT.mutants if m.file == "bert.py"):
        modules = modules_for(support, mutant)
        errors = []
        for case in cases:
            try:
                errors.append(_relative_error(expected[case.name],
                                              reference_value(modules, case, inputs_of(case), MINBERT.default_module)))
            except Exception:
                errors.append(float("inf"))
        mistakes[mutant.name] = max(errors)
    smallest = min(mistakes, key=mistakes.get)
    scale = DEFAULT_ATOL_SCALE[torch.float64]
    print(f"\nfloat32 constant: {rounding:.2g} of max|expected|; tolerance {scale:g}; smallest mistake "
          f"({smallest}): {mistakes[smallest]:.2g}; margins x{scale / max(rounding, 1e-300):.0f} and "
          f"x{mistakes[smallest] / scale:.0f}")
    assert 0 < rounding < scale / 3, "a float32 constant is not within the scaled tolerance"
    assert mistakes[smallest] > 100 * scale, f"the mistake {smallest} comes within 100x of the tolerance"
    # and the cases themselves say so
    for case in cases:
        value = reference_value(rounded, case, inputs_of(case), MINBERT.default_module)
        assert case.compare(expected[case.name], value).ok, case.name
