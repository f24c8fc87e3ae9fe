"""Symbolic answers: parse student expressions without eval, compare them with sympy, grade.

* :mod:`.parse`: :func:`parse_expression` (an ``ast`` whitelist walker; never executes text)
* :mod:`.equivalence`: :func:`expressions_equivalent`, :func:`big_o_equivalent`,
  :func:`matrix_expressions_equivalent`
* :mod:`.bigo`: big-O classes (:func:`compare_big_o`), with capped work
* :mod:`.answers`: the ``answers.toml`` format, :class:`Question`, :func:`grade_answers`
"""
from .answers import (
    KINDS,
    VOCABULARIES,
    AnswersFileError,
    AnswerVerdict,
    Question,
    grade_answer,
    grade_answers,
    load_answers,
    register_vocabulary,
    render_answers_template,
)
from .equivalence import (
    BigOComparison,
    BigOError,
    SymbolicTimeout,
    big_o_equivalent,
    big_o_terms,
    compare_big_o,
    expressions_equivalent,
    format_monomial,
    matrix_expressions_equivalent,
    time_limit,
)
from .parse import (
    MAX_LENGTH,
    BigO,
    FunctionSpec,
    SymbolicParseError,
    SymbolicShapeError,
    Vector,
    VectorSpace,
    Vocabulary,
    format_expression,
    matrix_vocabulary_functions,
    names_used,
    parse_expression,
    shape_text,
)

__all__ = [
    "KINDS", "VOCABULARIES", "AnswersFileError", "AnswerVerdict", "Question", "grade_answer",
    "grade_answers", "load_answers", "register_vocabulary", "render_answers_template",
    "BigOComparison", "BigOError", "SymbolicTimeout", "big_o_equivalent", "big_o_terms",
    "compare_big_o", "expressions_equivalent", "format_monomial", "matrix_expressions_equivalent",
    "time_limit", "MAX_LENGTH", "BigO", "FunctionSpec", "SymbolicParseError", "SymbolicShapeError",
    "Vector", "VectorSpace", "Vocabulary", "format_expression", "matrix_vocabulary_functions",
    "names_used", "parse_expression", "shape_text",
]
