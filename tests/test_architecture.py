"""The house rules of docs/architecture.md that import-linter does not see."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emkit

SRC = Path(emkit.__file__).parent


def _function_level_emkit_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if in_function and isinstance(child, ast.ImportFrom):
                if child.level > 0 or (child.module or "").split(".")[0] == "emkit":
                    found.append(f"{path.relative_to(SRC.parent)}:{child.lineno}")
            elif in_function and isinstance(child, ast.Import):
                if any(alias.name.split(".")[0] == "emkit" for alias in child.names):
                    found.append(f"{path.relative_to(SRC.parent)}:{child.lineno}")
            visit(child, inside)

    visit(tree, False)
    return found


#: emkit modules that exist to import an optional dependency at their top, each imported on
#: first use by its one wrapper on the same floor (path of the wrapper -> module)
OPTIONAL_DEPENDENCY_MODULES = {"emkit/models/gaussian_compiled.py": "emkit.models._gaussian_loops"}


def test_no_function_level_import_of_an_emkit_module():
    # function-level imports are for optional dependencies only; one of emkit's own modules
    # imported inside a function hides an import cycle or a floor crossed the wrong way
    found = [hit for path in sorted(SRC.rglob("*.py")) for hit in _function_level_emkit_imports(path)]
    allowed = []
    for wrapper, module in OPTIONAL_DEPENDENCY_MODULES.items():
        text = (SRC.parent / wrapper).read_text()
        parent, _, name = module.rpartition(".")
        assert f"from {parent} import {name}" in text  # the exception names the real import
        assert "import numba" in (SRC.parent / (module.replace(".", "/") + ".py")).read_text().split('"""')[2]
        allowed += [hit for hit in found if hit.startswith(wrapper + ":")]
    assert [hit for hit in found if hit not in allowed] == []
    assert len(allowed) == len(OPTIONAL_DEPENDENCY_MODULES)


def test_models_never_branch_on_dask_or_import_torch():
    pattern = ("is_dask", "import torch", "import dask", ".compute()")
    hits = [f"{p.name}: {needle}" for p in sorted((SRC / "models").rglob("*.py"))
            for needle in pattern if needle in p.read_text()]
    assert hits == []


def test_bad_thread_setting_does_not_break_import_and_is_reported_on_use():
    env = dict(os.environ, EMKIT_NUM_THREADS="abc")
    ok = subprocess.run([sys.executable, "-c", "import emkit"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    used = subprocess.run([sys.executable, "-c", "import emkit; emkit.get_num_threads()"], env=env,
                          capture_output=True, text=True)
    assert used.returncode != 0
    assert "EMKIT_NUM_THREADS must be a positive integer, got 'abc'" in used.stderr


def _faithful_like(n: int = 40_000, d: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(n // 2, d)), rng.normal(3.0, 1.0, size=(n - n // 2, d))])


def test_fitted_estimator_pickles_and_saves_without_its_training_data(tmp_path):
    X = _faithful_like()
    g = emkit.GaussianMixture(2, random_state=0).fit(X)
    assert len(pickle.dumps(g)) < 20_000
    path = g.save(tmp_path / "g.emkit")
    assert path.stat().st_size < 10_000
    # the loaded and the unpickled estimator predict exactly as the fitted one
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(g)).predict_proba(X[:50]), g.predict_proba(X[:50]))
    np.testing.assert_array_equal(emkit.load(path).predict_proba(X[:50]), g.predict_proba(X[:50]))


@pytest.mark.parametrize("make", [
    lambda: emkit.GaussianMixture(2, random_state=0),
    lambda: emkit.PoissonMixture(2, random_state=0),
])
def test_fitting_writes_nothing_onto_the_model(make, monkeypatch):
    # a model is complete when constructed: record its attributes when the estimator builds
    # it and compare after the fit
    est = make()
    built = {}
    original = type(est)._make_model

    def spy(self):
        model = original(self)
        built["model"] = model
        built["before"] = dict(vars(model))
        return model

    monkeypatch.setattr(type(est), "_make_model", spy)
    rng = np.random.default_rng(1)
    X = rng.poisson(3.0, size=(300, 2)).astype(float)
    est.fit(X)
    model = built["model"]
    after = dict(vars(model))
    assert set(after) == set(built["before"])
    for name, value in built["before"].items():
        assert after[name] is value, f"{name} was replaced during the fit"
