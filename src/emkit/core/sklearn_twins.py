"""scikit-learn's exception and warning classes, shared without importing scikit-learn.

emkit's :class:`~emkit.ConvergenceWarning` and ``NotFittedError`` are its own classes; once
scikit-learn is imported in the process, emkit raises or warns with a *twin* instead: a
subclass of both emkit's class and scikit-learn's class of the same role, so that filters,
``pytest.warns``, ``except`` clauses and scikit-learn's tools (``GridSearchCV``) treat it as
their own. emkit never imports scikit-learn itself (that takes seconds); a program that names
scikit-learn's class has imported it.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["sklearn_twin", "twin_module_getattr"]

_TWINS: dict[tuple[type, type], type] = {}


def _twin_name(own: type) -> str:
    return "Sklearn" + own.__name__


def sklearn_twin(own: type, sklearn_name: str, module: str) -> type:
    """``own``, or, once scikit-learn is imported, ``Sklearn<own>``: a subclass of ``own`` and
    of ``sklearn.exceptions.<sklearn_name>``, made once and published as an attribute of
    ``module`` (so that pickle finds it by name)."""
    base = getattr(sys.modules.get("sklearn.exceptions"), sklearn_name, None)
    if not (isinstance(base, type) and issubclass(base, BaseException)):
        return own
    twin = _TWINS.get((own, base))
    if twin is None:
        twin = type(_twin_name(own), (own, base),
                    {"__module__": module, "__doc__": f"emkit's {own.__name__}, also scikit-learn's."})
        _TWINS[(own, base)] = twin
        setattr(sys.modules[module], twin.__name__, twin)
    return twin


def twin_module_getattr(module: str, own: type, sklearn_name: str) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module`` that rebuilds the twin of ``own`` when an
    unpickled object names it in a process that has not made it yet."""
    def __getattr__(name: str) -> Any:
        if name == _twin_name(own):
            try:
                import sklearn.exceptions  # noqa: F401 - only to rebuild a pickled scikit-learn twin
            except ImportError:  # pragma: no cover
                raise AttributeError(name) from None
            return sklearn_twin(own, sklearn_name, module)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return __getattr__
