"""Layer-wise flow matching (models/layer_fm.py): layout, preprocessing, and that the shape model carries the
shower from one layer to the next."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepfastsim.data.samples import Samples, TaskSpec
from hepfastsim.models import get_family
from hepfastsim.models.layer_fm import _LayerFM, layer_index

GROUPS = ((0, 8), (8, 16), (16, 24), (24, 32))


def toy_spec(groups=GROUPS, threshold: float = 0.01) -> TaskSpec:
    n = groups[-1][1]
    return TaskSpec(task="calo", n_features=n, condition_names=("energy_MeV",), geometry_id="toy", geometry_name="toy",
                    scale_column=0, log_conditions=(True,), threshold=threshold, groups=groups)


def toy_showers(n: int, seed: int) -> Samples:
    """Four layers of 8 cells; each shower deposits around one cell k, random per shower and the same in every
    layer (a shower axis), layer fractions 0.2 / 0.4 / 0.3 / 0.1 of the incident energy with 10 % fluctuations."""
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(3, 4, n)
    k = rng.integers(0, 8, n)
    x = np.zeros((n, 32), np.float32)
    for g, f in enumerate((0.2, 0.4, 0.3, 0.1)):
        el = f * e * rng.normal(1.0, 0.1, n).clip(0.5)
        for d, w in ((-1, 0.15), (0, 0.7), (1, 0.15)):
            x[np.arange(n), 8 * g + (k + d) % 8] += (w * el).astype(np.float32)
    return Samples(x, e.reshape(-1, 1))


def test_split_and_join_are_inverse_for_layers_of_different_size():
    groups = ((0, 3), (3, 8), (8, 10))
    net = _LayerFM(layer_index(groups), 1, 8, 1, 8)
    u = torch.randn(5, 10 + 3)
    e, y = net.split(u)
    assert y.shape == (5, 3, 5) and torch.equal(e, u[:, -3:])
    assert torch.all(y[:, 0, 3:] == 0) and torch.all(y[:, 2, 2:] == 0)   # pads are zero
    assert torch.equal(y[:, 1], u[:, 3:8])
    assert torch.equal(net.join(e, y), u)


def test_preprocessing_puts_the_hit_boundary_at_the_same_place_at_every_energy():
    """Cells in units of the threshold: a cell at 1.5 x threshold maps to the same value in a 1 GeV and a 1 TeV shower;
    forward then inverse gives the showers back (cells below threshold are zero, layers rescaled to their energy)."""
    spec = toy_spec(threshold=0.01)
    data = toy_showers(400, 0)
    data.x[:, 5] = 0.015
    data.c[:200, 0], data.c[200:, 0] = 1e3, 1e6
    model = get_family("layer_fm")(spec)
    model.fit_transforms(data)
    u = model.x_tf_.forward(data.x, model._scale(data.c))
    assert np.allclose(u[:200, 5], u[200:, 5])
    back = model.x_tf_.inverse(u, model._scale(data.c))
    assert np.allclose(back, data.x, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_each_layer_follows_the_one_before():
    """The shower axis (the cell holding most energy) is the same in every layer of the data. Conditioned on the
    previous layer the shape model keeps it from layer to layer; a model of each layer alone would agree with the
    previous layer by chance, 1/8 of the time. The mean layer energies are the data's within 10 %."""
    spec = toy_spec()
    train = toy_showers(3000, 1)
    model = get_family("layer_fm")(spec, epochs=40, hidden=128, layers=2, energy_hidden=64, batch_size=100,
                                   lr=2e-3, ema_decay=0.99, threads=1, steps=8).fit(train)
    test = toy_showers(1000, 2)
    x = model.sample(test.c, seed=3)
    axis = x.reshape(len(x), 4, 8).argmax(2)
    agree = float(np.mean(axis[:, 1:] == axis[:, :-1]))
    assert agree > 0.7, agree
    layer_mean = (x.reshape(len(x), 4, 8).sum(2) / test.c).mean(0)
    assert np.allclose(layer_mean, (0.2, 0.4, 0.3, 0.1), rtol=0.1), layer_mean


def test_slim_checkpoint_samples_the_same_and_refuses_to_resume(tmp_path):
    from hepfastsim.errors import HepFastSimError
    from hepfastsim.models import load_generator
    from hepfastsim.train import Trainer

    model = get_family("layer_fm")(toy_spec(), epochs=2, hidden=32, layers=1, energy_hidden=16, threads=1).fit(toy_showers(300, 4))
    full, slim = model.save(tmp_path / "full.pt"), model.save(tmp_path / "slim.pt", slim=True)
    assert slim.stat().st_size < 0.6 * full.stat().st_size
    c = toy_showers(50, 5).c
    assert np.array_equal(load_generator(slim).sample(c, seed=1), load_generator(full).sample(c, seed=1))
    with pytest.raises(HepFastSimError, match="slim checkpoint"):
        Trainer(resume=slim).fit(get_family("layer_fm")(toy_spec(), epochs=3), toy_showers(300, 4))


def test_a_layer_with_energy_but_no_cell_above_threshold_keeps_its_energy_in_its_largest_cell():
    from hepfastsim.data.preprocessing import ResponseTransform

    data = toy_showers(200, 6)
    scale = np.full(len(data.x), 0.01)
    for fill in (False, True):
        tf = ResponseTransform(eps=1.0, threshold=0.01, groups=GROUPS, dequantize=True, fill_empty_groups=fill)
        tf.fit(data.x, scale)
        u = tf.forward(data.x[:3], scale[:3])
        u[:, 8:16] = ((np.log(1.2) - tf.mean[8:16]) / tf.std[8:16]).astype(np.float32)   # layer 1: every cell at 0.2 x threshold
        u[:, 9] = ((np.log(1.5) - tf.mean[9]) / tf.std[9]).astype(np.float32)            # ... cell 9 the largest
        x = tf.inverse(u, scale[:3])
        if fill:
            assert np.allclose(x[:, 9], data.x[:3, 8:16].sum(1), rtol=1e-3) and np.all(x[:, [8, *range(10, 16)]] == 0)
        else:
            assert np.all(x[:, 8:16] == 0)
