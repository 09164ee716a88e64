"""The shipped dataset-2 model's layer energies at 10 GeV against the built-in simulation, with the simulation's own
sample-to-sample spread beside them: what `tests/test_pretrained.py`'s 3 % per-layer check can resolve.

    .venv/bin/python benchmarks/pretrained_layers.py

Prints, for the layers holding >= 1 % of the energy: the relative error of the mean of 1500 simulated showers; the
ratio of two simulated samples (3000 showers, seed 99, over 1500, seed 11); the model's 6000 showers over the 4500
simulated ones together, with its statistical error.
"""

from __future__ import annotations

import numpy as np

from hepfastsim.fullsim import FullSim
from hepfastsim.models import load_generator


def main() -> None:
    model = load_generator("ds2")
    starts = [g[0] for g in model.spec.groups]
    layers = lambda x: np.add.reduceat(x, starts, axis=1)  # noqa: E731
    sim = FullSim(binning="ds2")
    a = layers(sim.run(np.full(1500, 10_000.0), "e-", seed=11).showers)
    b = layers(sim.run(np.full(3000, 10_000.0), "e-", seed=99).showers)
    g = layers(model.sample(np.full((6000, 1), 10_000.0), seed=77))
    big = a.mean(0) / 10_000.0 >= 0.01
    err = lambda x: x.std(0) / np.sqrt(len(x)) / x.mean(0)  # noqa: E731
    both = np.concatenate([a, b])
    np.set_printoptions(linewidth=120)
    print("layers:", np.flatnonzero(big))
    print("energy fraction:", np.round(both.mean(0)[big] / 10_000.0, 4))
    print("rel. error of the mean, 1500 simulated:", np.round(err(a)[big], 3))
    print("simulated 3000 (seed 99) / 1500 (seed 11):", np.round(b.mean(0)[big] / a.mean(0)[big], 3))
    print("model 6000 / simulated 4500:", np.round(g.mean(0)[big] / both.mean(0)[big], 3))
    print("  +-", np.round(np.hypot(err(both), err(g))[big], 3))


if __name__ == "__main__":
    main()
