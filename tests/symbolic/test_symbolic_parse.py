"""grader.symbolic.parse: the whitelist parser never executes student text."""
import builtins
import sys
import time
from pathlib import Path

import pytest
import sympy

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader.symbolic import (  # noqa: E402
    BigO,
    FunctionSpec,
    SymbolicParseError,
    SymbolicShapeError,
    VectorSpace,
    Vocabulary,
    format_expression,
    matrix_vocabulary_functions,
    names_used,
    parse_expression,
)

x, y, D, sigma = sympy.symbols("x y D sigma", positive=True)
SCALARS = Vocabulary({"x": x, "y": y, "D": D, "sigma": sigma})

F = sympy.Symbol("F", integer=True, positive=True)
Mdim = sympy.Symbol("M", integer=True, positive=True)
MATRICES = Vocabulary({
    "S": sympy.MatrixSymbol("S", F, Mdim),
    "Z": sympy.MatrixSymbol("Z", F, 1),
    "p": sympy.MatrixSymbol("p", 1, F),
    "v": sympy.MatrixSymbol("v", 1, Mdim),
    **matrix_vocabulary_functions(),
})

SPACE = VectorSpace(["q", "k"])
VECTORS = Vocabulary({
    "q": SPACE.vectors["q"], "k": SPACE.vectors["k"],
    "norm": SPACE.norm_function(), "dot": SPACE.dot_function(),
    "K_gauss": SPACE.gaussian_kernel_function(sigma), "sigma": sigma,
})
QQ, KK, QK = SPACE.gram_symbol("q", "q"), SPACE.gram_symbol("k", "k"), SPACE.gram_symbol("q", "k")


# ----------------------------------------------------------------- accepted syntax

@pytest.mark.parametrize("text, expected", [
    ("x^2*y", x**2 * y),                    # ^ binds like **, not like Python's xor
    ("x**2*y", x**2 * y),
    ("2^3^2", sympy.Integer(2**9)),         # right-associative
    ("-x^2", -(x**2)),
    ("+x - -y", x + y),
    ("0.5*x", x / 2),                       # decimals read exactly
    ("0.1", sympy.Rational(1, 10)),
    ("x/y/2", x / (2 * y)),
    ("exp(x)*log(y)", sympy.exp(x) * sympy.log(y)),
    ("sqrt(D)", sympy.sqrt(D)),
    ("sin(x)^2 + cos(x)^2", sympy.sin(x)**2 + sympy.cos(x)**2),
    ("pi*x", sympy.pi * x),
    ("  x +\n y ", x + y),                  # whitespace and line breaks
    ("x @ y", x * y),
])
def test_accepted_scalar_syntax(text, expected):
    assert parse_expression(text, SCALARS) == expected


def test_plain_mapping_vocabulary_and_callable():
    vocab = {"x": x, "f": sympy.exp}
    assert parse_expression("f(x)", vocab) == sympy.exp(x)
    assert parse_expression("exp(x) + 1", vocab) == sympy.exp(x) + 1


def test_vectors_are_known_through_their_gram_matrix():
    assert parse_expression("norm(q)^2", VECTORS) == QQ
    assert parse_expression("dot(k, q)", VECTORS) == QK
    assert parse_expression("dot(q - k, q - k)", VECTORS) == sympy.expand(QQ - 2 * QK + KK)
    assert parse_expression("K_gauss(q, k)", VECTORS) == sympy.exp(-(QQ - 2 * QK + KK) / (2 * sigma**2))
    assert parse_expression("norm(2*q)", VECTORS) == 2 * sympy.sqrt(QQ)


def test_vector_misuse_is_explained():
    with pytest.raises(SymbolicParseError, match="vector"):
        parse_expression("q", VECTORS)
    with pytest.raises(SymbolicParseError, match="dot"):
        parse_expression("norm(q*k)", VECTORS)
    with pytest.raises(SymbolicParseError, match="must be a vector"):
        parse_expression("norm(sigma)", VECTORS)
    with pytest.raises(SymbolicParseError, match="must be a scalar"):
        parse_expression("exp(q)", VECTORS)
    frozen = VectorSpace(["q", "k"], allow_arithmetic=False)
    vocab = Vocabulary({"q": frozen.vectors["q"], "k": frozen.vectors["k"], "norm": frozen.norm_function()})
    with pytest.raises(SymbolicParseError, match="only be passed to the functions"):
        parse_expression("norm(q - k)", vocab)


def test_matrix_expressions_and_shapes():
    s = parse_expression("S + T(p)*v", MATRICES)
    assert s.shape == (F, Mdim)
    assert format_expression(s) in ("S + T(p)*v", "T(p)*v + S")
    out = parse_expression("(p*S) / (p*Z)", MATRICES)
    assert out.shape == (1, Mdim)
    assert "scalar(p*Z)" in format_expression(out)
    assert parse_expression("p*S / scalar(p*Z)", MATRICES).shape == (1, Mdim)
    assert parse_expression("T(x)", {"x": x, **matrix_vocabulary_functions()}) == x


@pytest.mark.parametrize("text, fragment", [
    ("S + p", "cannot add or subtract S [F x M] and p [1 x F]"),
    ("p*T(v)", "cannot multiply p [1 x F] by T(v) [M x 1]: the inner sizes F and M differ"),
    ("S / (T(p)*p)", "only 1x1 matrices"),
    ("scalar(S)", "needs a [1 x 1] matrix, got S [F x M]"),
    ("(p*Z)^2", "powers of matrices"),
    ("p*Z + 1", "use scalar(...)"),
])
def test_matrix_errors_are_readable(text, fragment):
    with pytest.raises(SymbolicShapeError) as info:       # a SymbolicParseError too
        parse_expression(text, MATRICES)
    assert isinstance(info.value, SymbolicParseError)
    assert fragment in str(info.value)


def test_big_o_marker():
    n = sympy.Symbol("N", positive=True)
    vocab = Vocabulary({"N": n, "O": FunctionSpec(BigO, ("scalar",), "O(expression)")})
    value = parse_expression("O(N^2)", vocab)
    assert isinstance(value, BigO) and value.args[0] == n**2
    assert format_expression(value) == "O(N^2)"
    # sympy's Order would collapse O(N^2 + N) to O(N) (as N -> 0); ours stays inert
    assert parse_expression("O(N^2 + N)", vocab).args[0] == n**2 + n


def test_names_used():
    assert names_used("K_gauss(q, k) * exp(sigma)") == {"K_gauss", "q", "k", "exp", "sigma"}
    assert names_used("x +") == set()


# ----------------------------------------------------------------- refused input

@pytest.mark.parametrize("text, fragment", [
    ("z + 1", "unknown name 'z'; allowed names: D, pi, sigma, x, y; functions: cos(x), exp(x)"),
    ("X", "did you mean 'x'"),
    ("sigm", "did you mean 'sigma'"),
    ("e^x", "write exp(x)"),
    ("σ^2", "line 1, column 1: unknown name 'σ' (write 'sigma')"),
    ("x + σ", "line 1, column 5"),
    ("x = y", "line 1, column 3: unexpected '='"),
    ("x == y", "comparisons"),
    ("2x", "write multiplication explicitly"),
    ("2(x + 1)", "write multiplication explicitly"),
    ("x(y)", "not a function"),
    ("exp", "is a function"),
    ("exp(x, y)", "exp takes 1 argument"),
    ("exp(x=1)", "keyword arguments"),
    ("exp(*x)", "unpacking"),
    ("'x'", "text in quotes"),
    ("f'{x}'", "text in quotes"),
    ("x.real", "attribute access"),
    ("x[0]", "indexing"),
    ("lambda: 1", "'lambda'"),
    ("[x for x in y]", "comprehensions"),
    ("(x, y)", "tuples"),
    ("x if y else 1", "'if ... else'"),
    ("x and y", "'and'/'or'"),
    ("x % y", "'%' is not allowed"),
    ("x // y", "'//' is not allowed"),
    ("~x", "'~' is not allowed"),
    ("True", "'True' is not allowed"),
    ("2j", "complex numbers"),
    ("x / 0", "division by zero"),
    ("(x + y", "line 1"),
    ("x +", "unexpected end"),
    ("", "empty"),
    ("   ", "empty"),
    ("1" + "0" * 13, "too large"),
    ("1e300", "too large"),
])
def test_refused_with_readable_message(text, fragment):
    with pytest.raises(SymbolicParseError) as info:
        parse_expression(text, SCALARS)
    assert fragment in str(info.value), str(info.value)


def test_line_and_column_refer_to_the_original_text():
    with pytest.raises(SymbolicParseError) as info:
        parse_expression("x^2 + y^2 = 1", SCALARS)
    # '^' became '**' internally; the column must still point at the '=' the student wrote
    assert "line 1, column 11: unexpected '='" in str(info.value)
    with pytest.raises(SymbolicParseError) as info:
        parse_expression("x +\ny.imag", SCALARS)
    assert "line 2, column 1" in str(info.value)


@pytest.mark.parametrize("text", [
    "9**9**9", "9^9^9", "10**10**10", "2**(10**12)", "(2**64)**64**64", "x**100000",
    "((((2**60)**60)**60)**60)", "x^(10^20)",
])
def test_huge_powers_refused_quickly(text):
    start = time.perf_counter()
    with pytest.raises(SymbolicParseError, match="too large"):
        parse_expression(text, SCALARS)
    assert time.perf_counter() - start < 1.0


def test_limits_on_length_and_nesting():
    with pytest.raises(SymbolicParseError, match="too long"):
        parse_expression("x+" * 1000 + "x", SCALARS)
    for text in ["(" * 250 + "x" + ")" * 250, "-" * 500 + "x", "exp(" * 80 + "x" + ")" * 80,
                 "x" + "**x" * 300]:
        with pytest.raises(SymbolicParseError, match="nested"):
            parse_expression(text, SCALARS)
    # redundant parentheses add no depth; ordinary nesting is fine
    assert parse_expression("(" * 150 + "x" + ")" * 150, SCALARS) == x
    parse_expression("exp(" * 20 + "x" + ")" * 20, SCALARS)


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "__import__(\"os\").system(\"touch {marker}\")",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: __import__('os').system('touch {marker}')",
    "open('{marker}', 'w')",
    "exec(\"open('{marker}', 'w')\")",
    "eval(\"open('{marker}', 'w')\")",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "getattr(__builtins__, 'open')('{marker}', 'w')",
    "x.__class__",
    "exp.__globals__",
    "exp(x).func.__init__.__globals__['__builtins__']['open']('{marker}', 'w')",
    "Symbol('x')",
    "sympify('x')",
    "__import__('os').system('touch {marker}') if x else x",
    "(lambda f: f)(open)('{marker}', 'w')",
    "{{**x}}",
    "x := open('{marker}')",
    "breakpoint()",
    "\x00x",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_strings_never_execute(template, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    text = template.format(marker=marker)
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("eval/exec must never be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    for vocab in (SCALARS, VECTORS, MATRICES):
        with pytest.raises(SymbolicParseError):
            parse_expression(text, vocab)
    assert calls == []
    assert not marker.exists()
    assert not Path("/tmp/pwned").exists()


def test_non_string_input():
    with pytest.raises(SymbolicParseError, match="must be text"):
        parse_expression(42, SCALARS)
