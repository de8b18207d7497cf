"""Run scikit-learn's own mixture tests against ``emkit.GaussianMixture``.

The installed scikit-learn's ``sklearn/mixture/tests/test_gaussian_mixture.py`` and
``test_mixture.py`` are copied to a temporary folder with one change: the import of
``GaussianMixture`` comes from emkit (nothing else is edited; scikit-learn's private helpers
that some tests use to compute expected values stay scikit-learn's). pytest then runs them in
a subprocess, with scikit-learn's own ``conftest`` loaded as a plugin (its fixtures
``global_dtype`` and ``global_random_seed``), and writes a JSON report of every outcome.

The tests that cannot apply to another implementation are deselected by name, each with its
reason (:data:`NOT_APPLICABLE`); everything else must pass.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

#: file -> (text in scikit-learn's file, replacement): the only change made to its tests. Each
#: text must occur exactly once, so that a scikit-learn release that imports GaussianMixture
#: differently fails here instead of silently testing scikit-learn against itself.
IMPORTS = {
    "test_gaussian_mixture.py": [
        ("from sklearn.mixture import GaussianMixture\n", "from emkit import GaussianMixture\n"),
    ],
    "test_mixture.py": [
        ("from sklearn.mixture import BayesianGaussianMixture, GaussianMixture\n",
         "from sklearn.mixture import BayesianGaussianMixture\nfrom emkit import GaussianMixture\n"),
    ],
}

#: "file::test" -> why the test does not apply to emkit (every parametrisation is deselected)
NOT_APPLICABLE = {
    "test_gaussian_mixture.py::test_gaussian_mixture_precisions_init":
        "calls scikit-learn's private GaussianMixture._set_parameters (on emkit's estimator) to compute "
        "the expected precisions",
    "test_gaussian_mixture.py::test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters":
        "mocks scikit-learn's private sklearn.mixture._gaussian_mixture._estimate_gaussian_parameters "
        "and counts its calls, which emkit's M-step does not make",
    "test_gaussian_mixture.py::test_gaussian_mixture_raises_where_array_api_not_implemented":
        "asserts a scikit-learn limitation: its 'kmeans' and 'k-means++' initialisations have no "
        "array-API implementation and raise NotImplementedError under array_api_dispatch; emkit's "
        "k-means runs on any array library, so the fit succeeds (a deliberate difference)",
}

_CONFTEST = '''
import json
import os

NOT_APPLICABLE = set(json.loads(os.environ["EMKIT_SKLEARN_SUITE_NOT_APPLICABLE"]))
REPORT = {"outcomes": {}, "deselected": [], "exitstatus": None}


def pytest_collection_modifyitems(config, items):
    drop = [item for item in items if f"{item.path.name}::{item.originalname}" in NOT_APPLICABLE]
    if drop:
        dropped = set(map(id, drop))
        items[:] = [item for item in items if id(item) not in dropped]
        config.hook.pytest_deselected(items=drop)
    REPORT["deselected"] = [item.nodeid for item in drop]


def pytest_runtest_logreport(report):
    outcomes = REPORT["outcomes"]
    if report.failed:
        outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.skipped and report.nodeid not in outcomes:
        outcomes[report.nodeid] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.passed and report.when == "call" and report.nodeid not in outcomes:
        outcomes[report.nodeid] = "xpassed" if hasattr(report, "wasxfail") else "passed"


def pytest_sessionfinish(session, exitstatus):
    REPORT["exitstatus"] = int(exitstatus)
    with open(os.environ["EMKIT_SKLEARN_SUITE_REPORT"], "w") as f:
        json.dump(REPORT, f)
'''


def sklearn_tests_dir() -> Path:
    spec = importlib.util.find_spec("sklearn")
    return Path(spec.origin).parent / "mixture" / "tests"


def write_suite(folder: Path) -> list[str]:
    """scikit-learn's mixture tests with emkit's GaussianMixture, and the reporting conftest,
    written to ``folder``; returns the test file names."""
    source = sklearn_tests_dir()
    for name, replacements in IMPORTS.items():
        text = (source / name).read_text(encoding="utf-8")
        for old, new in replacements:
            count = text.count(old)
            if count != 1:
                raise AssertionError(f"{source / name}: expected the import {old.strip()!r} once, found it "
                                     f"{count} times; update IMPORTS for this scikit-learn release")
            text = text.replace(old, new)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return list(IMPORTS)


def run_suite(folder: Path, *args: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Run the suite written by :func:`write_suite` in a subprocess; returns the report:
    ``outcomes`` (node id -> passed / failed / error / skipped / xfailed / xpassed),
    ``deselected`` (node ids), ``exitstatus``, ``counts`` and ``output`` (the end of pytest's)."""
    files = write_suite(folder)
    report_path = folder / "report.json"
    # a clean pytest (no options or plugins of the outer run), but the outer run's xdist worker
    # count, which scikit-learn's conftest uses to share the cores between workers
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PYTEST_", "SCIPY_ARRAY_API", "SKLEARN_")) or k == "PYTEST_XDIST_WORKER_COUNT"}
    environment.update({"EMKIT_SKLEARN_SUITE_REPORT": str(report_path),
                        "EMKIT_SKLEARN_SUITE_NOT_APPLICABLE": json.dumps(sorted(NOT_APPLICABLE)),
                        "SKLEARN_SKIP_NETWORK_TESTS": "1"})
    environment.update(env or {})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "sklearn.conftest",
               "-c", str(folder / "pytest.ini"), "--rootdir", str(folder), "-rfE", "--tb=short",
               *args, *files]
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=timeout)
    output = (done.stdout + done.stderr)[-6000:]
    if not report_path.exists():
        raise AssertionError(f"scikit-learn's suite did not run (exit {done.returncode}):\n{output}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for outcome in report["outcomes"].values():
        counts[outcome] = counts.get(outcome, 0) + 1
    report["counts"] = counts
    report["output"] = output
    return report


def deselected_names(report: dict) -> set[str]:
    """The ``file::test`` names of the deselected node ids."""
    return {nodeid.split("[")[0] for nodeid in report["deselected"]}


def problems(report: dict) -> list[str]:
    """Node ids that failed, errored or passed unexpectedly (an xfail that passes)."""
    return sorted(n for n, o in report["outcomes"].items() if o in ("failed", "error", "xpassed"))
