"""Saving and loading fitted estimators without pickle: ``est.save(path)`` and
``emkit.load(path)``.

This module is the public face of emkit's model files. The format and its checks live in
:mod:`emkit.estimators.modelfile`, with the estimators, so that
:meth:`EMEstimator.save <emkit.estimators.base.EMEstimator.save>` calls the same code without
importing this module; the estimator classes a file may name come from the one
registry, :mod:`emkit.estimators.registry`.

* :func:`save` writes an estimator's settings and fitted parameters (never its training data)
  to a ZIP archive of JSON and ``.npy`` files; :func:`load` reads it back and can never run
  code from the file.
* :func:`register_estimator` makes a user's own estimator class loadable.

See :mod:`emkit.estimators.modelfile` for the file format.
"""

from __future__ import annotations

from emkit.estimators.modelfile import FORMAT_NAME, FORMAT_VERSION, JSON_NAME, load, save
from emkit.estimators.registry import ESTIMATORS, register_estimator

__all__ = ["save", "load", "register_estimator", "ESTIMATORS", "FORMAT_NAME", "FORMAT_VERSION", "JSON_NAME"]
