"""A live progress display for long fits, driven by the engine's ``callback`` hook.

Pass a :class:`FitProgress` as an estimator's ``callback=`` (or ``emkit.em(callback=...)``):
it shows restart r of n, the iteration and the current observed log-likelihood on stderr
using rich. It draws nothing when stderr is not a terminal (pipes, CI logs, tests) or when
``enabled=False``, so it is safe to leave on.
"""

from __future__ import annotations

import math
import sys
from typing import Any


class FitProgress:
    """Context manager and ``callback(iteration, params, loglik)`` for the EM engine.

    Parameters
    ----------
    n_init : int
        Restarts the fit will run (the engine calls back with iteration 0 at each start).
    max_iter : int
        Largest number of iterations per restart (the bar's length per restart).
    description : str
        Shown before the bar.
    enabled : bool or None
        None: only when stderr is a terminal.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    """

    def __init__(self, n_init: int = 1, max_iter: int = 100, *, description: str = "EM",
                 enabled: bool | None = None, stream: Any = None) -> None:
        self.n_init = max(int(n_init), 1)
        self.max_iter = max(int(max_iter), 1)
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.restart = 0
        self.iteration = 0
        self.loglik = math.nan
        self.calls = 0
        self._progress: Any = None  # a rich.progress.Progress while enabled and entered
        self._task: Any = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "FitProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("restart {task.fields[restart]}/{task.fields[n_init]}"),
                TextColumn("iter {task.fields[iteration]:>5}"),
                TextColumn("loglik {task.fields[loglik]}"), TimeElapsedColumn(),
                console=Console(file=self.stream), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(
                self.description, total=self.n_init * self.max_iter, restart=0, n_init=self.n_init,
                iteration=0, loglik="-")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # ------------------------------------------------------------------ the engine's hook
    def __call__(self, iteration: int, params: dict, loglik: float) -> None:
        self.calls += 1
        if iteration == 0:  # the engine starts every restart at iteration 0
            self.restart += 1
        self.iteration = int(iteration)
        self.loglik = float(loglik)
        if self._progress is not None:
            done = (min(self.restart, self.n_init) - 1) * self.max_iter + min(self.iteration, self.max_iter)
            self._progress.update(self._task, completed=done, restart=self.restart,
                                  iteration=self.iteration, loglik=f"{self.loglik:.10g}")
