"""Load a set of trusted staff files (reference, a mutant, support modules) as modules that
import each other by their student-facing names, without leaving those names in sys.modules.

Homework files import each other by plain top-level names (`from bert import BertModel`,
`from base_bert import BertPreTrainedModel`). The parent holds several such sets at once (the
reference and every mutant), so each set is executed with its own names temporarily visible
and the names are removed again afterwards; the modules keep their bindings to each other.

Only ever called on staff code; student code never runs in the grader's process.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from pathlib import Path


class _SetFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, sources: dict[str, tuple[str, str]], tag: str):
        self.sources = sources          # module name -> (source, filename)
        self.tag = tag

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.sources:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=self.sources[fullname][1])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source, filename = self.sources[module.__name__]
        module.__file__ = filename
        exec(compile(source, filename, "exec"), module.__dict__)


def load_module_set(files: dict[str, str | Path], tag: str, sources: dict[str, str] | None = None,
                    shared: dict[str, types.ModuleType] | None = None) -> dict[str, types.ModuleType]:
    """Execute `files` ({"bert.py": path, ...}) as one set; returns {"bert": module, ...}.

    `sources` overrides the text of some files (a mutant's patched source). `shared` are
    modules already loaded (support files no mutant changes, with their caches) that the set
    imports instead of executing its own copy; they are part of the result. Every module of
    the set is imported, in name order; imports between them resolve inside the set.
    """
    shared = dict(shared or {})
    table = {}
    for filename, path in files.items():
        if Path(filename).stem in shared:
            continue
        name = Path(filename).stem
        text = (sources or {}).get(filename)
        if text is None:
            text = Path(path).read_text()
        table[name] = (text, f"<{tag} {filename}>")
    names = set(table) | set(shared)
    finder = _SetFinder(table, tag)
    shadowed = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.modules.update(shared)
    sys.meta_path.insert(0, finder)
    try:
        loaded = {name: importlib.import_module(name) for name in sorted(table)}
        return {**shared, **loaded}
    finally:
        sys.meta_path.remove(finder)
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(shadowed)
