"""The `dlgrade` command: thin calls into the library (see each subcommand's module)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Imported before the sandbox forks, so workers share torch's pages and never re-import it.
import torch  # noqa: F401

from grader.sandbox.zygote import Sandbox


def _load(assignments, args):
    assignment = assignments.load(args.assignment)
    if getattr(args, "data_dir", None):
        assignment.data_dir = Path(args.data_dir).resolve()
    return assignment


def _cmd_grade(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.results import gradescope_results, summary, write_results
    from grader.runner import grade

    assignment = _load(assignments, args)
    try:
        report = grade(assignment, args.submission, sandbox, mode=args.mode)
        results = gradescope_results(report)
    except Exception as exc:  # never leave Gradescope without a results.json
        results = {"score": 0.0, "output": f"The autograder failed internally ({type(exc).__name__}: {exc}). "
                                           "Please tell the course staff.", "tests": []}
        write_results(results, args.results)
        print(results["output"], file=sys.stderr)
        return 1
    write_results(results, args.results)
    if not args.quiet:
        print(summary(report))
        print(f"\nwrote {args.results}")
    return 0


def _cmd_verify(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.verify import verify

    assignment = _load(assignments, args)
    result = verify(assignment, sandbox)
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def _cmd_record(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.record import record

    assignment = assignments.load(args.assignment)
    golden = record(assignment)
    print(f"recorded {len(golden)} public cases to {assignment.golden_path}")
    return 0


def _cmd_package(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.package import package

    path = package(assignments.load(args.assignment), Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


def _cmd_bundle(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.package import student_bundle

    path = student_bundle(assignments.load(args.assignment), Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


def _cmd_list(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments

    for name in assignments.available():
        a = assignments.load(name)
        print(f"{name:<24} {a.total_points:>6g} points  {len(a.cases):>3} cases  {len(a.mutants):>3} mutants  {a.title}")
    return 0


DATA_DIR_HELP = ("labels and fixtures the grader reads, e.g. minbert's data files with the real CFIMDB test labels "
                 "(default: $DLGRADE_DATA_DIR, else the assignment manifest's [data] dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlgrade", description="Sandboxed autograder for deep-learning homework.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("grade", help="grade one submission and write Gradescope results.json")
    p.add_argument("assignment", help="assignment name (see `dlgrade list`)")
    p.add_argument("submission", help="a .py file, a folder, a .zip or an .ipynb")
    p.add_argument("--results", default="results.json", help="where to write results.json (default: ./results.json)")
    p.add_argument("--mode", choices=["staff", "student"], default=None,
                   help="staff: expected values from reference/ (all cases); student: golden files, public cases "
                        "(default: staff when reference/ is present)")
    p.add_argument("--quiet", action="store_true", help="do not print the summary")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.set_defaults(run=_cmd_grade)

    p = sub.add_parser("verify", help="reference full marks, starter zero, every known mistake caught, "
                                      "every accepted variant at full marks")
    p.add_argument("assignment")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser("record", help="rewrite the golden files of the public cases from the reference")
    p.add_argument("assignment")
    p.set_defaults(run=_cmd_record)

    p = sub.add_parser("package", help="build the Gradescope autograder zip")
    p.add_argument("assignment")
    p.add_argument("--out", help="output folder (default: dist/)")
    p.set_defaults(run=_cmd_package)

    p = sub.add_parser("bundle", help="build the student bundle: public cases with golden values; no reference, "
                                      "expected answers or mutant patches")
    p.add_argument("assignment")
    p.add_argument("--out", help="output folder (default: dist/)")
    p.set_defaults(run=_cmd_bundle)

    p = sub.add_parser("list", help="list assignments with their points")
    p.set_defaults(run=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    from grader.assignment import AssignmentError

    # The fork server starts first: before the command line (which names the results path) is
    # parsed and before any assignment or reference is loaded. It replaces its own copy of argv.
    with Sandbox.start() as sandbox:
        args = build_parser().parse_args(argv)
        try:
            return args.run(args, sandbox)
        except AssignmentError as exc:
            print(f"dlgrade: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
