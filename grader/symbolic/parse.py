"""Parse a student's symbolic answer into sympy without ever executing it.

``sympy.sympify`` and ``sympy.parsing.sympy_parser.parse_expr`` call Python's ``eval``
and must never see student text. Here the text goes through ``ast.parse(mode="eval")``,
which only builds a syntax tree, and a whitelist walker turns that tree into sympy
objects itself. Anything not on the whitelist is refused with a
:class:`SymbolicParseError` whose message a student can act on.

Accepted syntax
---------------
* numbers: integers (``|n| <= 10**12``) and decimals (read as exact rationals: ``0.5`` -> 1/2)
* names from the question's vocabulary, plus the constant ``pi``
* ``+ - * / **``, ``^`` (read as power, with the precedence of ``**``: ``x^2*y`` is ``(x**2)*y``),
  ``@`` (same as ``*``), unary ``+``/``-``, parentheses
* calls of whitelisted functions: ``exp log sqrt sin cos`` and the vocabulary's own
  (``norm(q)``, ``dot(q, k)``, ``K_gauss(q, k)``, ``T(A)``, ``scalar(A)``, ``O(...)``, ...)

Refused: attributes, indexing, lambdas, comprehensions, strings, keyword arguments,
``*args``, comparisons, assignments, input longer than 2000 characters, nesting deeper
than 60 levels, integer literals above 10**12, exponents above 64 in size, and number
powers whose result would exceed 4096 bits (``9**9**9`` is refused at once).

Values
------
A vocabulary maps names to

* sympy objects: scalar ``Symbol`` s, constants, ``MatrixSymbol`` s (matrix answers);
* :class:`Vector` s from a :class:`VectorSpace`: abstract vectors, known only through
  their inner products. They may only appear as arguments of functions such as
  ``norm``/``dot``/``K_gauss`` (and, if the space allows it, in linear combinations);
* :class:`FunctionSpec` s: callables with a declared argument kind per argument.

Matrix conventions: ``*`` is the matrix product (shapes are checked, with symbolic
dimensions), ``T(A)`` the transpose, and a 1x1 matrix can be turned into a scalar with
``scalar(A)``. Dividing by a 1x1 matrix converts it to a scalar automatically, so
``(x_i*A) / (x_i*b)`` works. Internally ``scalar(A)`` is ``Trace(A)``, which is
exactly the single entry of a 1x1 matrix. Parts that do not fit together (non-conforming
shapes, a matrix or vector where a scalar is needed) raise :class:`SymbolicShapeError`, a
:class:`SymbolicParseError` whose message names the shapes, e.g. ``cannot multiply
A [F x M] by x_i [1 x F]``.
"""
from __future__ import annotations

import ast
import difflib
import math
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy
from sympy.matrices.expressions.matexpr import MatrixExpr
from sympy.printing.str import StrPrinter

from .numeric import NumericError, NumericOverflow, evaluate

__all__ = [
    "SymbolicParseError",
    "SymbolicShapeError",
    "FunctionSpec",
    "Vector",
    "VectorSpace",
    "Vocabulary",
    "BigO",
    "parse_expression",
    "format_expression",
    "matrix_vocabulary_functions",
    "names_used",
    "shape_text",
    "MAX_LENGTH",
]

MAX_LENGTH = 2000          # characters of student text
MAX_DEPTH = 60             # nesting of the syntax tree
MAX_NODES = 1500           # nodes of the syntax tree
MAX_INT_LITERAL = 10**12   # largest integer literal
MAX_EXPONENT = 64          # largest |exponent| given as a number
MAX_NUMBER_BITS = 4096     # largest result of number ** number

BUILTIN_FUNCTION_NAMES = ("exp", "log", "sqrt", "sin", "cos")


class SymbolicParseError(ValueError):
    """The text is not an acceptable answer; the message is meant for the student."""


class SymbolicShapeError(SymbolicParseError):
    """The text reads fine, but its parts do not fit together: shapes that do not conform
    (``S_i*phi_Q_i``), a vector or matrix where a scalar is needed, and the like. The
    message names the shapes involved; graders report it as a wrong shape, not as text
    they could not read."""


# --------------------------------------------------------------------------- values


class BigO(sympy.Function):
    """``O(x)`` as written by a student: an inert marker (sympy's own ``Order`` means x -> 0)."""

    nargs = 1

    def _sympystr(self, printer):
        return "O(%s)" % printer._print(self.args[0])


@dataclass(frozen=True)
class FunctionSpec:
    """A function students may call.

    ``arg_kinds`` lists one kind per argument, each "scalar", "vector", "matrix" or "any";
    ``impl`` receives the converted arguments and returns a sympy object (or a Vector).
    ``signature`` is what the messages show, e.g. ``"norm(v)"``.
    """

    impl: Callable[..., Any]
    arg_kinds: tuple[str, ...]
    signature: str
    help: str = ""


class Vector:
    """An abstract vector: a linear combination of the named vectors of a VectorSpace."""

    __slots__ = ("terms", "space")

    def __init__(self, terms: Mapping[str, sympy.Expr], space: "VectorSpace"):
        self.terms = {k: v for k, v in terms.items() if v != 0}
        self.space = space

    def scaled(self, factor: sympy.Expr) -> "Vector":
        return Vector({k: v * factor for k, v in self.terms.items()}, self.space)

    def plus(self, other: "Vector", sign: int = 1) -> "Vector":
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + sign * v
        return Vector(terms, self.space)

    def __repr__(self) -> str:
        if not self.terms:
            return "0"
        return " + ".join(f"{c}*{n}" if c != 1 else n for n, c in self.terms.items())


class VectorSpace:
    """Named abstract vectors, known only through their Gram matrix.

    ``|q|^2`` is a positive symbol, ``q.k`` a real one; ``norm``, ``dot`` and the Gaussian
    kernel are defined from them. With ``allow_arithmetic=False`` vectors may only be
    passed to functions (so that e.g. ``norm(q - k)`` cannot stand in for ``K_gauss``).
    """

    def __init__(self, names: Sequence[str], allow_arithmetic: bool = True):
        self.names = list(names)
        self.allow_arithmetic = allow_arithmetic
        self.vectors = {n: Vector({n: sympy.Integer(1)}, self) for n in self.names}
        self._gram: dict[tuple[str, str], sympy.Symbol] = {}
        for i, a in enumerate(self.names):
            for b in self.names[i:]:
                if a == b:
                    self._gram[(a, b)] = sympy.Symbol(f"|{a}|^2", positive=True)
                else:
                    self._gram[(a, b)] = sympy.Symbol(f"{a}.{b}", real=True)

    def gram_symbol(self, a: str, b: str) -> sympy.Symbol:
        ia, ib = self.names.index(a), self.names.index(b)
        return self._gram[(a, b) if ia <= ib else (b, a)]

    def gram_symbols(self) -> list[sympy.Symbol]:
        return list(self._gram.values())

    def gram_items(self) -> list[tuple[tuple[str, str], sympy.Symbol]]:
        return list(self._gram.items())

    def inner(self, u: Vector, v: Vector) -> sympy.Expr:
        total = sympy.Integer(0)
        for a, ca in u.terms.items():
            for b, cb in v.terms.items():
                total += ca * cb * self.gram_symbol(a, b)
        return total

    # ready-made functions -------------------------------------------------
    def dot_function(self) -> FunctionSpec:
        return FunctionSpec(self.inner, ("vector", "vector"), "dot(u, v)", "inner product")

    def norm_function(self) -> FunctionSpec:
        return FunctionSpec(lambda u: sympy.sqrt(self.inner(u, u)), ("vector",), "norm(v)",
                            "Euclidean length |v|")

    def gaussian_kernel_function(self, sigma: sympy.Expr) -> FunctionSpec:
        def k_gauss(u: Vector, v: Vector) -> sympy.Expr:
            d = u.plus(v, -1)
            return sympy.exp(-self.inner(d, d) / (2 * sigma**2))

        return FunctionSpec(k_gauss, ("vector", "vector"), "K_gauss(u, v)",
                            "exp(-|u - v|^2 / (2 sigma^2))")


def _transpose(a):
    if isinstance(a, MatrixExpr):
        return a.T
    return a  # the transpose of a scalar is itself


def _scalar(a):
    if isinstance(a, MatrixExpr):
        if a.shape != (1, 1):
            raise SymbolicShapeError(
                f"scalar(...) needs a [1 x 1] matrix, got {_operand(a)}")
        return sympy.Trace(a)
    return a


def matrix_vocabulary_functions() -> dict[str, FunctionSpec]:
    """``T(A)`` (transpose) and ``scalar(A)`` (the entry of a 1x1 matrix)."""
    return {
        "T": FunctionSpec(_transpose, ("any",), "T(A)", "transpose"),
        "scalar": FunctionSpec(_scalar, ("any",), "scalar(A)", "the entry of a 1x1 matrix"),
    }


def _builtin_functions() -> dict[str, FunctionSpec]:
    return {
        "exp": FunctionSpec(sympy.exp, ("scalar",), "exp(x)"),
        "log": FunctionSpec(sympy.log, ("scalar",), "log(x)", "natural logarithm"),
        "sqrt": FunctionSpec(sympy.sqrt, ("scalar",), "sqrt(x)"),
        "sin": FunctionSpec(sympy.sin, ("scalar",), "sin(x)"),
        "cos": FunctionSpec(sympy.cos, ("scalar",), "cos(x)"),
    }


class Vocabulary:
    """The names a question allows, and how they are given meaning when checking.

    ``names`` maps each allowed name to a sympy object, a Vector or a FunctionSpec (a
    plain callable is accepted as a function of scalars). ``substitutions`` are applied to
    both sides before comparing (e.g. ``sigma -> D**(1/4)`` for sigma^2 = sqrt(D)).
    ``matrix_dims`` gives concrete sizes for symbolic matrix dimensions in numeric checks.
    ``variables`` orders the symbols in big-O displays.
    """

    def __init__(
        self,
        names: Mapping[str, Any],
        *,
        substitutions: Mapping[sympy.Symbol, sympy.Expr] | None = None,
        matrix_dims: Mapping[sympy.Symbol, int] | None = None,
        include_builtins: bool = True,
        variables: Sequence[sympy.Symbol] | None = None,
    ):
        entries: dict[str, Any] = {}
        if include_builtins:
            entries.update(_builtin_functions())
            entries["pi"] = sympy.pi
        for name, value in names.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"vocabulary name {name!r} is not an identifier")
            if isinstance(value, (FunctionSpec, Vector, sympy.Basic)):
                entries[name] = value
            elif callable(value):
                nargs = getattr(value, "nargs", None)
                n = 1
                if isinstance(nargs, sympy.FiniteSet) and len(nargs) == 1:
                    n = int(next(iter(nargs)))
                entries[name] = FunctionSpec(value, ("scalar",) * n,
                                             f"{name}({', '.join('xyzw'[:n])})")
            else:
                raise TypeError(f"vocabulary value for {name!r} has unsupported type {type(value)}")
        self.entries = entries
        self.substitutions = dict(substitutions or {})
        self.matrix_dims = dict(matrix_dims or {})
        self.variables = list(variables) if variables is not None else None

    @classmethod
    def coerce(cls, vocabulary: "Vocabulary | Mapping[str, Any]") -> "Vocabulary":
        if isinstance(vocabulary, Vocabulary):
            return vocabulary
        return cls(vocabulary)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> Any:
        return self.entries[name]

    def scalar_symbols(self) -> list[sympy.Symbol]:
        return [v for v in self.entries.values() if isinstance(v, sympy.Symbol)]

    def describe(self) -> str:
        """The allowed names, for messages: ``names: D, q; functions: exp(x), norm(v)``."""
        plain, funcs = [], []
        for name, value in self.entries.items():
            if isinstance(value, FunctionSpec):
                args = value.signature.split("(", 1)[1] if "(" in value.signature else "...)"
                funcs.append(f"{name}({args}")
            else:
                plain.append(name)
        parts = []
        if plain:
            parts.append("names: " + ", ".join(sorted(plain, key=str.lower)))
        if funcs:
            parts.append("functions: " + ", ".join(sorted(funcs, key=str.lower)))
        return "; ".join(parts)


# ------------------------------------------------------------------------ printing


class _AnswerPrinter(StrPrinter):
    """sympy's str printer, with the answer syntax for transposes and 1x1 conversions."""

    def _print_Transpose(self, expr):
        return "T(%s)" % self._print(expr.arg)

    def _print_Trace(self, expr):
        return "scalar(%s)" % self._print(expr.arg)


def format_expression(expr: Any) -> str:
    """Readable text for a parsed answer (``^`` for powers, ``T(.)`` for transposes)."""
    if isinstance(expr, Vector):
        return repr(expr)
    try:
        text = _AnswerPrinter({"order": None}).doprint(expr)
    except Exception:  # noqa: BLE001 - printing must never fail a grading run
        text = str(expr)
    return text.replace("**", "^")


# -------------------------------------------------------------------------- parser


def shape_text(shape) -> str:
    """``(1, F)`` -> ``[1 x F]``, the notation of the prompts."""
    return "[" + " x ".join(str(s) for s in shape) + "]"


MAX_OPERAND_TEXT = 40


def _operand(value: Any) -> str:
    """A part of the answer for a shape message: ``x_i*A [1 x M]``, or its kind alone
    when its text is long."""
    if _kind(value) == "matrix":
        text = format_expression(value)
        if len(text) <= MAX_OPERAND_TEXT:
            return f"{text} {shape_text(value.shape)}"
    return _describe_value(value)


def _kind(value: Any) -> str:
    if isinstance(value, Vector):
        return "vector"
    if isinstance(value, MatrixExpr):
        return "matrix"
    return "scalar"


def _describe_value(value: Any) -> str:
    kind = _kind(value)
    if kind == "matrix":
        return f"a {shape_text(value.shape)} matrix"
    if kind == "vector":
        return f"a vector ({value!r})"
    return "a scalar"


_OPERATOR_TEXT = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
    ast.MatMult: "@", ast.Mod: "%", ast.FloorDiv: "//", ast.BitXor: "^",
    ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<", ast.RShift: ">>",
    ast.Invert: "~", ast.Not: "not", ast.UAdd: "+", ast.USub: "-",
}

_NODE_TEXT = {
    "Attribute": "attribute access with '.'",
    "Subscript": "indexing with [...]",
    "Lambda": "'lambda'",
    "ListComp": "comprehensions", "SetComp": "comprehensions", "DictComp": "comprehensions",
    "GeneratorExp": "comprehensions",
    "List": "lists [...]", "Tuple": "tuples (a, b)", "Set": "sets {...}", "Dict": "dicts {...}",
    "Compare": "comparisons (==, <, ...); write only the expression, without '=' or '=='",
    "BoolOp": "'and'/'or'",
    "IfExp": "'if ... else'",
    "NamedExpr": "':='",
    "JoinedStr": "text in quotes", "FormattedValue": "text in quotes",
    "Starred": "'*' unpacking",
    "Await": "'await'", "Yield": "'yield'", "YieldFrom": "'yield'",
    "Slice": "slices",
}


class _SourceMap:
    """Maps offsets in the text given to ``ast.parse`` back to the student's own text."""

    def __init__(self, original: str):
        self.original = original
        start = len(original) - len(original.lstrip())
        end = len(original.rstrip())
        chars, origin = [], []
        for i in range(start, end):
            ch = original[i]
            if ch == "^":
                chars.append("**")
                origin.extend([i, i])
            elif ch in "\r\n":
                # one logical line: TOML multi-line strings may break a long answer
                chars.append(" ")
                origin.append(i)
            else:
                chars.append(ch)
                origin.append(i)
        self.text = "".join(chars)
        self.origin = origin

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) in the original text of a 0-based parse offset."""
        if not self.origin:
            return 1, 1
        if offset >= len(self.origin):
            idx = self.origin[-1] + 1
        else:
            idx = self.origin[max(offset, 0)]
        before = self.original[:idx]
        line = before.count("\n") + 1
        col = idx - (before.rfind("\n") + 1) + 1
        return line, col

    def char_at(self, offset: int) -> str | None:
        if 0 <= offset < len(self.origin):
            return self.original[self.origin[offset]]
        return None


def _where(src: _SourceMap, node: ast.AST) -> str:
    offset = getattr(node, "col_offset", 0) or 0          # in UTF-8 bytes
    if not src.text.isascii():
        offset = len(src.text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
    line, col = src.position(offset)
    return f"line {line}, column {col}"


def _syntax_error_message(src: _SourceMap, err: SyntaxError) -> str:
    # ast offsets are 1-based on our single logical line; 0 or None means the end of input
    offset = err.offset - 1 if err.offset else len(src.origin)
    line, col = src.position(offset)
    ch = src.char_at(offset)
    what = (err.msg or "invalid syntax").rstrip(".")
    low = what.lower()
    if ch is None:
        msg = f"line {line}: unexpected end of the expression ({what})"
    elif "never closed" in low or "unmatched" in low or "does not match" in low:
        msg = f"line {line}, column {col}: {what}"
    else:
        msg = f"line {line}, column {col}: unexpected '{ch}' ({what})"
    if "decimal literal" in low or "imaginary literal" in low or (
        ch is not None and ch.isalpha() and col > 1
        and src.original[src.origin[offset] - 1].isdigit()
    ):
        msg += "; write multiplication explicitly with '*', e.g. 2*D instead of 2D"
    elif ch == "=" or "maybe you meant '=='" in low:
        msg += "; write only the expression (the right-hand side), without '='"
    elif low == "invalid syntax" and ch is not None and (ch.isalnum() or ch in "_("):
        msg += "; is an operator such as '*' missing before it?"
    elif ch is None and low == "invalid syntax":
        msg += "; something is missing at the end"
    return msg


def _check_number_size(value, where: str) -> None:
    """Refuse pure numbers too large to handle safely (e.g. exp(10^12), exp(exp(exp(9))))."""
    if isinstance(value, sympy.Rational) or not getattr(value, "is_number", False):
        return
    try:
        evaluate(value)
    except NumericOverflow:
        raise SymbolicParseError(f"{where}: the number is too large") from None
    except NumericError:
        pass  # undefined values (log(0), ...) are the comparison's business


def _check_shape_product(a, b, where: str):
    if a.shape[1] != b.shape[0]:
        raise SymbolicShapeError(
            f"{where}: cannot multiply {_operand(a)} by {_operand(b)}: the inner sizes "
            f"{a.shape[1]} and {b.shape[0]} differ (a product needs [p x n] times [n x r]; "
            "is a T(...) missing, or are the factors in the wrong order?)")


class _Builder:
    def __init__(self, vocab: Vocabulary, src: _SourceMap):
        self.vocab = vocab
        self.src = src

    def error(self, node: ast.AST, text: str, cls: type = SymbolicParseError) -> SymbolicParseError:
        return cls(f"{_where(self.src, node)}: {text}")

    # dispatch ----------------------------------------------------------------
    def build(self, node: ast.AST) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            what = _NODE_TEXT.get(type(node).__name__, type(node).__name__)
            raise self.error(node, f"{what} is not allowed")
        return method(node)

    def _Expression(self, node: ast.Expression):
        return self.build(node.body)

    def _Constant(self, node: ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.error(node, f"'{value}' is not allowed")
        if isinstance(value, int):
            if abs(value) > MAX_INT_LITERAL:
                raise self.error(node, f"the number is too large (at most {MAX_INT_LITERAL:.0e})")
            return sympy.Integer(value)
        if isinstance(value, float):
            if not math.isfinite(value) or abs(value) > MAX_INT_LITERAL:
                raise self.error(node, "the number is too large")
            return sympy.Rational(repr(value))  # 0.1 -> 1/10 exactly
        if isinstance(value, complex):
            raise self.error(node, "complex numbers (like 2j) are not allowed")
        raise self.error(node, "text in quotes is not allowed; write the expression itself")

    def _Name(self, node: ast.Name):
        name = node.id
        if name not in self.vocab:
            raise self.error(node, self.unknown_name_text(name))
        value = self.vocab[name]
        if isinstance(value, FunctionSpec):
            raise self.error(node, f"'{name}' is a function; call it as {value.signature}")
        return value

    def unknown_name_text(self, name: str) -> str:
        allowed = list(self.vocab.entries)
        text = f"unknown name '{name}'"
        lower = {a.lower(): a for a in allowed}
        close = difflib.get_close_matches(name, allowed, n=2, cutoff=0.7)
        if name.lower() in lower:
            text += f" (did you mean '{lower[name.lower()]}'? names are case-sensitive)"
        elif close:
            text += " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
        elif name == "e":
            text += " (write exp(x) for e^x)"
        elif len(name) == 1 and not name.isascii():
            spelled = unicodedata.name(name, "").rsplit(" ", 1)[-1].lower()
            if spelled in self.vocab.entries:
                text += f" (write '{spelled}')"
        return text + "; allowed " + self.vocab.describe()

    def _UnaryOp(self, node: ast.UnaryOp):
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            raise self.error(node, f"the operator '{_OPERATOR_TEXT.get(type(node.op), '?')}' is not allowed")
        value = self.build(node.operand)
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(value, Vector):
            self.require_vector_arithmetic(node, value)
            return value.scaled(sympy.Integer(-1))
        return -value

    def require_vector_arithmetic(self, node, vec: Vector):
        if not vec.space.allow_arithmetic:
            names = ", ".join(vec.space.names)
            raise self.error(
                node, f"vectors ({names}) can only be passed to the functions in this question, "
                      f"not combined with + - * /; allowed {self.vocab.describe()}")

    def _BinOp(self, node: ast.BinOp):
        op = type(node.op)
        if op not in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult):
            sym = _OPERATOR_TEXT.get(op, op.__name__)
            raise self.error(node, f"the operator '{sym}' is not allowed (allowed: + - * / ** ^)")
        left = self.build(node.left)
        right = self.build(node.right)
        where = _where(self.src, node)
        if isinstance(left, Vector) or isinstance(right, Vector):
            return self.vector_op(node, op, left, right)
        lk, rk = _kind(left), _kind(right)
        try:
            if op in (ast.Add, ast.Sub):
                if lk != rk:
                    raise SymbolicShapeError(
                        f"{where}: cannot add or subtract {_operand(left)} and "
                        f"{_operand(right)} (use scalar(...) to turn a 1x1 matrix into a number)")
                if lk == "matrix" and left.shape != right.shape:
                    raise SymbolicShapeError(
                        f"{where}: cannot add or subtract {_operand(left)} and {_operand(right)}: "
                        "the shapes differ")
                return left + right if op is ast.Add else left - right
            if op in (ast.Mult, ast.MatMult):
                if lk == rk == "matrix":
                    _check_shape_product(left, right, where)
                return left * right
            if op is ast.Div:
                if rk == "matrix":
                    if right.shape != (1, 1):
                        raise SymbolicShapeError(
                            f"{where}: cannot divide by {_operand(right)}; "
                            "only 1x1 matrices can be divided by")
                    right = sympy.Trace(right)
                if right == 0:
                    raise SymbolicParseError(f"{where}: division by zero")
                if lk == "matrix":
                    return left * (sympy.Integer(1) / right)
                return left / right
            # power
            if lk == "matrix" or rk == "matrix":
                matrix = left if lk == "matrix" else right
                raise SymbolicShapeError(f"{where}: powers of matrices are not allowed (here of "
                                         f"{_operand(matrix)}; for a 1x1 matrix A write scalar(A)^2)")
            return self.power(node, left, right)
        except SymbolicParseError:
            raise
        except (TypeError, ValueError, ArithmeticError, AttributeError, NotImplementedError) as exc:
            cls = SymbolicShapeError if "matrix" in (lk, rk) else SymbolicParseError
            raise cls(f"{where}: cannot combine {_operand(left)} and {_operand(right)} here "
                      f"({exc})") from None

    def vector_op(self, node, op, left, right):
        vec = left if isinstance(left, Vector) else right
        self.require_vector_arithmetic(node, vec)
        where = _where(self.src, node)
        lk, rk = _kind(left), _kind(right)
        if op in (ast.Add, ast.Sub):
            if lk == rk == "vector":
                return left.plus(right, 1 if op is ast.Add else -1)
            raise SymbolicShapeError(f"{where}: cannot add a vector and {_describe_value(right if lk == 'vector' else left)}")
        if op in (ast.Mult, ast.MatMult):
            if lk == rk == "vector":
                raise SymbolicShapeError(f"{where}: cannot multiply two vectors; write dot(u, v) "
                                         "for the inner product")
            other = right if lk == "vector" else left
            if _kind(other) != "scalar":
                raise SymbolicShapeError(f"{where}: cannot multiply a vector by {_describe_value(other)}")
            return vec.scaled(other)
        if op is ast.Div and lk == "vector" and rk == "scalar":
            if right == 0:
                raise SymbolicParseError(f"{where}: division by zero")
            return left.scaled(sympy.Integer(1) / right)
        raise SymbolicShapeError(f"{where}: this operation is not defined for vectors (only "
                                 "sums of vectors and products with scalars)")

    def power(self, node, base, exponent):
        where = _where(self.src, node)
        if exponent.is_number:
            if not exponent.is_real:
                raise SymbolicParseError(f"{where}: the exponent must be a real number")
            try:
                size = abs(float(exponent))
            except (TypeError, ValueError, OverflowError):
                raise SymbolicParseError(f"{where}: the exponent is too large") from None
            if size > MAX_EXPONENT:
                raise SymbolicParseError(
                    f"{where}: the exponent {format_expression(exponent)} is too large (at most {MAX_EXPONENT})")
            if base.is_number and base not in (0, 1, -1):
                # exact size: sympy computes number ** number exactly (in C, uninterruptibly)
                bits = max((max(int(r.p).bit_length(), int(r.q).bit_length())
                            for r in base.atoms(sympy.Rational)), default=1)
                if bits * size > MAX_NUMBER_BITS:
                    raise SymbolicParseError(f"{where}: the number is too large")
        result = sympy.Pow(base, exponent)
        _check_number_size(result, where)
        return result

    def _Call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, (ast.Constant, ast.BinOp, ast.Call, ast.UnaryOp)):
                raise self.error(node, "write multiplication explicitly with '*', e.g. 2*(D + M) "
                                       "instead of 2(D + M)")
            raise self.error(node, "only the listed functions can be called, by name")
        name = node.func.id
        if name not in self.vocab:
            raise self.error(node, self.unknown_name_text(name))
        spec = self.vocab[name]
        if not isinstance(spec, FunctionSpec):
            raise self.error(node, f"'{name}' is not a function; write multiplication explicitly "
                                   f"with '*', e.g. {name}*(...)")
        if node.keywords:
            raise self.error(node, "keyword arguments (name=value) are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.error(node, "'*' unpacking is not allowed")
        if len(node.args) != len(spec.arg_kinds):
            n = len(spec.arg_kinds)
            raise self.error(node, f"{name} takes {n} argument{'s' if n != 1 else ''} "
                                   f"({spec.signature}), got {len(node.args)}")
        args = [self.build(a) for a in node.args]
        for i, (arg, kind) in enumerate(zip(args, spec.arg_kinds)):
            if kind != "any" and _kind(arg) != kind:
                hint = ""
                if kind == "vector":
                    hint = " (one of: " + ", ".join(
                        n for n, v in self.vocab.entries.items() if isinstance(v, Vector)) + ")"
                got = _operand(arg)
                if kind == "scalar" and _kind(arg) == "matrix" and arg.shape == (1, 1):
                    got += " (turn a 1x1 matrix into a number with scalar(...))"
                raise self.error(node, f"argument {i + 1} of {spec.signature} must be a {kind}{hint}, "
                                       f"got {got}", SymbolicShapeError)
        try:
            result = spec.impl(*args)
            if isinstance(result, sympy.Expr) and not isinstance(result, MatrixExpr):
                _check_number_size(result, _where(self.src, node))
        except SymbolicParseError as exc:
            if str(exc).startswith("line "):
                raise
            raise self.error(node, str(exc), type(exc)) from None
        except (TypeError, ValueError, ArithmeticError, AttributeError, NotImplementedError) as exc:
            raise self.error(node, f"cannot evaluate {spec.signature} here ({exc})") from None
        return result


def _tree_depth(tree: ast.AST) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))
    return deepest


def _syntax_tree(text: str) -> ast.AST:
    """``ast.parse`` without its warnings: text like ``"\\*"`` makes the compiler warn about
    an invalid escape (a DeprecationWarning, an error under ``-W error``) before the walker
    refuses the quotes anyway."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, mode="eval")


def parse_expression(text: str, vocabulary: Vocabulary | Mapping[str, Any]) -> Any:
    """Parse student text into a sympy expression (a ``MatrixExpr`` for matrix answers).

    Never executes the text. Raises :class:`SymbolicParseError` with a student-readable
    message for anything outside the whitelist described in the module docstring.
    """
    vocab = Vocabulary.coerce(vocabulary)
    if not isinstance(text, str):
        raise SymbolicParseError(f"the answer must be text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SymbolicParseError(f"the answer is too long ({len(text)} characters; at most {MAX_LENGTH})")
    if not text.strip():
        raise SymbolicParseError("the answer is empty")
    if "\x00" in text:
        raise SymbolicParseError("the answer contains a NUL character")
    src = _SourceMap(text)
    try:
        tree = _syntax_tree(src.text)
    except SyntaxError as err:
        raise SymbolicParseError(_syntax_error_message(src, err)) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise SymbolicParseError("the expression is nested too deeply or is too complex") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise SymbolicParseError(f"the expression is too complex ({nodes} parts; at most {MAX_NODES})")
    if _tree_depth(tree) > MAX_DEPTH:
        raise SymbolicParseError(f"the expression is nested too deeply (at most {MAX_DEPTH} levels)")
    builder = _Builder(vocab, src)
    try:
        result = builder.build(tree)
    except SymbolicParseError:
        raise
    except RecursionError:
        raise SymbolicParseError("the expression is nested too deeply") from None
    if isinstance(result, Vector):
        raise SymbolicShapeError(
            f"your answer is a vector ({result!r}), but a scalar is expected: use vectors only "
            "through the functions of the question, such as norm(...)")
    if not isinstance(result, sympy.Basic):  # pragma: no cover - defensive
        raise SymbolicParseError("the answer could not be read as an expression")
    return result


def names_used(text: str) -> set[str]:
    """The names (variables and functions) that appear in ``text``; empty if it does not parse."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return set()
    try:
        tree = _syntax_tree(_SourceMap(text).text)
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
