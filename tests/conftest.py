"""Shared fixtures: the CaloChallenge XMLs from ../shared, and small simulated samples (session cached)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
XML_DIR = SHARED / "data" / "calochallenge"
TPC_DIR = SHARED / "data" / "tpc_mpd"


@pytest.fixture(scope="session")
def fullsim_demo():
    from hepfastsim.fullsim import FullSim

    return FullSim(binning="demo")


@pytest.fixture(scope="session")
def demo_samples(fullsim_demo):
    """Two independent full-simulation samples of 5000 electrons, 1-10 GeV log-uniform, demo readout."""
    rng = np.random.default_rng(42)
    e1 = np.exp(rng.uniform(np.log(1000), np.log(10000), 5000))
    e2 = np.exp(rng.uniform(np.log(1000), np.log(10000), 5000))
    a = fullsim_demo.run(e1, "e-", seed=101).dataset()
    b = fullsim_demo.run(e2, "e-", seed=202).dataset()
    return a, b
