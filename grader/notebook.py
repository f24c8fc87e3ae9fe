"""Turn a Jupyter notebook into a module: imports, definitions and constants are kept.

Top-level statements (training loops, plots, data downloads, asserts) are dropped so that
importing the submission is fast and has no side effects. Constants (`D_MODEL = 64`,
`scale = 1 / math.sqrt(64)`, and tensors built by torch's constructors from such values, as
CS182's `future_mask = torch.triu(torch.zeros([1024, 1024]).fill_(float("-inf")), 1)`) stay,
since definitions may use them. Imports of notebook-only
modules (Colab, IPython, plotting) are dropped, with a note, so they cannot fail the import.
`from __future__` imports go first, where Python requires them.
Parsing uses `ast` and `compile`, which never execute anything.

Notebooks are read as written, so IPython-only syntax is turned into Python first, keeping
every line where it was (notes and errors then name the student's own line numbers):

- a cell magic whose body is Python (`%%capture`, `%%time`, `%%timeit`, ...) loses its first
  line; any other cell magic (`%%bash`, `%%writefile`, `%%html`, unknown ones) means the body
  is not Python, and the cell is skipped with a note naming the magic;
- a line magic, shell escape or help request (`%matplotlib inline`, `!pip install x`,
  `obj?`, `?obj`) where a statement starts, at any indentation, becomes `pass` at the same
  indentation, so the block around it stays valid; `%time stmt` becomes `stmt`, since IPython
  runs it in the notebook's namespace;
- `x = !ls` and `t = %timeit -o f()` become `x = None`; such placeholders are never kept as
  constants;
- a backslash-continued magic line blanks its continuation lines.

Which lines start a statement is decided with `tokenize`, one statement at a time, so a
docstring line that begins with `%` or `!` is never touched. Only a cell that does not
compile as written is rewritten; one that still does not compile is skipped with its line.

Whatever the bytes, `extract_definitions` raises nothing but `NotebookError`: a hostile
notebook (deep JSON, a deeply nested expression, a huge cell, odd types) costs at most its
own cell, with a note, or the whole notebook, with a message.
"""
from __future__ import annotations

import ast
import json
import re
import tokenize
import warnings

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
NOTEBOOK_ONLY = ("google.colab", "IPython", "ipywidgets", "matplotlib", "seaborn", "plotly", "tqdm.notebook")
# calls a constant may make: pure functions of numbers
CONSTANT_CALLS = {"math", "int", "float", "round", "min", "max", "abs", "pow"}
BUILTIN_CALLS = CONSTANT_CALLS - {"math"}
# torch.<name>(...) that build a tensor from numbers (never from data, never random), and the
# tensor methods a constant may chain on one (`torch.zeros(n).fill_(x).triu(1)`)
TORCH_CONSTRUCTORS = {"tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "triu", "tril",
                      "zeros_like", "ones_like", "full_like"}
TENSOR_METHODS = {"fill_", "triu", "tril", "triu_", "tril_", "float", "double", "bool", "long", "int", "to",
                  "view", "reshape", "unsqueeze", "t", "masked_fill", "masked_fill_"}
# cell magics that run their body as Python in the notebook's namespace
PYTHON_CELL_MAGICS = {"capture", "time", "timeit", "prun", "debug"}
# no student writes a cell this long; parsing one much longer takes seconds and gigabytes
MAX_CELL_CHARS = 100_000
# nor a notebook with this much code: the cap keeps extraction to a few seconds
MAX_CODE_CHARS = 500_000
# IPython's help syntax at the end of a line: `obj?`, `np.*load*??`, `%timeit?`
HELP_END = re.compile(r"%{0,2}(?!\d)[\w*]+(?:\.[\w*]+)*\?\??")


class NotebookError(ValueError):
    pass


class _CellSkipped(Exception):
    """Carries the note that says why a cell was left out."""


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
            if not _constant_call(sub):
                return False
        elif isinstance(sub, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Subscript)):
            return False
    return True


def _constant_call(call: ast.Call) -> bool:
    """A call a constant may make (its arguments, calls included, are checked on their own)."""
    names, root = [], call.func
    while isinstance(root, ast.Attribute):
        names.append(root.attr)
        root = root.value
    if isinstance(root, ast.Name):
        return root.id in CONSTANT_CALLS or (root.id == "torch" and names == [n for n in names if n in
                                                                              TORCH_CONSTRUCTORS] and len(names) == 1)
    # a method of a tensor the constant builds: torch.zeros(n).fill_(x)
    return isinstance(root, ast.Call) and len(names) == 1 and names[0] in TENSOR_METHODS


def _parses(source: str) -> ast.Module | None:
    """The tree of a small snippet, or None: used to check a guess about a line, so any failure is a no."""
    try:
        return ast.parse(source)
    except Exception:  # SyntaxError, and RecursionError/MemoryError on a deep or huge snippet
        return None


def _timed_statement(body: str) -> str | None:
    """`%time stmt` runs stmt in the notebook's namespace (`%time import torch` imports it): keep stmt."""
    match = re.match(r"%time\s+(\S.*)", body)
    if not match or match.group(1).startswith("-") or body.endswith("\\"):
        return None
    return match.group(1) if _parses(match.group(1)) is not None else None


def _assigned_from_ipython(body: str) -> str | None:
    """The target text of `target = !cmd` or `target = %magic`, or None."""
    equals = body.find("=")
    if equals <= 0 or not body[equals + 1:].lstrip().startswith(("!", "%")):
        return None
    target = body[:equals].rstrip()
    # `a += %m`, `x # = !y` and `print("a = !b")` are not IPython assignments (`f(); x = !ls` is)
    tree = _parses(f"{target} = None")
    return target if tree is not None and tree.body and isinstance(tree.body[-1], ast.Assign) else None


def _ipython_line(line: str) -> tuple[str, bool] | None:
    """(Python that stands in for an IPython-only statement line, whether it is a mere
    placeholder), or None when the line is not IPython-only. Never called inside a string."""
    body = line.lstrip()
    indent = line[:len(line) - len(body)]
    if body.startswith(("%", "!", "?")) or HELP_END.fullmatch(body.rstrip()):
        timed = _timed_statement(body.rstrip())
        return (indent + timed, False) if timed is not None else (indent + "pass", True)
    target = _assigned_from_ipython(body)
    return (f"{indent}{target} = None", True) if target is not None else None


def _statement_end(lines: list[str], start: int) -> int | None:
    """Index of the line after the statement that starts at lines[start] (which spans several
    lines when it has brackets, a backslash or a multi-line string), or None if tokenize gives up."""
    readline = (lines[k] + "\n" for k in range(start, len(lines))).__next__
    try:
        for token in tokenize.generate_tokens(readline):
            if token.type == tokenize.NEWLINE:
                return start + token.start[0]
            if token.type == tokenize.ENDMARKER:
                return len(lines)
    except Exception:  # TokenError, IndentationError, SyntaxError: which one depends on the Python version
        return None
    return None


def _rewrite_ipython(text: str) -> tuple[str, set[int]]:
    """The cell with its IPython-only statement lines turned into Python, and the numbers of the
    lines that are now placeholders. The line count never changes."""
    lines = text.split("\n")
    placeholders: set[int] = set()
    i = 0
    while i < len(lines):
        rewritten = _ipython_line(lines[i])
        if rewritten is not None:
            continued = lines[i].endswith("\\")
            lines[i], placeholder = rewritten
            if placeholder:
                placeholders.add(i + 1)
            i += 1
            while continued and i < len(lines):  # IPython joins a magic's backslash-continued lines
                continued = lines[i].endswith("\\")
                lines[i] = ""
                i += 1
            continue
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1  # tokenize would run on into the next statement, which might be IPython
            continue
        end = _statement_end(lines, i)
        if end is None:
            break  # an unclosed bracket or string: leave the rest for the compiler to report
        i = end
    return "\n".join(lines), placeholders


def _cell_text(cell: dict, number: int) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        source = "".join(source)
    if not isinstance(source, str):
        raise _CellSkipped(f"code cell {number} has a source that is not text; it was skipped")
    if len(source) > MAX_CELL_CHARS:
        raise _CellSkipped(f"code cell {number} is too large ({len(source):,} characters, the limit is "
                           f"{MAX_CELL_CHARS:,}); it was skipped")
    # Python counts only these as line ends; str.splitlines would also split at \f or \u2028
    return source.replace("\r\n", "\n").replace("\r", "\n")


def _without_cell_magics(text: str, number: int) -> str:
    """The cell with its Python-body cell magics blanked (they nest: `%%capture` then `%%time`)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue  # IPython drops leading blank lines before looking for a cell magic
        if not stripped.startswith("%%"):
            break
        name = re.match(r"%%([\w.-]*)", stripped).group(1)[:40]
        if name not in PYTHON_CELL_MAGICS:
            raise _CellSkipped(f"code cell {number} is a %%{name} cell, not Python; it was skipped")
        lines[i] = ""
    return "\n".join(lines)


def _compile(source: str) -> ast.Module:
    """The cell's tree, once the whole cell compiles: the compiler also rejects what the parser
    lets through (`break` outside a loop, a repeated argument name), which would otherwise break
    the import of every definition in the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an invalid escape warns; with warnings as errors it would raise
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # IPython runs a top-level `await`
        compile(source, "<cell>", "exec", flags=flags, dont_inherit=True)
        return compile(source, "<cell>", "exec", flags=flags | ast.PyCF_ONLY_AST, dont_inherit=True)


_DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


def _names_defined(text: str) -> list[str]:
    """The top-level functions and classes a cell that does not compile would have defined
    (found by their `def` / `class` lines, which need no parse), for the student's note."""
    return list(dict.fromkeys(_DEFINITION.findall(text)))[:8]


def _parse_cell(text: str, number: int) -> tuple[list[str], ast.Module, set[int]]:
    """(lines, tree, placeholder line numbers) of a cell, rewritten only if it fails as written."""
    try:
        try:
            return text.split("\n"), _compile(text), set()
        except SyntaxError:
            source, placeholders = _rewrite_ipython(text)
            return source.split("\n"), _compile(source), placeholders
    except SyntaxError as exc:
        message = str(exc.msg or "invalid syntax")[:200]  # a too-long integer has a paragraph of advice
        where = f"line {exc.lineno}: {message}" if exc.lineno else message
        lost = _names_defined(text)
        unfilled = " (a TODO left empty? a function needs at least `pass` in its body)" \
            if "expected an indented block" in message else ""
        raise _CellSkipped(f"code cell {number} has a syntax error ({where}){unfilled}; it was skipped"
                           + (f", so {', '.join(lost)} {'is' if len(lost) == 1 else 'are'} not defined" if lost else "")
                           ) from None
    except (RecursionError, MemoryError):
        raise _CellSkipped(f"code cell {number} is nested too deeply for Python to parse "
                           "(split the expression up); it was skipped") from None
    except ValueError:  # a lone surrogate cannot be encoded as UTF-8; some Pythons say so of a null byte
        raise _CellSkipped(f"code cell {number} contains characters that are not allowed in "
                           "Python source; it was skipped") from None


def _code_cells(notebook_bytes: bytes) -> list[dict]:
    try:
        text = bytes(notebook_bytes).decode("utf-8-sig")  # Windows editors may add a BOM
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not a readable .ipynb notebook: it is not UTF-8 text (byte {exc.start}); "
                            "save it again from Jupyter") from None
    try:
        nb = json.loads(text)
    except RecursionError:
        raise NotebookError("not a readable .ipynb notebook: its JSON is nested too deeply") from None
    except ValueError as exc:  # bad JSON, or an integer literal too long to convert
        raise NotebookError(f"not a readable .ipynb notebook ({str(exc)[:200]})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise NotebookError("not a readable .ipynb notebook (it has no list of cells)")
    return [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]


def _defines(node) -> set[str]:
    """The names a kept statement binds ("*" for a star import, which may bind any)."""
    if isinstance(node, ast.Import):
        return {alias.asname or alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        return {alias.asname or alias.name for alias in node.names}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def _reads(node) -> set[str]:
    """The names a constant's value reads."""
    return {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}


def _extract(cells: list[dict]) -> tuple[str, list[str]]:
    future, pieces, notes = [], [], []
    defined: set[str] | None = set()      # names the kept code binds so far (None: unknown, a star import)
    code_chars = 0
    for number, cell in enumerate(cells, 1):
        try:
            text = _cell_text(cell, number)
            code_chars += len(text)
            if code_chars > MAX_CODE_CHARS:
                notes.append(f"the notebook has more than {MAX_CODE_CHARS:,} characters of code: "
                             f"code cell {number} and the ones after it were skipped")
                break
            lines, tree, placeholders = _parse_cell(_without_cell_magics(text, number), number)
        except _CellSkipped as skipped:
            notes.append(str(skipped))
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and _notebook_only(node):
                notes.append(f"code cell {number}: dropped the notebook-only import on line {node.lineno}")
                continue
            constant = not isinstance(node, KEPT) and _is_constant(node) and node.lineno not in placeholders
            if constant and not (defined is None or _reads(node) <= defined | BUILTIN_CALLS):
                continue            # it reads a name the kept code never defines: importing it would fail
            if isinstance(node, KEPT) or constant:
                if defined is not None:
                    names = _defines(node)
                    defined = None if "*" in names else defined | names
                start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                piece = "\n".join(lines[start - 1:node.end_lineno])
                is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
                (future if is_future else pieces).append(piece)
    return "\n\n".join(list(dict.fromkeys(future)) + pieces) + "\n", notes


def extract_definitions(notebook_bytes: bytes) -> tuple[str, list[str]]:
    """Return (module source, notes for the student about skipped cells)."""
    try:
        return _extract(_code_cells(notebook_bytes))
    except NotebookError:
        raise
    except (RecursionError, MemoryError):
        raise NotebookError("the notebook is too large or too deeply nested to read") from None
    except Exception as exc:  # the promise is NotebookError only: the loader must survive any file
        raise NotebookError(f"the notebook could not be read ({type(exc).__name__})") from None
