"""scikit-learn's array-API tests of ``GaussianMixture`` (``SCIPY_ARRAY_API=1``), run from the
installed scikit-learn against ``emkit.GaussianMixture`` with only the import changed: fitted
on torch (and array-api-strict) input, every fitted attribute and every method's result must be
in the input's library and on its device (``sample()``'s labels too), and agree with the fit on
NumPy input. See ``sklearn_mixture_suite.py``."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("sklearn")
from sklearn_mixture_suite import problems, run_suite  # noqa: E402

#: test id marker -> the library it needs; 16 tests each per dtype (4 covariance types x 2
#: initialisations x with / without starting values), the GPU ones skipped on a CPU machine
LIBRARIES = {"-torch-cpu-float64-": "torch", "-torch-cpu-float32-": "torch",
             "-array_api_strict-CPU_DEVICE-float64-": "array_api_strict"}


def test_scikit_learn_array_api_tests_pass(tmp_path):
    report = run_suite(tmp_path, "-k", "array_api", env={"SCIPY_ARRAY_API": "1"})
    assert not problems(report), report["output"]
    passed = [nodeid for nodeid, outcome in report["outcomes"].items() if outcome == "passed"]
    for marker, library in LIBRARIES.items():
        if importlib.util.find_spec(library) is not None:
            assert sum(marker in nodeid for nodeid in passed) == 16, (marker, report["output"])
