"""scikit-learn-style estimators on the EM engine (see :mod:`emkit.estimators.registry`)."""
