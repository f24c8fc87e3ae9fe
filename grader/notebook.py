"""Turn a Jupyter notebook into a module: imports, definitions and constants are kept.

Top-level statements (training loops, plots, data downloads, asserts) are dropped so that
importing the submission is fast and has no side effects. Constants (`D_MODEL = 64`,
`scale = 1 / math.sqrt(64)`) stay, since definitions may use them. Imports of notebook-only
modules (Colab, IPython, plotting) are dropped, with a note, so they cannot fail the import.
Parsing uses `ast`, which never executes anything.
"""
from __future__ import annotations

import ast
import json

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
NOTEBOOK_ONLY = ("google.colab", "IPython", "ipywidgets", "matplotlib", "seaborn", "plotly", "tqdm.notebook")
# calls a constant may make: pure functions of numbers
CONSTANT_CALLS = {"math", "int", "float", "round", "min", "max", "abs", "pow"}


def _imported_modules(node) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []


def _notebook_only(node) -> bool:
    modules = _imported_modules(node)
    return bool(modules) and all(any(m == p or m.startswith(p + ".") for p in NOTEBOOK_ONLY) for m in modules)


def _is_constant(node) -> bool:
    """`NAME = <numbers, strings, tuples, arithmetic, math.* calls>`: safe and cheap to keep."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    for sub in ast.walk(value):
        if isinstance(sub, ast.Call):
            root = sub.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in CONSTANT_CALLS):
                return False
        elif isinstance(sub, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Subscript)):
            return False
    return True


class NotebookError(ValueError):
    pass


def _cell_source(cell) -> str:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    # IPython magics and shell escapes are not Python
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())


def extract_definitions(notebook_bytes: bytes) -> tuple[str, list[str]]:
    """Return (module source, notes for the student about skipped cells)."""
    try:
        nb = json.loads(notebook_bytes.decode("utf-8"))
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise NotebookError(f"not a readable .ipynb notebook ({exc})") from None
    pieces, notes = [], []
    for number, cell in enumerate(c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"):
        source = _cell_source(cell)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            notes.append(f"code cell {number + 1} has a syntax error (line {exc.lineno}: {exc.msg}); it was skipped")
            continue
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _notebook_only(node):
                notes.append(f"code cell {number + 1}: dropped the notebook-only import on line {node.lineno}")
                continue
            if isinstance(node, KEPT) or _is_constant(node):
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                pieces.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n".join(pieces) + "\n", notes
