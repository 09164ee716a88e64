"""Issue: architecture — every family gives the seeded outputs it gave before the training engine moved out of
the model base class (reference written by tests/make_golden.py from the code before the move)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from golden_cases import CASES, run_case

GOLDEN = Path(__file__).parent / "data" / "golden_samples.npz"


@pytest.mark.parametrize("name", sorted(CASES))
def test_seeded_outputs_unchanged(name):
    ref = np.load(GOLDEN)
    got = run_case(name)
    np.testing.assert_array_equal(got["val_loss"], ref[f"{name}/val_loss"])
    np.testing.assert_array_equal(got["x"], ref[f"{name}/x"])
