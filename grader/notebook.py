"""Turn a Jupyter notebook into a module: only imports and definitions are kept.

Top-level statements (training loops, plots, data downloads, asserts) are dropped so that
importing the submission is fast and has no side effects. Parsing uses `ast`, which never
executes anything.
"""
from __future__ import annotations

import ast
import json

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


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
            if isinstance(node, KEPT):
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                pieces.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n".join(pieces) + "\n", notes
