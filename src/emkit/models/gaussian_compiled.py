"""Compiled loops of the Gaussian E- and M-steps (:mod:`emkit.models.gaussian_kernels`,
:mod:`emkit.models.covariance`, :mod:`emkit.models.covariance_mclust`), with Numba.

* The batched missing-value E-step spends most of its time on per-row work of a few numbers
  each (the ``j`` missing entries of a row, for each of K components): in NumPy every step of
  it is a pass over a (K, j, rows) array, a dozen passes in all, each holding the interpreter
  lock while it sets up. Here each step is one loop over the rows that keeps a row's few
  numbers in registers (``corrections``, ``moments``), and the per-pattern Cholesky
  factorisations run entry by entry over all patterns at once (``pattern_terms``).
* The float64 posterior where NumPy's exp is scalar (CPUs without AVX-512): the row maxima,
  the exp of the live terms only, the row totals and the scaling, fused (``posterior``),
  instead of NumPy's nine passes with a gather and a scatter. The float32 posterior
  (``posterior_single``): the same steps with an exp of every term that the compiler
  vectorises (8 lanes with AVX2), on every CPU.
* The whole complete-data E-step on small data, every covariance structure (``small_pass``:
  ``small_prepare`` then ``small_e_step``): there NumPy's per-call costs, not arithmetic, set
  the time (Old Faithful, 272 x 2, K = 9: 53 us a pass with its set-up against 107 us in
  NumPy calls).
* The small M-steps, for the same reason: the reference points, weights and steps
  (``m_step_start``), the full covariances (``scatter_covariances``), and the iterative
  M-steps of mclust's forms with their guard (``mclust_*``, in ``emkit.models._mclust_loops``:
  Newton on a common shape, the proportional alternation, the Jacobi sweeps of a common
  orientation).

The loops release the interpreter lock (``nogil``), so chunks on several threads run side by
side. They do the same maths as the NumPy code they replace, which stays the reference (and
the path taken when Numba is not installed, or with ``EMKIT_COMPILED=0``): the tests compare
the two. Numba is optional (the ``fast`` extra). ``kernels`` imports it on first use only,
so ``import emkit`` does not pay for it; the functions (module-level, in
``emkit.models._gaussian_loops``) are compiled on their first call and cached on disk next to
it (about 2 s once; later processes load them in about 0.4 s).
"""

from __future__ import annotations

import os
from typing import Any

_KERNELS: dict[str, Any] | None = None
_FAILED = False
#: CPython's ``os.environ`` keeps the encoded environment in this dict (``os.environ.get``
#: decodes the key on every call, ~1 us; :func:`kernels` is asked several times an iteration)
_ENVIRON = getattr(os.environ, "_data", None)
_SWITCH = os.environ.encodekey("EMKIT_COMPILED") if hasattr(os.environ, "encodekey") else None
_OFF = os.environ.encodevalue("0") if hasattr(os.environ, "encodevalue") else None


def _switched_off() -> bool:
    """Whether ``EMKIT_COMPILED`` is ``0`` now."""
    if isinstance(_ENVIRON, dict) and _SWITCH is not None:
        return _ENVIRON.get(_SWITCH) == _OFF
    return os.environ.get("EMKIT_COMPILED", "1") == "0"


def available() -> bool:
    """Whether the compiled loops can be used: Numba imports and ``EMKIT_COMPILED`` is not
    ``0``."""
    return kernels() is not None


def kernels() -> dict[str, Any] | None:
    """The compiled functions by name (compiled lazily by Numba on first call), or None."""
    global _KERNELS, _FAILED
    if _switched_off():
        return None
    if _KERNELS is not None or _FAILED:
        return _KERNELS
    try:
        import numba  # noqa: F401  (first: a missing or broken Numba fails here)

        from emkit.models import _gaussian_loops
    except Exception:  # not installed, or broken against this NumPy
        _FAILED = True
        return None
    _KERNELS = _gaussian_loops.KERNELS
    return _KERNELS
