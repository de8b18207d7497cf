"""Data with named fields: the row-aligned arrays a model works on."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from emkit.core.data import Data, row_weights, take_rows


def test_fields_are_found_by_name_and_position():
    x, w = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0])
    d = Data(("X", "sample_weight"), (x, w))
    assert d.X is x and d.sample_weight is w and d[0] is x and d.get("trials") is None
    assert d.position("sample_weight") == 1 and row_weights(d) is w
    assert row_weights((x, w)) is None  # a plain tuple has no names
    with pytest.raises(AttributeError, match="no field 'trials'"):
        d.trials


def test_rows_keep_their_names_through_slicing_and_pickle():
    d = Data(("X", "sample_weight"), (np.arange(10.0), None))
    part = take_rows(d, slice(2, 5))
    assert isinstance(part, Data) and part.fields == ("X", "sample_weight")
    np.testing.assert_array_equal(part.X, [2.0, 3.0, 4.0])
    again = pickle.loads(pickle.dumps(d))
    assert again.fields == d.fields and again.sample_weight is None
    assert d.replace(sample_weight=np.ones(10)).sample_weight.sum() == 10


def test_names_and_arrays_must_pair_up():
    with pytest.raises(ValueError, match="2 field name"):
        Data(("X", "sample_weight"), (np.ones(3),))
