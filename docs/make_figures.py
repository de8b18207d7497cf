"""Run every code example of the user guide and keep what it prints and draws.

``make docs`` runs this before Sphinx. Each file in ``docs/snippets/`` is one example exactly as
the guide shows it (the pages include the file itself, so the code on a page is the code that
ran):

* ``name.py`` runs in its own Python process with ``docs/_generated/figures`` as the working
  directory, so ``fig.savefig("name.png")`` lands where the pages look for pictures; what it
  prints goes to ``docs/_generated/output/name.txt``.
* ``name.sh`` is a console session: each line is run by bash in the same directory and the
  transcript (``$ command`` then its output) goes to ``docs/_generated/output/name.txt``.

The ``Examples`` sections of emkit's docstrings, which the API reference shows, run too
(:mod:`doctest`, in one process).

An example that fails (non-zero exit status, or anything written to stderr, warnings
included) fails the build. A first-line comment ``# needs: torch`` names optional packages;
without them the example is not run and its output says so (the page still builds).

Examples whose file, this script and emkit's sources are all older than their output are not
run again; ``--force`` runs everything.

Usage: python docs/make_figures.py [--force] [--jobs N] [NAME ...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SNIPPETS = DOCS / "snippets"
GENERATED = DOCS / "_generated"
FIGURES = GENERATED / "figures"
OUTPUT = GENERATED / "output"
SOURCES = DOCS.parent / "src" / "emkit"
TIMEOUT = 300  # seconds per example

#: warnings from other libraries that an example may print without failing the build: a
#: substring of the warning's line -> why it is tolerated. Each is reported when seen.
KNOWN_WARNINGS = {
    "The given NumPy array is not writable, and PyTorch does not support non-writable tensors":
        "torch warns once per process when emkit hands it a read-only NumPy index array "
        "(harmless: nothing writes to it)",
}


def _needs(path: Path) -> list[str]:
    first = path.read_text().splitlines()[:1]
    if first and first[0].startswith("# needs:"):
        return [name.strip() for name in first[0][len("# needs:"):].split(",") if name.strip()]
    return []


def _newest_source() -> float:
    return max([p.stat().st_mtime for p in SOURCES.rglob("*.py")] + [Path(__file__).stat().st_mtime])


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", PYTHONHASHSEED="0", COLUMNS="100", TERM="dumb", NO_COLOR="1",
               EMKIT_NUM_THREADS=env.get("EMKIT_NUM_THREADS", "2"))
    # one BLAS thread per process: the examples' matrices are tiny, the examples run side by side,
    # and a multi-threaded BLAS then spends its time waiting for cores (20 times slower on a busy
    # machine); emkit's own threads (EMKIT_NUM_THREADS) still split the rows
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setdefault(name, "1")
    # the running interpreter's scripts (the emkit command) come first on PATH
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _run_python(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, str(path)], cwd=FIGURES, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def _run_console(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    transcript, errors = [], []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        proc = subprocess.run(["bash", "-c", line], cwd=FIGURES, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        transcript.append(f"$ {line}\n{proc.stdout}")
        if proc.returncode != 0 or proc.stderr:
            errors.append(f"$ {line}\n(exit status {proc.returncode})\n{proc.stderr}")
            return 1, "".join(transcript), "\n".join(errors)
    return 0, "".join(transcript), ""


def _unexpected(stderr: str) -> tuple[str, list[str]]:
    """stderr without the known warnings (each with the indented source line after it), and the
    known warnings seen."""
    kept, seen, skip_source = [], [], False
    for line in stderr.splitlines():
        if skip_source and line.startswith("  "):
            skip_source = False
            continue
        skip_source = False
        known = next((text for text in KNOWN_WARNINGS if text in line), None)
        if known is not None:
            seen.append(KNOWN_WARNINGS[known])
            skip_source = True
            continue
        kept.append(line)
    return "\n".join(kept).strip(), seen


def run_one(path: Path, force: bool, newest: float, env: dict[str, str]) -> tuple[str, str, float]:
    """Run one example; returns (name, status, seconds) and raises RuntimeError when it fails."""
    out = OUTPUT / (path.stem + ".txt")
    stamp = OUTPUT / (path.stem + ".ok")
    if (not force and stamp.exists() and out.exists()
            and stamp.stat().st_mtime >= max(path.stat().st_mtime, newest)):
        return path.stem, "up to date", 0.0
    missing = [name for name in _needs(path) if importlib.util.find_spec(name) is None]
    if missing:
        stamp.unlink(missing_ok=True)
        out.write_text(f"(not run when these pages were built: it needs {', '.join(missing)})\n")
        return path.stem, f"not run (needs {', '.join(missing)})", 0.0
    start = time.perf_counter()
    runner = _run_console if path.suffix == ".sh" else _run_python
    code, stdout, stderr = runner(path, env)
    seconds = time.perf_counter() - start
    stderr, known = _unexpected(stderr)
    for why in known:
        print(f"  note        {path.stem}: known warning: {why}", flush=True)
    if code != 0 or stderr:
        stamp.unlink(missing_ok=True)
        raise RuntimeError(f"{path.relative_to(DOCS.parent)} failed (exit status {code}):\n{stdout}\n{stderr}")
    out.write_text(stdout)
    stamp.write_text("")
    return path.stem, "ran", seconds


DOCTEST = """
import doctest, importlib, sys
failed = 0
for name in sys.argv[1:]:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failed += result.failed
    print(f"{name}: {result.attempted} examples, {result.failed} failed")
sys.exit(1 if failed else 0)
"""


def run_docstring_examples(env: dict[str, str]) -> tuple[str, str, float]:
    """Run the docstring examples of every emkit module that has some; RuntimeError when one fails."""
    modules = []
    for path in sorted(SOURCES.rglob("*.py")):
        if ">>> " in path.read_text():
            parts = path.relative_to(SOURCES.parent).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", DOCTEST, *modules], cwd=FIGURES, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"docstring examples failed (exit status {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return "docstrings", "ran", time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these examples (file names without suffix)")
    parser.add_argument("--force", action="store_true", help="run examples that are up to date too")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="examples run at once")
    parser.add_argument("--no-docstrings", action="store_true", help="skip the docstring examples")
    args = parser.parse_args(argv)
    FIGURES.mkdir(parents=True, exist_ok=True)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in SNIPPETS.iterdir() if p.suffix in (".py", ".sh"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    newest, env = _newest_source(), _environment()
    failures, start = [], time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, p, args.force, newest, env): p for p in paths}
        if not (args.names or args.no_docstrings):
            futures[pool.submit(run_docstring_examples, env)] = SOURCES / "docstrings"
        for future in concurrent.futures.as_completed(futures):
            try:
                name, status, seconds = future.result()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures.append(str(exc))
                print(f"  FAILED  {futures[future].name}", flush=True)
                continue
            print(f"  {status:<11} {name}" + (f" ({seconds:.1f} s)" if seconds else ""), flush=True)
    print(f"{len(paths)} examples in {time.perf_counter() - start:.1f} s, {len(failures)} failed")
    for failure in failures:
        print("\n" + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
