"""Placeholders for torchvision's names: importable, and loud when used."""


class Placeholder:
    """Stands for `name`: taking attributes gives more placeholders; calling one raises."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Placeholder(f"{self._name}.{attribute}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name} is not available in the grading sandbox (torchvision is not installed "
                           "there): the grader runs your model code only, never data loading or training")

    def __repr__(self) -> str:
        return f"<placeholder for {self._name}>"


def module_getattr(module: str):
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{module}.{name}")
    return __getattr__
