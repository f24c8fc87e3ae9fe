"""The answers file for symbolic questions, and grading it.

Format
------
Students submit ``answers.toml``: a TOML file (read with :mod:`tomllib`, which only reads
data) holding one string per question id, at the top level::

    # comments start with '#'
    example_kernel = "exp(norm(q)^2/2) * dot(q, k)"
    example_cost = "O(N^2*D)"

* Every value is a string in double quotes (``'single quotes'`` and ``\"\"\"multi-line\"\"\"``
  TOML strings work too; line breaks inside an answer are read as spaces).
* An empty string ``""`` means "no answer given" (0 points for that question).
* Expressions use ``+ - * /``, ``^`` or ``**`` for powers (``x^2*y`` is ``(x^2)*y``),
  parentheses, decimal numbers (read exactly: ``0.5`` is 1/2), the names each question
  lists, and the functions ``exp log sqrt sin cos`` and the constant ``pi``.
  Multiplication must be written: ``2*D``, not ``2D``. Write only the right-hand side,
  without ``=``.
* Big-O answers may be written as ``O(...)`` or as the bare expression inside it; only the
  asymptotic class counts (every size -> infinity independently), so constant factors and
  dominated terms do not matter.
* Matrix answers use ``*`` for the matrix product, ``T(A)`` for the transpose, and
  ``scalar(A)`` for the single entry of a 1x1 matrix; dividing by a 1x1 matrix is allowed.

The text is never executed: see :mod:`grader.symbolic.parse`.

Grading
-------
:func:`grade_answers` returns one :class:`AnswerVerdict` per question, in order, and never
raises: a TOML syntax error, a missing key, a non-string value, an unreadable expression,
an answer of the wrong shape (``wrong shape: ...``, naming the shapes) or a big-O answer
too complex to compare each becomes an incorrect verdict with a message. Messages for
wrong answers say why from the student's side and never contain the expected answer;
``staff_detail`` may, and must not be shown to students.
"""
from __future__ import annotations

import difflib
import tomllib
import traceback
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from sympy.matrices.expressions.matexpr import MatrixExpr

from .equivalence import (
    BigOError,
    SymbolicTimeout,
    big_o_terms,
    compare_big_o,
    expressions_equivalent,
    matrix_expressions_equivalent,
    time_limit,
)
from .parse import (
    BigO,
    SymbolicParseError,
    SymbolicShapeError,
    Vector,
    Vocabulary,
    format_expression,
    names_used,
    parse_expression,
    shape_text,
)

__all__ = [
    "KINDS",
    "Question",
    "AnswerVerdict",
    "AnswersFileError",
    "VOCABULARIES",
    "register_vocabulary",
    "load_answers",
    "grade_answer",
    "grade_answers",
    "render_answers_template",
]

KINDS = ("expression", "big_o", "matrix")
MAX_FILE_CHARS = 200_000
#: A backstop only (SIGALRM: main thread only): the big-O comparison caps its own work.
BIG_O_SECONDS = 10.0

#: Named vocabularies, so that a Question can say ``vocabulary="..."``.
VOCABULARIES: dict[str, Vocabulary] = {}


def register_vocabulary(name: str, vocabulary: Vocabulary | Mapping[str, Any]) -> Vocabulary:
    vocab = Vocabulary.coerce(vocabulary)
    VOCABULARIES[name] = vocab
    return vocab


class AnswersFileError(ValueError):
    """answers.toml cannot be read; the message is meant for students."""


_MISSING = object()


@dataclass(frozen=True)
class Question:
    """One symbolic question.

    ``expected`` is the staff answer in the answers-file syntax. ``vocabulary`` is a
    :class:`Vocabulary` (or a plain name -> value mapping, or the name of a registered
    vocabulary). ``requires`` lists names the answer must use (e.g. ``K_gauss``, so that
    restating the left-hand side does not count).
    """

    id: str
    prompt: str
    kind: str
    expected: str
    vocabulary: Any
    points: float = 1
    requires: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"question {self.id!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if not self.id or not all(c.isalnum() or c in "_-" for c in self.id) or not self.id.isascii():
            raise ValueError(f"question id {self.id!r} must be a bare TOML key (letters, digits, _ and -)")

    @property
    def vocab(self) -> Vocabulary:
        if isinstance(self.vocabulary, str):
            try:
                return VOCABULARIES[self.vocabulary]
            except KeyError:
                raise KeyError(f"question {self.id!r}: no vocabulary named {self.vocabulary!r}") from None
        return Vocabulary.coerce(self.vocabulary)


@dataclass
class AnswerVerdict:
    question_id: str
    correct: bool
    message: str                 # student-facing; never contains the expected answer
    score: float = 0.0
    max_score: float = 0.0
    staff_detail: str = ""       # may reveal the expected answer: staff eyes only


def load_answers(toml_text: str | bytes) -> dict[str, Any]:
    """Read answers.toml into a dict; :class:`AnswersFileError` with a readable message."""
    if isinstance(toml_text, (bytes, bytearray)):
        try:
            toml_text = bytes(toml_text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AnswersFileError(f"answers.toml is not UTF-8 text ({exc})") from None
    if not isinstance(toml_text, str):
        raise AnswersFileError("answers.toml could not be read as text")
    if len(toml_text) > MAX_FILE_CHARS:
        raise AnswersFileError(f"answers.toml is too large ({len(toml_text)} characters)")
    if toml_text.startswith("\ufeff"):
        toml_text = toml_text[1:]
    try:
        return tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise AnswersFileError(f"answers.toml is not valid TOML: {exc}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # pathological nesting
        raise AnswersFileError(f"answers.toml could not be read ({type(exc).__name__})") from None


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", dict: "a table",
            list: "a list"}.get(type(value), type(value).__name__)


def _vector_note(vocab: Vocabulary, shown: str, text: str) -> str:
    """Explain the internal names (|q|^2, q.k) that appear when an answer uses vectors."""
    spaces = []
    for value in vocab.entries.values():
        if isinstance(value, Vector) and value.space not in spaces:
            spaces.append(value.space)
    bits = []
    for space in spaces:
        for (a, b), symbol in space.gram_items():
            if str(symbol) in shown:
                bits.append(f"{symbol} is norm({a})^2" if a == b else f"{symbol} is dot({a}, {b})")
    if "K_gauss" in names_used(text):
        bits.append("K_gauss(u, v) is written out as exp(-|u - v|^2/(2*sigma^2))")
    return f" (where {'; '.join(bits)})" if bits else ""


def grade_answer(question: Question, answer: Any = _MISSING, *, unknown_keys: Sequence[str] = ()) -> AnswerVerdict:
    """Grade one answer (the raw value read from answers.toml, or missing). Never raises."""
    qid = question.id
    points = float(question.points)

    def wrong(message: str, staff: str = "") -> AnswerVerdict:
        return AnswerVerdict(qid, False, f"{qid}: {message}", 0.0, points, staff)

    if answer is _MISSING or answer is None:
        msg = f'no answer found in answers.toml (expected a line {qid} = "...")'
        close = difflib.get_close_matches(qid, list(unknown_keys), n=1, cutoff=0.6)
        if close:
            msg += f"; the file has a key '{close[0]}': did you mean '{qid}'?"
        return wrong(msg)
    if not isinstance(answer, str):
        return wrong(f'the answer must be a string in double quotes, like {qid} = "...", '
                     f"but it is {_type_name(answer)}")
    if not answer.strip():
        return wrong("no answer given (the answer is empty)")

    try:
        vocab = question.vocab
        expected = parse_expression(question.expected, vocab)
    except Exception as exc:  # noqa: BLE001 - a staff error must not crash grading
        return wrong("internal error: this question is misconfigured (not your fault; please tell "
                     "the course staff)", f"expected answer of {qid!r} does not parse: {exc!r}")

    try:
        student = parse_expression(answer, vocab)
    except SymbolicShapeError as exc:
        # it was read: saying "could not read" would send the student after a typo
        return wrong(f"wrong shape: {exc}")
    except SymbolicParseError as exc:
        return wrong(f"could not read your answer: {exc}")
    except Exception as exc:  # noqa: BLE001
        return wrong("could not read your answer (internal error; please tell the course staff)",
                     traceback.format_exc())

    try:
        return _judge(question, vocab, answer, student, expected, points)
    except Exception:  # noqa: BLE001
        return wrong("internal error while checking your answer (not your fault; please tell the "
                     "course staff)", traceback.format_exc())


def _judge(question: Question, vocab: Vocabulary, text: str, student, expected, points: float) -> AnswerVerdict:
    qid = question.id
    shown = format_expression(student)

    def verdict(ok: bool, message: str, staff: str = "") -> AnswerVerdict:
        return AnswerVerdict(qid, ok, f"{qid}: {message}", points if ok else 0.0, points, staff)

    missing = [name for name in question.requires if name not in names_used(text)]
    if missing:
        return verdict(False, "your answer must use " + ", ".join(missing)
                       + f" (as the question asks); we read your answer as: {shown}")

    if question.kind == "big_o":
        try:
            big_o_terms(expected, vocab.variables)
        except BigOError as exc:
            return verdict(False, "internal error: this question is misconfigured (please tell the "
                                  "course staff)", f"expected big-O of {qid!r}: {exc}")
        if isinstance(student, MatrixExpr):
            return verdict(False, f"wrong shape: your answer is a {shape_text(student.shape)} matrix, "
                                  "but a cost must be a scalar expression such as O(N*D)")
        try:
            with time_limit(BIG_O_SECONDS):
                cmp = compare_big_o(student, expected, vocab.variables)
        except BigOError as exc:
            return verdict(False, f"could not compare your answer: {exc}; we read it as: {shown}")
        except SymbolicTimeout:
            return verdict(False, "could not compare your answer: too complex to compare (it took too "
                                  f"long); simplify it; we read it as: {shown}")
        if cmp.equivalent:
            return verdict(True, f"correct ({cmp.student_detail()})", cmp.full_detail())
        return verdict(False, "not the expected asymptotic class: " + cmp.student_detail(),
                       cmp.full_detail())

    if not isinstance(student, MatrixExpr) and student.has(BigO):
        return verdict(False, "O(...) is only for cost questions; write the exact expression")

    mismatch = _shape_mismatch(student, expected)
    if mismatch:
        return verdict(False, f"wrong shape: {mismatch}; we read your answer as: {shown}")
    if question.kind == "matrix":
        ok, detail = matrix_expressions_equivalent(student, expected, dims=vocab.matrix_dims)
    else:
        ok, detail = expressions_equivalent(student, expected, substitutions=vocab.substitutions)
    if ok:
        return verdict(True, f"correct ({detail})", detail)
    note = _vector_note(vocab, shown, text)
    return verdict(False, f"not equivalent to the expected expression: {detail}. "
                          f"We read your answer as: {shown}{note}", detail)


def _shape_mismatch(student, expected) -> str:
    """Why the student's answer has the wrong kind or shape ("" if it has the right one).

    Names only the shape the answer must have, which the prompt states anyway."""
    s_shape = tuple(student.shape) if isinstance(student, MatrixExpr) else None
    e_shape = tuple(expected.shape) if isinstance(expected, MatrixExpr) else None
    if s_shape == e_shape:
        return ""
    if s_shape is None:
        return f"your answer is a scalar, but a {shape_text(e_shape)} matrix is expected"
    if e_shape is None:
        return f"your answer is a {shape_text(s_shape)} matrix, but a scalar is expected"
    return (f"your answer is a {shape_text(s_shape)} matrix, but a {shape_text(e_shape)} matrix "
            "is expected")


def grade_answers(toml_text: str | bytes, questions: Sequence[Question]) -> list[AnswerVerdict]:
    """Grade a whole answers.toml: one verdict per question, in order. Never raises."""
    try:
        data = load_answers(toml_text)
    except AnswersFileError as exc:
        reason = str(exc)
        return [AnswerVerdict(q.id, False, f"{q.id}: {reason} (no answer could be graded; fix the "
                                           "file and resubmit)", 0.0, float(q.points))
                for q in questions]
    except Exception as exc:  # noqa: BLE001
        return [AnswerVerdict(q.id, False, f"{q.id}: answers.toml could not be read "
                                           f"({type(exc).__name__})", 0.0, float(q.points))
                for q in questions]
    ids = {q.id for q in questions}
    unknown = [k for k in data if k not in ids]
    return [grade_answer(q, data.get(q.id, _MISSING), unknown_keys=unknown) for q in questions]


def _comment(text: str) -> list[str]:
    lines = []
    for raw in text.strip().splitlines():
        raw = "".join(ch if ch == "\t" or ord(ch) >= 32 else " " for ch in raw.rstrip())
        lines.append(("# " + raw).rstrip())
    return lines


TEMPLATE_HEADER = """\
# Symbolic answers. Fill in each "" with your answer as an expression; leave "" to skip.
# Syntax: + - * /, ^ or ** for powers, parentheses, exp log sqrt sin cos, pi, and the
# names each question lists. Write multiplication explicitly (2*D, not 2D) and only the
# right-hand side (no '='). Big-O answers: O(...) with only the dominant terms mattering.
# Matrix answers: * is the matrix product, T(A) the transpose, scalar(A) the entry of a
# 1x1 matrix. Example:  some_question = "exp(-norm(q)^2/2) * sqrt(D)"
"""


def render_answers_template(questions: Sequence[Question], header: str = TEMPLATE_HEADER) -> str:
    """The starter answers.toml: one commented prompt and an empty answer per question."""
    out = [header.rstrip("\n")]
    for q in questions:
        pts = f"{q.points:g} point{'s' if float(q.points) != 1 else ''}"
        out.append("")
        out.append(f"# --- {q.id} ({q.kind.replace('_', '-')}, {pts}) ---")
        out.extend(_comment(q.prompt))
        out.append(f'{q.id} = ""')
    return "\n".join(out) + "\n"
