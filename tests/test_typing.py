"""Type hints on the public API and a clean mypy run (issue 13, item 6: ``py.typed`` and type
hints on the whole public API, mypy clean on ``src/emkit`` with the settings in pyproject).

* Every public function, and every public method of a public class (names not starting with
  ``_``), is fully annotated: each parameter (``self`` / ``cls`` aside, ``*args`` and
  ``**kwargs`` included) and the return value.
* Every setting an estimator declares (:func:`emkit.estimators.settings.declare`) has a
  class-level annotation: the constructor is written at run time from the declarations, so
  type checkers see the settings (``self.n_components``...) only through these annotations.
* mypy, with the settings of pyproject.toml, reports no error.

mypy runs on the whole package, as ``mypy`` with pyproject's ``files = ["src/emkit"]`` does
(``make test`` runs it through this file).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from emkit import __file__ as _emkit_init
from emkit.estimators.registry import ESTIMATORS, estimator_class

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(_emkit_init).resolve().parent
PYPROJECT = ROOT / "pyproject.toml"


def _checked_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _unannotated(path: Path) -> list[str]:
    """``file:line: name (missing: ...)`` for each public function or method of a public class
    that lacks an annotation."""
    rel = path.relative_to(PACKAGE).as_posix()
    out: list[str] = []

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                args = node.args
                positional = args.posonlyargs + args.args
                missing = [a.arg for i, a in enumerate(positional + args.kwonlyargs)
                           if a.annotation is None and not (in_class and i == 0 and a.arg in ("self", "cls"))]
                missing += [f"*{a.arg}" for a in (args.vararg,) if a is not None and a.annotation is None]
                missing += [f"**{a.arg}" for a in (args.kwarg,) if a is not None and a.annotation is None]
                if node.returns is None:
                    missing.append("return")
                if missing:
                    out.append(f"{rel}:{node.lineno}: {prefix}{node.name} (missing: {', '.join(missing)})")

    visit(ast.parse(path.read_text(encoding="utf-8")).body, "", False)
    return out


def test_py_typed_marker_is_shipped():
    assert (PACKAGE / "py.typed").is_file()


def test_public_functions_and_methods_are_fully_annotated():
    problems = [p for path in _checked_files() for p in _unannotated(path)]
    assert not problems, "public functions without complete annotations:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- declared settings
def _annotations(cls: type) -> dict[str, str]:
    """Class-level annotations of ``cls`` and its bases (the nearest wins), as source text."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        found.update({k: str(v) for k, v in inspect.get_annotations(klass).items()})
    return found


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_declared_setting_is_annotated(name):
    cls = estimator_class(name)
    annotations = _annotations(cls)
    assert cls._settings
    missing = [s.name for s in cls._settings if s.name not in annotations]
    assert not missing, f"{name}: declared settings without a class-level annotation: {missing}"
    for s in cls._settings:
        text = annotations[s.name]
        if text == "Any":
            continue
        if s.default is None and (s.constraint is None or s.constraint(None)):
            assert "None" in text, f"{name}.{s.name}: default None, annotated {text!r}"
        describe = s.constraint.describe if s.constraint is not None else ""
        parts = describe.split(" or ")
        if any(p.startswith("an integer") for p in parts):
            assert "int" in text or "float" in text, f"{name}.{s.name}: {describe}, annotated {text!r}"
        if any(p.startswith("a number") for p in parts):
            assert "float" in text, f"{name}.{s.name}: {describe}, annotated {text!r}"
        if any(p == "a bool" for p in parts):
            assert "bool" in text, f"{name}.{s.name}: {describe}, annotated {text!r}"


def test_settings_annotations_do_not_create_class_attributes():
    """Annotations only: a setting never becomes a class attribute (``hasattr`` on an
    estimator that lacks a setting stays False, as the engine options rely on)."""
    for name in ESTIMATORS:
        cls = estimator_class(name)
        for s in cls._settings:
            assert not any(s.name in vars(k) for k in cls.__mro__), f"{name}.{s.name} is a class attribute"


# --------------------------------------------------------------------------- mypy
def test_mypy_is_clean():
    """mypy with the settings of pyproject.toml reports no error in any file of the package
    (the same run as ``mypy src/emkit``). Takes about 30 s without a cache."""
    api = pytest.importorskip("mypy.api")
    files = [str(p) for p in _checked_files()]
    stdout, stderr, status = api.run(["--config-file", str(PYPROJECT), "--follow-imports", "silent", *files])
    assert status == 0 and "Success" in stdout, f"mypy found errors:\n{stdout}\n{stderr}"
