"""The grading context: what a case sees of one run (the `Context` protocol of grader/cases.py).

It joins the three parties of a run: the student's sandboxed process (grader/student.py), the
staff values (the oracle in staff mode, the golden file in student mode) and the bounded helper
that judges what the student wrote (grader/bounded.py).
"""
from __future__ import annotations

from grader import bounded
from grader.assignment import Assignment
from grader.cases import Call, Case, StudentError, build_inputs, case_seed
from grader.oracle import Oracle
from grader.sandbox import wire
from grader.student import StudentProcess, TimeBudget


class GradingContext:
    def __init__(self, assignment: Assignment, mode: str, process: StudentProcess | None,
                 submission=None, budget: TimeBudget | None = None, public_inputs: bool = False):
        self.assignment = assignment
        self.mode = mode
        self.default_module = assignment.default_module
        self.data_dir = assignment.data_dir
        self.process = process
        self.submission = submission
        self.budget = budget or TimeBudget(assignment.total_timeout)
        self._golden = None
        self._told: dict[str, str] = {}
        self._once: dict = {}
        # staff inputs differ from the public ones, whose expected values students hold (golden
        # files are recorded on the public inputs: `record` asks for them)
        self.salt = "" if public_inputs or mode != "staff" else assignment.staff_salt

    @property
    def oracle(self) -> Oracle:
        return Oracle.of(self.assignment)

    def seed(self, case: Case) -> int:
        return case_seed(self.assignment.name, case.name, self.salt)

    def inputs(self, case: Case, specs: dict, offset: int = 0) -> dict:
        return build_inputs(specs, self.seed(case) + offset)

    # -- the student's side
    def timeout(self, case: Case, reference_seconds: float | None = None) -> float:
        """A generous multiple of the reference's own time plus a floor, never above the cap."""
        cap = getattr(case, "timeout", None) or self.assignment.case_timeout
        if reference_seconds is None:
            return cap
        floor = getattr(case, "timeout_floor", None) or self.assignment.timeout_floor
        return min(cap, floor + self.assignment.timeout_factor * reference_seconds)

    def student(self, case: Case, call: Call, inputs, measure: str = "call", options: dict | None = None,
                timeout: float | None = None):
        request = {"op": "call", "measure": measure, "spec": call.spec(self.default_module), "inputs": inputs,
                   "options": options or {}, "seed": self.seed(case)}
        return self.process.request(request, timeout or self.timeout(case), case.name)

    def reported(self, case: Case, file: str, key: str) -> dict:
        """One entry of a self-reported file of the submission, read in the sandbox (the measure
        "reported"): {"found", "value", "keys"} or {"error"}. It needs none of the student's
        modules, so a notebook that fails to import still has its file read."""
        request = {"op": "call", "measure": "reported", "spec": {"module": None, "target": file, "needs": []},
                   "inputs": {}, "options": {"file": file, "key": key}, "seed": self.seed(case)}
        value, _ = self.process.request(request, self.assignment.case_timeout, case.name)
        return value if type(value) is dict else {"error": f"{file} could not be read"}

    def once(self, key, compute):
        """`compute()` the first time `key` is asked for in this run, the same value afterwards
        (a submitted file that several cases read, parsed once)."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    def tell_once(self, cause: str, message: str, case: Case, short: str) -> str:
        """The full message for the first case with this cause; a pointer to it afterwards."""
        first = self._told.setdefault(cause, case.name)
        return message if first == case.name else f"{short} (explained in the case {first!r})"

    # -- the staff side
    def reference(self, case: Case, call: Call, inputs, measure: str = "call", options: dict | None = None):
        """The reference's value of `call` on the case's seed (staff mode only)."""
        if self.mode != "staff":
            raise RuntimeError("the reference is not available in student mode")
        return self.oracle.reference(call.spec(self.default_module), inputs, self.seed(case), measure, options).value

    def golden(self) -> dict:
        if self._golden is None:
            path = self.assignment.golden_path
            self._golden = wire.decode(path.read_bytes(), trusted=True) if path.is_file() else {}
        return self._golden

    def expected(self, case: Case, inputs):
        """The reference's value of the case's own call (staff), else the recorded one (student)."""
        if self.mode == "staff":
            return self.reference(case, case.call, inputs)
        entry = self.golden().get(case.name)
        if entry is None:
            raise StudentError("no recorded expected value for this case (staff: run `dlgrade record`)")
        return entry["expected"]

    def reference_seconds(self, case: Case, inputs) -> float | None:
        """How long the reference took on these inputs (staff mode), for the case's timeout."""
        if self.mode != "staff":
            return None
        return self.oracle.reference(case.call.spec(self.default_module), inputs, self.seed(case)).seconds

    def hint(self, case: Case, inputs: dict, actual) -> str:
        """The first known mistake whose value matches the student's, as a hint; "" for none."""
        for hint, value in self.mistake_values(case, inputs):
            if case.compare(value, actual, equal_nan=True).ok:
                return f"likely mistake: {hint}"
        return ""

    def mistake_values(self, case: Case, inputs: dict):
        """(hint, value) of each known mistake whose value differs from the expected one."""
        if self.mode == "student":
            entry = self.golden().get(case.name) or {}
            for name, value in entry.get("mutants", {}).items():
                yield self.assignment.hints.get(name, name), value
            return
        spec, seed = case.call.spec(self.default_module), self.seed(case)
        expected = self.oracle.reference(spec, inputs, seed).value
        for mutant in self.assignment.mutants:
            if case.name not in self.assignment.case_names_using(mutant.file):
                continue
            computed = self.oracle.mistake(mutant, spec, inputs, seed)
            if not computed.raised and not case.compare(expected, computed.value, equal_nan=True).ok:
                yield mutant.hint, computed.value

    # -- judging what the student wrote, bounded in time and memory
    def judge(self, fn, *args, what: str, timeout: float = 20.0, memory_mb: int = 256):
        """`fn(*args)` in a bounded helper (see grader/bounded.py): its value or a BoundedFailure."""
        return bounded.run(fn, *args, timeout=self.budget.clip(timeout), memory_mb=memory_mb, what=what)
