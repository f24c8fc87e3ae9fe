"""The `dlgrade` command: thin calls into the library (see each subcommand's module).

Exit codes: 0 done (`grade`: a complete results.json was written, whatever the score), 1 the
check failed (`verify`, `record --check`) or the grader failed internally, 2 a usage mistake
caught before any grading (a path that does not exist, a results path that is a directory, a
data directory without the labels, a folder of several submissions), 130 interrupted.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from grader import __version__

if TYPE_CHECKING:
    from grader.sandbox.zygote import Sandbox

# Commands that never run student code in this process start no sandbox and import no torch
# here: `grade-all` starts its workers first, so that their start-up overlaps its own.
WITHOUT_SANDBOX = {"grade-all", "gradebook", "report"}


class UsageError(Exception):
    """A staff or student mistake on the command line: one line, exit 2, nothing graded."""


class Progress:
    """One updating line on a terminal (stderr); nothing when quiet or not a terminal."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()
        self._width = 0

    def show(self, text: str) -> None:
        if self.enabled:
            columns = shutil.get_terminal_size().columns or 80
            text = text[:max(20, columns - 1)]
            sys.stderr.write("\r" + text.ljust(self._width))
            sys.stderr.flush()
            self._width = len(text)

    def line(self, text: str) -> None:
        """A line that stays (a mutant's result in verify)."""
        if self.enabled:
            self.clear()
            print(text, file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.enabled and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
            self._width = 0


def _load(args):
    from grader import assignment as assignments

    assignment = assignments.load(args.assignment)
    if getattr(args, "data_dir", None):
        data_dir = Path(args.data_dir)
        if not data_dir.is_dir():
            raise UsageError(f"--data-dir {args.data_dir}: no such directory")
        assignment.data_dir = data_dir.resolve()
    return assignment


def _check_data(assignment) -> None:
    """The files the manifest says the parent reads from the data directory must be there."""
    needed = assignment.data_files
    if not needed:
        return
    if assignment.data_dir is None:
        raise UsageError(f"{assignment.name} needs a data directory with {', '.join(needed)}: pass --data-dir "
                         "or set DLGRADE_DATA_DIR")
    missing = [name for name in needed if not (assignment.data_dir / name).is_file()]
    if missing:
        raise UsageError(f"the data directory {assignment.data_dir} lacks {', '.join(missing)} (pass the course's "
                         "data with --data-dir)")


def _check_grade_paths(assignment, args) -> None:
    from grader.submission import looks_like_several_submissions

    submission = Path(args.submission)
    if not submission.exists():
        raise UsageError(f"submission {args.submission}: no such file or directory")
    several = looks_like_several_submissions(submission, assignment.files)
    if several:
        raise UsageError(f"{args.submission} holds {len(several)} submissions ({', '.join(several[:3])}"
                         f"{', ...' if len(several) > 3 else ''}), not one: grade each folder with `dlgrade grade` "
                         f"(or the whole class with `dlgrade grade-all {assignment.name} {args.submission}`)")
    results = Path(args.results)
    if results.is_dir():
        raise UsageError(f"--results {args.results} is a directory; name the file to write, e.g. "
                         f"{results / 'results.json'}")
    _check_data(assignment)


def _cmd_grade(args, sandbox: Sandbox) -> int:
    from grader.results import gradescope_results, summary, write_results
    from grader.runner import grade

    assignment = _load(args)
    _check_grade_paths(assignment, args)
    progress = Progress(args.quiet)

    def on_case(case, verdict, done, total):
        progress.show(f"grading: {done}/{total} cases done ({case.name})")

    try:
        report = grade(assignment, args.submission, sandbox, mode=args.mode, progress=on_case)
        results = gradescope_results(report, args.format)
    except Exception as exc:  # never leave Gradescope without a results.json
        progress.clear()
        results = {"score": 0.0, "output": f"The autograder failed internally ({type(exc).__name__}: {exc}). "
                                           "Please tell the course staff.", "tests": []}
        write_results(results, args.results)
        print(results["output"], file=sys.stderr)
        return 1
    progress.clear()
    write_results(results, args.results)
    if not args.quiet:
        print(summary(report))
        print(f"\nwrote {args.results}")
    return 0


def _cmd_verify(args, sandbox: Sandbox) -> int:
    from grader.verify import verify

    assignment = _load(args)
    _check_data(assignment)
    progress = Progress(args.quiet)
    result = verify(assignment, sandbox, progress=progress.line,
                    on_case=lambda case, verdict, done, total: progress.show(f"  {done}/{total} cases ({case.name})"))
    progress.clear()
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def _cmd_record(args, sandbox: Sandbox) -> int:
    from grader.record import record

    result = record(_load(args), check=args.check)
    print(result.message())
    return result.exit_code


def _cmd_package(args, sandbox: Sandbox) -> int:
    from grader.package import package

    assignment = _load(args)
    path = package(assignment, Path(args.out) if args.out else None,
                   data_dir=assignment.data_dir if args.data_dir else None)
    for warning in path.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def _cmd_bundle(args, sandbox: Sandbox) -> int:
    from grader.package import student_bundle

    path = student_bundle(_load(args), Path(args.out) if args.out else None)
    print(f"wrote {path}")
    return 0


def _cmd_warm(args, sandbox: Sandbox) -> int:
    from grader.warm import warm

    progress = Progress(args.quiet)
    result = warm(_load(args), progress=lambda case, done, total: progress.show(f"warming: {done}/{total} cases "
                                                                               f"({case.name})"))
    progress.clear()
    print(result.message())
    return 0


def _cmd_new(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments
    from grader.record import record
    from grader.scaffold import ScaffoldError, new_assignment

    try:
        written = new_assignment(args.name)
    except ScaffoldError as exc:
        raise UsageError(str(exc)) from None
    for path in written:
        print(f"wrote {path}")
    print(record(assignments.load(args.name)).message())
    print(f"next: `dlgrade verify {args.name}`, then replace the example functions (docs/adding-a-homework.md)")
    return 0


def _cmd_list(args, sandbox: Sandbox) -> int:
    from grader import assignment as assignments

    for name in assignments.available():
        a = assignments.load(name)
        print(f"{name:<24} {a.total_points:>6g} points  {len(a.cases):>3} cases  {len(a.mutants):>3} mutants  {a.title}")
    return 0


def _students(value: str | None) -> set[str] | None:
    """--students: comma-separated keys, or @FILE with one per line."""
    if not value:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise UsageError(f"--students {value}: no such file")
        names = path.read_text().splitlines()
    else:
        names = value.split(",")
    return {n.strip() for n in names if n.strip()} or None


def _cmd_grade_all(args, sandbox: Sandbox) -> int:
    from grader.batch.grade_all import grade_all
    from grader.batch.progress import BatchProgress
    from grader.batch.sources import SourceError

    out = Path(args.out or f"grading/{args.assignment}")
    progress = BatchProgress(args.quiet)
    pool = None
    if args.backend == "ray":
        from grader.batch.ray_pool import RayPool

        pool = RayPool(args.assignment, args.address, args.mode, jobs=args.jobs)
    try:
        result = grade_all(args.assignment, args.source, out, jobs=args.jobs, only=args.only or None,
                           students=_students(args.students), mode=args.mode, data_dir=args.data_dir,
                           progress=progress, pool=pool)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    finally:
        progress.close()
    if not args.quiet:
        workers = (f" with {result.workers_started} worker(s); staff values computed by the workers: "
                   f"{result.staff_values_computed}") if result.graded else ""
        print(f"graded {result.graded} of {result.total} submissions ({result.skipped} already graded, "
              f"{result.failed} failed) in {result.seconds:.1f} s{workers}")
        print(f"gradebook: {out / 'gradebook.sqlite'}; results: {out / 'results'}/STUDENT/results.json")
    return 0


def _cmd_gradebook(args, sandbox: Sandbox) -> int:
    from grader.batch.gradebook import Gradebook

    path = Path(args.db or f"grading/{args.assignment}/gradebook.sqlite")
    if not path.is_file():
        raise UsageError(f"no gradebook at {path} (run `dlgrade grade-all {args.assignment} SOURCE` first, or "
                         "pass --db)")
    with Gradebook(path) as book:
        if args.action == "show":
            print(book.show(args.assignment))
            return 0
        text = book.export_csv(args.assignment, style=args.style, cases=args.cases)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_report(args, sandbox: Sandbox) -> int:
    from grader.batch.report import render

    db = Path(args.db or f"grading/{args.assignment}/gradebook.sqlite")
    if not db.is_file():
        raise UsageError(f"no gradebook at {db} (run `dlgrade grade-all {args.assignment} SOURCE` first, or pass --db)")
    out = Path(args.out or db.parent / "report.html")
    try:
        render(args.assignment, db, out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out}")
    return 0


DATA_DIR_HELP = ("folder of labels and fixtures the grader (never the student's code) reads, e.g. minbert's data "
                 "files with the real CFIMDB test labels (default: $DLGRADE_DATA_DIR, else the assignment's "
                 "data/, else the manifest's [data] dir)")
ASSIGNMENT_HELP = "assignment name (see `dlgrade list`)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlgrade", description="Sandboxed autograder for deep-learning homework.",
        epilog="Exit codes: 0 done, 1 check failed or internal error, 2 usage mistake, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"dlgrade {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("grade", help="grade one submission and write Gradescope results.json",
                       description="Grade one submission: student code runs in a sandbox, the grader compares "
                                   "its values with the reference (staff mode) or the golden files (student mode) "
                                   "and writes Gradescope's results.json. Exits 0 whenever results.json was "
                                   "written, whatever the score.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("submission", help="the submission: a .py file, a folder, a .zip or an .ipynb")
    p.add_argument("--results", default="results.json", help="where to write results.json (default: ./results.json)")
    p.add_argument("--mode", choices=["staff", "student"], default=None,
                   help="staff: expected values from reference/ (all cases); student: golden files, public cases "
                        "only (default: staff when reference/ is present)")
    p.add_argument("--quiet", action="store_true", help="print neither progress nor the summary")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--format", choices=["md", "html"], default="md",
                   help="each test's feedback in results.json as Markdown or HTML (Gradescope renders both; "
                        "default: md)")
    p.set_defaults(run=_cmd_grade)

    p = sub.add_parser("grade-all", help="grade a whole class into a gradebook (parallel, resumable)",
                       description="Grade every submission of SOURCE exactly as `dlgrade grade` does, in a pool of "
                                   "workers, into OUT/gradebook.sqlite and OUT/results/STUDENT/results.json. SOURCE "
                                   "is a folder with one submission per student (a folder, .zip, .py or .ipynb named "
                                   "after the student) or Gradescope's \"Export Submissions\" zip or folder. Run it "
                                   "again to grade only what is missing or changed (the content hash of a "
                                   "submission, and the assignment's version: its cases, reference and the "
                                   "engine's staff path).")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("source", help="a folder of submissions, or Gradescope's export (zip or folder)")
    p.add_argument("--out", help="where the gradebook and the results go (default: grading/ASSIGNMENT)")
    p.add_argument("--jobs", type=int, help="workers grading at once (default: the number of cores)")
    p.add_argument("--only", action="append", metavar="CASE",
                   help="regrade only this case, for everyone selected (repeat for several)")
    p.add_argument("--students", help="only these students: keys, SIDs, emails or names, comma-separated, or "
                                      "@FILE with one per line")
    p.add_argument("--mode", choices=["staff", "student"], default="staff", help="as for `grade` (default: staff)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: a process pool on this machine; ray: tasks on a Ray cluster (pip install "
                        "dlgrade[ray]; see --address)")
    p.add_argument("--address", help="the Ray cluster's address (ray start --head prints it); default: start a "
                                     "local one")
    p.add_argument("--quiet", action="store_true", help="no progress, no summary")
    p.set_defaults(run=_cmd_grade_all)

    p = sub.add_parser("gradebook", help="show or export the gradebook of `grade-all`",
                       description="`show`: the current score of every student in the terminal. `export`: the CSV "
                                   "that Gradescope (--style gradescope: Name, SID, Email, Score, ...) or Canvas "
                                   "(--style canvas: Student, ID, SIS User ID, SIS Login ID, Section, ASSIGNMENT) "
                                   "imports; one row per submitter.")
    p.add_argument("action", choices=["show", "export"], help="show: a table in the terminal; export: the CSV")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--db", help="the gradebook (default: grading/ASSIGNMENT/gradebook.sqlite)")
    p.add_argument("--style", choices=["gradescope", "canvas"], default="gradescope", help="export: the columns")
    p.add_argument("--cases", action="store_true", help="export: a column per case (gradescope style)")
    p.add_argument("--output", help="export: the CSV file to write (default: standard output)")
    p.set_defaults(run=_cmd_gradebook)

    p = sub.add_parser("report", help="write the class statistics page (HTML) from the gradebook",
                       description="Write one static HTML page from the gradebook of `grade-all`: score histogram, "
                                   "pass rate per case, the named mistakes by frequency, grading time and memory, "
                                   "submissions that hit a time or memory limit, identical submissions. Plots are "
                                   "embedded; the page needs no network.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--db", help="the gradebook (default: grading/ASSIGNMENT/gradebook.sqlite)")
    p.add_argument("--out", help="the page to write (default: report.html beside the gradebook)")
    p.set_defaults(run=_cmd_report)

    p = sub.add_parser("verify", help="check the tests: reference full marks, starter zero, every known mistake "
                                      "caught, every accepted variant at full marks",
                       description="Grade the reference (must score full marks), the untouched starter (must "
                                   "score zero), every known mistake (each must lose points) and every accepted "
                                   "variant (each must keep full marks). Exits 1 if any of these fails.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress, only the final report")
    p.set_defaults(run=_cmd_verify)

    p = sub.add_parser("record", help="rewrite the golden files of the public cases from the reference",
                       description="Compute the golden values of the public cases (expected values and known "
                                   "mistakes' values, on the public inputs) from the reference, and write "
                                   "assignments/NAME/golden/public.pt if its bytes changed.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if the golden file is stale")
    p.set_defaults(run=_cmd_record)

    p = sub.add_parser("package", help="build the Gradescope autograder zip",
                       description="Build dist/NAME-autograder.zip for Gradescope: setup.sh (installs the "
                                   "dependencies only), run_autograder, the engine, the reference and the "
                                   "assignment with its data directory. Warns when the labels packed are hidden.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--out", help="output folder (default: dist/)")
    p.add_argument("--data-dir", help="labels and fixtures to pack (default: the assignment's data directory)")
    p.set_defaults(run=_cmd_package)

    p = sub.add_parser("bundle", help="build the student bundle: public cases with golden values; no reference, "
                                      "expected answers, hidden cases or mutant patches",
                       description="Build dist/NAME-student.zip, with which students grade the public cases "
                                   "locally (`dlgrade grade NAME SUBMISSION`).")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--out", help="output folder (default: dist/)")
    p.set_defaults(run=_cmd_bundle)

    p = sub.add_parser("warm", help="compute the staff values once, into the root-only cache grading reads",
                       description="Compute every value grading asks of the staff side (the reference's values "
                                   "and times on the staff inputs, each known mistake's values) into the disk "
                                   "cache (root only: /var/cache/dlgrade, or $DLGRADE_CACHE_DIR), so that each "
                                   "student's run reads them. The Gradescope image's setup.sh runs it.")
    p.add_argument("assignment", help=ASSIGNMENT_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress, only the final line")
    p.set_defaults(run=_cmd_warm)

    p = sub.add_parser("new", help="write the skeleton of a new homework (passes `dlgrade verify` as written)",
                       description="Write assignments/NAME/ (manifest, cases, mistakes, starter) and "
                                   "reference/NAME/NAME.py, a working example of every part, then record its "
                                   "golden values. Refuses to overwrite anything. See docs/adding-a-homework.md.")
    p.add_argument("name", help="the homework's name: lower case letters, digits and '_'")
    p.set_defaults(run=_cmd_new)

    p = sub.add_parser("list", help="list assignments with their points",
                       description="List the assignments with their points, cases and known mistakes.")
    p.set_defaults(run=_cmd_list)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a scheduler, `kill`) cleans up like Ctrl-C: run directories, workers, uid files.
    # SIGINT too, even when started with it ignored (a background job of a non-interactive
    # shell), where Python would otherwise not turn it into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    command = (sys.argv[1:] if argv is None else argv)[:1]
    try:
        if command and command[0] in WITHOUT_SANDBOX:
            return _run(build_parser().parse_args(argv), None)
        # Imported before the sandbox forks, so workers share torch's pages and never re-import it.
        import torch  # noqa: F401

        from grader.sandbox.zygote import Sandbox

        # The fork server starts first: before the command line (which names the results path)
        # is parsed and before any assignment or reference is loaded. It replaces its own argv.
        with Sandbox.start() as sandbox:
            return _run(build_parser().parse_args(argv), sandbox)
    except KeyboardInterrupt:
        print("\ndlgrade: interrupted", file=sys.stderr)
        return 130


def _run(args, sandbox) -> int:
    from grader.errors import AssignmentError

    try:
        return args.run(args, sandbox)
    except (AssignmentError, UsageError) as exc:
        print(f"dlgrade: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
