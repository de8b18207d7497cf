"""What every mixture-type estimator shares: prediction, scores and information criteria.

Subclasses (``BinomialMixture``, ``PoissonMixture``, ``GaussianMixture``, ...) give
``_make_model``, ``_make_data(X, sample_weight=None, fitting=...)`` and ``_init_params``; the model
must be a :class:`~emkit.models.base.DiscreteLatentModel` with ``n_parameters(params)`` and
``sample(params, n, rng) -> (data tuple, labels)``
(the estimators' ``sample`` returns ``(X, labels)``).
"""

from __future__ import annotations

import numpy as np

from emkit.core.arrays import get_namespace, to_numpy
from emkit.core.validation import check_random_state
from emkit.estimators.base import EMEstimator
from emkit.models.base import logsumexp_rows


class MixtureEstimator(EMEstimator):
    """Base class of finite-mixture estimators (scikit-learn's mixture API on the EM engine)."""

    def fit(self, X, y=None, sample_weight=None):
        """Fit by EM. ``y`` is ignored (scikit-learn convention)."""
        return super().fit(X, sample_weight=sample_weight)

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _log_joint(self, X):
        self._check_fitted()
        data = self._make_data(X, fitting=False)
        return self.model_.log_joint(data, self.params_), data

    def score_samples(self, X):
        """Log-likelihood of each row (marginal over the components)."""
        lj, _ = self._log_joint(X)
        return logsumexp_rows(lj, get_namespace(lj))

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per row (weighted by ``sample_weight`` when given)."""
        ll = to_numpy(self.score_samples(X))
        if sample_weight is None:
            return float(np.mean(ll))
        w = np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * ll) / np.sum(w))

    def predict_proba(self, X):
        """Posterior probability of each component for each row, shape (n_rows, n_components)."""
        lj, _ = self._log_joint(X)
        xp = get_namespace(lj)
        return xp.exp(lj - logsumexp_rows(lj, xp)[:, None])

    def predict(self, X):
        """Most probable component of each row."""
        lj, _ = self._log_joint(X)
        return get_namespace(lj).argmax(lj, axis=1)

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw from the fitted generative process: a component, then a value from it.

        Returns ``(X, labels)``.
        """
        self._check_fitted()
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        return self.model_.sample(self.params_, int(n_samples), rng)

    def _n_parameters(self) -> int:
        """Free parameters of the fitted model, not counting groups held fixed."""
        return int(self.model_.n_parameters(self.params_, fixed=tuple(self.fixed or ())))

    def _total_loglik(self, X, sample_weight=None):
        ll = to_numpy(self.score_samples(X))
        w = np.ones_like(ll) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * ll)), float(np.sum(w))

    def bic(self, X, sample_weight=None) -> float:
        """Bayesian information criterion, -2 log L + p log n (lower is better; this is
        scikit-learn's sign, the opposite of R mclust's)."""
        ll, n = self._total_loglik(X, sample_weight)
        return -2.0 * ll + self._n_parameters() * np.log(n)

    def aic(self, X, sample_weight=None) -> float:
        """Akaike information criterion, -2 log L + 2 p (lower is better)."""
        ll, _ = self._total_loglik(X, sample_weight)
        return -2.0 * ll + 2.0 * self._n_parameters()

    def icl(self, X, sample_weight=None) -> float:
        """Integrated completed likelihood (Biernacki et al. 2000) in BIC form:
        BIC + 2 * sum_i entropy of row i's responsibilities (lower is better)."""
        resp = np.clip(to_numpy(self.predict_proba(X)), 1e-300, 1.0)
        ent = -np.sum(resp * np.log(resp), axis=1)
        w = np.ones(len(ent)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return self.bic(X, sample_weight) + 2.0 * float(np.sum(w * ent))
