"""`dlgrade record`: write golden files for the public cases from the reference.

Golden files let a student bundle (without reference/ or hidden cases) grade the public
cases: expected values, plus each mutant's value so likely-mistake hints still work.
They are data (`torch.save` of plain tensors, loaded with weights_only=True).
"""
from __future__ import annotations

from grader.assignment import Assignment
from grader.cases import Value
from grader.runner import GradingContext, reference_value
from grader.sandbox import wire


def record(assignment: Assignment) -> dict:
    ctx = GradingContext(assignment, "staff", process=None, submission=None)
    golden = {}
    for case in assignment.cases:
        if not (isinstance(case, Value) and case.public):
            continue
        inputs = case.built_inputs(ctx)
        expected = reference_value(ctx.reference_modules(), case, inputs, assignment.default_module)
        mutants = {}
        for mutant, modules in ctx.mutant_modules():
            try:
                value = reference_value(modules, case, inputs, assignment.default_module)
            except Exception:
                continue
            if not case.compare(expected, value, equal_nan=True).ok:
                mutants[mutant.name] = value
        golden[case.name] = {"expected": expected, "mutants": mutants}
    assignment.golden_path.parent.mkdir(exist_ok=True)
    assignment.golden_path.write_bytes(wire.encode(golden))
    return golden
