"""grader.symbolic.equivalence and grader.symbolic.answers."""
import importlib
import json
import sys
import time
from pathlib import Path

import pytest
import sympy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.symbolic import (  # noqa: E402
    BigOError,
    FunctionSpec,
    Question,
    SymbolicTimeout,
    Vocabulary,
    big_o_equivalent,
    big_o_terms,
    compare_big_o,
    expressions_equivalent,
    grade_answer,
    grade_answers,
    load_answers,
    matrix_expressions_equivalent,
    parse_expression,
    render_answers_template,
    time_limit,
)
from grader.symbolic import equivalence  # noqa: E402
from grader.symbolic.numeric import NumericOverflow, evaluate  # noqa: E402

questions_module = importlib.import_module("assignments.linear_attention.questions")
QUESTIONS = questions_module.QUESTIONS
BY_ID = {q.id: q for q in QUESTIONS}

a, b, x, y, D, sigma = sympy.symbols("a b x y D sigma", positive=True)
SCALARS = Vocabulary({"a": a, "b": b, "x": x, "y": y, "D": D, "sigma": sigma})


def P(text, vocab=SCALARS):
    return parse_expression(text, vocab)


# ------------------------------------------------------------------ expressions

@pytest.mark.parametrize("student, expected", [
    ("exp(a)*exp(b)", "exp(a + b)"),
    ("sqrt(x^2)", "x"),
    ("(D + 1)^2", "1 + 2*D + D^2"),
    ("1/sigma^2", "sigma^(-2)"),
    ("exp(x)^2", "exp(2*x)"),
    ("log(a*b)", "log(a) + log(b)"),
    ("sin(x)^2 + cos(x)^2", "1"),
    ("0.5*x", "x/2"),
    ("(a^2 - b^2)/(a - b)", "a + b"),
])
def test_equivalent_forms_accepted(student, expected):
    ok, detail = expressions_equivalent(P(student), P(expected))
    assert ok, detail


@pytest.mark.parametrize("student, expected", [
    ("exp(a)*exp(b)", "exp(a*b)"),
    ("sigma^2", "1/sigma^2"),
    ("x + 1/10^12", "x"),
    ("D^2", "(D + 1)^2"),
])
def test_different_expressions_rejected_with_student_side_detail(student, expected):
    ok, detail = expressions_equivalent(P(student), P(expected))
    assert not ok
    assert "your answer evaluates to" in detail


def test_substitutions_give_meaning_to_sigma():
    # sigma^2 = sqrt(D): exp(x/sigma^2) is exp(x/sqrt(D))
    ok, _ = expressions_equivalent(P("exp(x/sigma^2)"), P("exp(x/sqrt(D))"),
                                   substitutions={sigma: D ** sympy.Rational(1, 4)})
    assert ok
    ok, _ = expressions_equivalent(P("exp(x/sigma^2)"), P("exp(x/sqrt(D))"))
    assert not ok


def test_numeric_fallback_confirms_when_simplify_fails(monkeypatch):
    monkeypatch.setattr(equivalence.sympy, "simplify", lambda expr, *args, **kw: expr)
    ok, detail = expressions_equivalent(P("exp(a)*exp(b)"), P("exp(a + b)"))
    assert ok and "random points" in detail
    ok, detail = expressions_equivalent(P("exp(a)*exp(b)"), P("exp(a + b) * (1 + 10^-6)"))
    assert not ok


def test_hostile_expressions_are_decided_quickly():
    start = time.perf_counter()
    for text in ["x^x^x^x^x^x^x^x^x^x", "exp(exp(exp(exp(x))))", "(a + b + x + y + D + sigma)^64",
                 "sin(exp(exp(exp(exp(x)))))", "log(0)*x"]:
        ok, _ = expressions_equivalent(P(text), x, timeout=1.0)
        assert not ok
    assert time.perf_counter() - start < 8


def test_numeric_evaluation_refuses_huge_values():
    with pytest.raises(NumericOverflow):
        evaluate(sympy.exp(sympy.exp(sympy.exp(x))), {x: sympy.Integer(3)})
    with pytest.raises(NumericOverflow):
        evaluate(x ** (x ** (x ** (x ** x))), {x: sympy.Integer(2)})
    assert abs(evaluate(sympy.exp(x) * sympy.sqrt(y), {x: 1, y: 4}) - 2 * sympy.E.evalf(30)) < 1e-25


def test_time_limit_interrupts():
    start = time.perf_counter()
    with pytest.raises(SymbolicTimeout):
        with time_limit(0.2):
            while True:
                pass
    assert time.perf_counter() - start < 2


# ----------------------------------------------------------------------- big-O

N, M, Dr = sympy.symbols("N M D_random", positive=True)
COST = Vocabulary({"N": N, "D": D, "M": M, "D_random": Dr,
                   "O": FunctionSpec(equivalence.BigO, ("scalar",), "O(expression)")},
                  variables=[N, Dr, D, M])
ORDER = [N, Dr, D, M]


def BO(text):
    return parse_expression(text, COST)


@pytest.mark.parametrize("student", [
    "O(N*D_random*(D+M))",
    "O(N*D_random*D + N*D_random*M)",
    "O(3*N*D_random*D + N*D_random*M + N)",
    "N*D_random*(D + M)",                        # the bare expression is accepted
    "O(N*D_random*D) + O(N*D_random*M)",
    "O(2*N*(2*D_random)*M + N*D_random*D + N*D_random + N*M)",
    "O(N*D_random*(D+M)^1)",
])
def test_big_o_equivalent_forms(student):
    ok, detail = big_o_equivalent(BO(student), BO("O(N*D_random*(D+M))"), ORDER)
    assert ok, detail


def test_big_o_difference_names_dominant_terms():
    ok, detail = big_o_equivalent(BO("O(N^2*D)"), BO("O(N*D_random*(D+M))"), ORDER)
    assert not ok
    assert detail == "your answer grows like N^2*D; expected terms N*D_random*D, N*D_random*M"
    ok, detail = big_o_equivalent(BO("O(N*D_random*D)"), BO("O(N*D_random*(D+M))"), ORDER)
    assert not ok and "N*D_random*M" in detail


def test_big_o_comparison_student_detail_hides_expected_terms():
    cmp = compare_big_o(BO("O(N^2*D)"), BO("O(N*D_random*(D+M))"), ORDER)
    text = cmp.student_detail()
    assert "N^2*D" in text and "faster" in text
    assert "D_random" not in text
    cmp = compare_big_o(BO("O(N*D_random*D)"), BO("O(N*D_random*(D+M))"), ORDER)
    assert "term of the expected cost is missing" in cmp.student_detail() and not cmp.grows_faster


def test_big_o_uses_amgm_dominance():
    # N*M <= (N^2 + M^2)/2, so (N + M)^2 and N^2 + M^2 are the same class
    assert big_o_equivalent(BO("O((N + M)^2)"), BO("O(N^2 + M^2)"))[0]
    assert big_o_equivalent(BO("O(N^2 + N*M + M^2)"), BO("O(N^2 + M^2)"))[0]
    assert not big_o_equivalent(BO("O(N*M)"), BO("O(N^2 + M^2)"))[0]
    assert big_o_equivalent(BO("sqrt(N + M)"), BO("sqrt(N) + sqrt(M)"))[0]
    assert big_o_equivalent(BO("O(5)"), BO("O(1)"))[0]
    assert big_o_equivalent(BO("O(N^2 - N)"), BO("O(N^2)"))[0]
    assert [str(t) for t in big_o_terms(BO("O(N*(D+1)^2*M + N*D^2)"), [N, D, M])] == ["D**2*M*N"]


@pytest.mark.parametrize("text, fragment", [
    ("O(N*log(N))", "log(...) cannot be compared"),
    ("O(2^N)", "exponential growth"),
    ("O(1/(N + M))", "negative or fractional powers of sums"),
    ("O(D - N^2)", "negative"),
    ("O(0)", "is 0"),
    ("O((N + M + D + D_random - 1)^60)", "too complex to compare"),
])
def test_big_o_errors(text, fragment):
    start = time.perf_counter()
    with pytest.raises(BigOError) as info:
        big_o_terms(BO(text))
    assert fragment in str(info.value)
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------- matrices

REC = questions_module.RECURRENCE_VOCAB
OUT = questions_module.OUTPUT_VOCAB


@pytest.mark.parametrize("student, expected, vocab", [
    ("S_prev + T(phi_K_i)*V_i", "T(T(V_i)*phi_K_i) + S_prev", REC),
    ("T(T(Z_prev) + phi_K_i)", "Z_prev + T(phi_K_i)", REC),
    ("(phi_Q_i*S_i) / (phi_Q_i*Z_i)", "phi_Q_i*S_i / scalar(phi_Q_i*Z_i)", OUT),
    ("(1/(phi_Q_i*Z_i)) * phi_Q_i*S_i", "phi_Q_i*S_i / scalar(T(Z_i)*T(phi_Q_i))", OUT),
])
def test_matrix_equivalent_forms(student, expected, vocab):
    ok, detail = matrix_expressions_equivalent(parse_expression(student, vocab),
                                               parse_expression(expected, vocab), dims=vocab.matrix_dims)
    assert ok, detail


def test_matrix_differences():
    p = lambda t: parse_expression(t, REC)  # noqa: E731
    ok, detail = matrix_expressions_equivalent(p("S_prev - T(phi_K_i)*V_i"), p("S_prev + T(phi_K_i)*V_i"))
    assert not ok and "random matrices" in detail
    ok, detail = matrix_expressions_equivalent(p("T(phi_K_i)"), p("S_prev + T(phi_K_i)*V_i"))
    assert not ok and "[F x 1] matrix" in detail
    ok, detail = matrix_expressions_equivalent(p("scalar(phi_K_i*Z_prev)"), p("Z_prev"))
    assert not ok and "scalar" in detail


# ----------------------------------------------------------------------- answers

def toml_of(answers):
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in answers.items()) + "\n"


def test_expected_answers_grade_correct():
    verdicts = grade_answers(toml_of({q.id: q.expected for q in QUESTIONS}), QUESTIONS)
    assert [v.question_id for v in verdicts] == [q.id for q in QUESTIONS]
    for v, q in zip(verdicts, QUESTIONS):
        assert v.correct, v.message
        assert v.score == v.max_score == q.points


ALTERNATIVES = {
    "softmax_gaussian": "K_gauss(q,k)*exp((norm(q)^2 + norm(k)^2)/(2*sqrt(D)))",
    "random_feature_variance": "sigma^(-2)",
    "softmax_feature_scale": "exp(dot(x, x)/(2*sigma**2))",
    "random_feature_cost": "N*D_random*D + 3*N*D_random*M + N",
    "causal_S_recurrence": "T(phi_K_i)*V_i + S_prev",
    "causal_Z_recurrence": "T(T(Z_prev) + phi_K_i)",
    "causal_output": "phi_Q_i*S_i / scalar(phi_Q_i*Z_i)",
    "causal_cost": "O(N*D_random*(D + M))",
    "polynomial_feature_dim": "1 + 2*D + D^2",
    "polynomial_cost": "O(N*(D + 1)^2*M + N*D^2)",
}


def test_alternative_forms_grade_correct():
    assert set(ALTERNATIVES) == set(BY_ID)
    for v in grade_answers(toml_of(ALTERNATIVES), QUESTIONS):
        assert v.correct, v.message


WRONG = {
    "softmax_gaussian": ("exp(norm(q)^2/(2*sigma^2)) * K_gauss(q, k)", "your answer evaluates to"),
    "random_feature_variance": ("sigma^2", "your answer evaluates to"),
    "softmax_feature_scale": ("exp(norm(x)^2/sigma^2)", "your answer evaluates to"),
    "random_feature_cost": ("O(N^2*D)", "grows like N^2*D"),
    "causal_S_recurrence": ("S_prev + phi_K_i*T(V_i)", "wrong shape: line 1, column 10: cannot multiply "
                            "phi_K_i [1 x F] by T(V_i) [M x 1]"),
    "causal_Z_recurrence": ("Z_prev + phi_K_i", "wrong shape: line 1, column 1: cannot add or subtract "
                            "Z_prev [F x 1] and phi_K_i [1 x F]"),
    "causal_output": ("phi_Q_i*S_i", "differs from the expected expression for random matrices"),
    "causal_cost": ("O(N^2*D_random*M)", "neither bounds the other: it grows faster in N"),
    "polynomial_feature_dim": ("D^2", "your answer evaluates to"),
    "polynomial_cost": ("O(N^2*D)", "grows like N^2*D"),
}


@pytest.mark.parametrize("qid", sorted(WRONG))
def test_wrong_answer_graded_wrong_with_helpful_message(qid):
    text, fragment = WRONG[qid]
    (verdict,) = grade_answers(toml_of({qid: text}), [BY_ID[qid]])
    assert not verdict.correct and verdict.score == 0
    assert verdict.message.startswith(f"{qid}: ")
    assert fragment in verdict.message, verdict.message
    expected = BY_ID[qid].expected
    assert expected not in verdict.message
    assert expected.replace(" ", "") not in verdict.message.replace(" ", "")


def test_wrong_answers_cover_every_question():
    assert set(WRONG) == set(BY_ID)


def test_restating_the_left_hand_side_does_not_count():
    q = BY_ID["softmax_gaussian"]
    v = grade_answer(q, "exp(dot(q, k)/sqrt(D))")
    assert not v.correct and "unknown name 'dot'" in v.message
    v = grade_answer(q, "exp(norm(q)^2/(2*sigma^2)) * exp(norm(k)^2/(2*sigma^2))")
    assert not v.correct and "must use K_gauss" in v.message
    v = grade_answer(q, "exp(norm(q - k)^2)*K_gauss(q, k)")
    assert not v.correct and "only be passed to the functions" in v.message


def test_toml_syntax_error_gives_one_verdict_per_question():
    text = 'softmax_gaussian = "exp(1)"\nrandom_feature_variance = "1/sigma^2\n'
    verdicts = grade_answers(text, QUESTIONS)
    assert len(verdicts) == len(QUESTIONS)
    assert [v.question_id for v in verdicts] == [q.id for q in QUESTIONS]
    for v in verdicts:
        assert not v.correct and v.score == 0 and v.max_score > 0
        assert "not valid TOML" in v.message and "line 2" in v.message


@pytest.mark.parametrize("raw, fragment", [
    (b"\xff\xfe garbage", "not UTF-8"),
    ("x = 1\n" * 40000, "too large"),
    ("a = " + "[" * 5000 + "]" * 5000, "answers.toml"),
])
def test_unreadable_files(raw, fragment):
    verdicts = grade_answers(raw, QUESTIONS)
    assert len(verdicts) == len(QUESTIONS)
    assert all(not v.correct and fragment in v.message for v in verdicts)


def test_missing_non_string_and_empty_answers():
    text = ('random_feature_variance = 2\nsoftmax_feature_scale = ""\n'
            'random_feature_cost = ["O(N)"]\nsoftmax_gausian = "x"\n'
            'polynomial_feature_dim = """(D + 1)\n  ^2"""\n'
            "polynomial_cost = 'O(N*D^2*M)'\n")
    verdicts = {v.question_id: v for v in grade_answers(text, QUESTIONS)}
    assert len(verdicts) == len(QUESTIONS)
    assert "no answer found" in verdicts["softmax_gaussian"].message
    assert "did you mean 'softmax_gaussian'" in verdicts["softmax_gaussian"].message
    assert "string in double quotes" in verdicts["random_feature_variance"].message
    assert "a number" in verdicts["random_feature_variance"].message
    assert "a list" in verdicts["random_feature_cost"].message
    assert "no answer given" in verdicts["softmax_feature_scale"].message
    assert verdicts["polynomial_feature_dim"].correct       # multi-line TOML string
    assert verdicts["polynomial_cost"].correct              # literal string
    assert load_answers(b"\xef\xbb\xbfa = 'x'") == {"a": "x"}  # BOM tolerated


def test_hostile_answers_in_the_file(tmp_path):
    marker = tmp_path / "pwned"
    answers = {q.id: f"__import__('os').system('touch {marker}')" for q in QUESTIONS}
    answers["causal_output"] = "().__class__.__bases__[0].__subclasses__()"
    answers["random_feature_cost"] = "O(9**9**9)"
    start = time.perf_counter()
    verdicts = grade_answers(toml_of(answers), QUESTIONS)
    assert time.perf_counter() - start < 5
    assert all(not v.correct and "could not read your answer" in v.message for v in verdicts)
    assert not marker.exists()


def test_misconfigured_question_does_not_raise():
    bad = Question(id="bad", prompt="p", kind="expression", expected="nonsense(", vocabulary=SCALARS)
    v = grade_answer(bad, "x")
    assert not v.correct and "misconfigured" in v.message and "does not parse" in v.staff_detail
    with pytest.raises(ValueError):
        Question(id="bad id", prompt="p", kind="expression", expected="x", vocabulary=SCALARS)
    with pytest.raises(ValueError):
        Question(id="q", prompt="p", kind="essay", expected="x", vocabulary=SCALARS)


def test_kind_mismatches_are_explained():
    v = grade_answer(BY_ID["causal_output"], "scalar(phi_Q_i*Z_i)")
    assert not v.correct and "scalar" in v.message
    v = grade_answer(BY_ID["random_feature_variance"], "O(sigma)")
    assert not v.correct and "unknown name 'O'" in v.message


# ------------------------------------------------------------- starter template

STARTER = ROOT / "assignments" / "linear_attention" / "starter" / "answers.toml"


def test_starter_template_is_current_and_grades_as_no_answer():
    text = STARTER.read_text()
    assert text == render_answers_template(QUESTIONS), "regenerate starter/answers.toml"
    verdicts = grade_answers(text, QUESTIONS)
    assert len(verdicts) == len(QUESTIONS)
    for v in verdicts:
        assert not v.correct and v.score == 0 and "no answer given" in v.message


def test_prompts_name_every_allowed_name_and_points_are_sane():
    for q in QUESTIONS:
        assert q.points in (1, 2)
        assert q.prompt.strip()
        for name in q.vocab.entries:
            if name in ("exp", "log", "sqrt", "sin", "cos", "pi"):
                continue
            assert name in q.prompt, (q.id, name)
        assert f"{q.id} = \"\"" in render_answers_template([q])
