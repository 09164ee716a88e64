"""Ensembles: K generators of one family trained with different seeds, for a systematic uncertainty.

Neural members can also differ by a fixed dropout mask each (option ``fixed_dropout``; member k's mask is drawn
from seed + k, ``FixedMask``) and be trained with a function-space repulsion from the members before them
(option ``repulsion``, annealed to 0 over ``repulsion_epochs``; ``Repulsion``), which widens the ensemble where
the data allow it. Both are the ensemble's: a family knows nothing of them.

With ``bootstrap: true`` each member is trained (and calibrated) on its own bootstrap resample of
the training set (as many showers, drawn with replacement, rng seed + k): the band then also carries
the statistical uncertainty of the finite training sample, which the members otherwise share; the
calibration in particular maps every member onto the same training marginals.

``sample`` draws from the ensemble mixture (each response from a randomly chosen member, whose
index ``last_members`` keeps, so ``generate`` can record it); ``evaluate`` turns the members'
histograms into a band (the members' 68 % prediction interval, ``validation/ensemble.py``) on every observable and reports how often it
covers the reference. Options: ``base`` (the family), ``members`` (K), ``bootstrap``, ``options`` (the
family's own options, e.g. from its YAML config), ``fixed_dropout``, ``repulsion``, ``repulsion_epochs``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from hepfastsim.data.samples import Samples, TaskSpec
from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Generator, get_family, upgrade_state
from hepfastsim.models.neural import TorchGenerator

_ACTIVATIONS = (torch.nn.SiLU, torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.GELU, torch.nn.ELU, torch.nn.Tanh)


class FixedMask(torch.nn.Module):
    """A dropout mask drawn once (from seed) and kept for good: the unit subset of one ensemble member.

    The kept units are scaled by 1/(1-p) as in dropout. The mask is a function of (seed, width) only, so a
    checkpoint needs no extra state and an ONNX export contains it as a constant.
    """

    def __init__(self, p: float, seed: int):
        super().__init__()
        self.p, self.seed = p, seed
        self._mask: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self._mask is None or self._mask.shape[0] != h.shape[-1] or self._mask.device != h.device:
            g = torch.Generator().manual_seed(self.seed)
            keep = torch.rand(h.shape[-1], generator=g) >= self.p
            keep[torch.randint(0, h.shape[-1], (1,), generator=g)] = True   # never a dead layer
            self._mask = (keep.float() / (1.0 - self.p)).to(h.device)
        return h * self._mask


def apply_fixed_masks(net: torch.nn.Module, p: float, seed: int) -> int:
    """Follow every hidden activation of net by a FixedMask (each its own seed derived from seed); returns how many."""
    count = 0

    def visit(module: torch.nn.Module) -> None:
        nonlocal count
        for name, child in module.named_children():
            if isinstance(child, _ACTIVATIONS):
                setattr(module, name, torch.nn.Sequential(child, FixedMask(p, seed * 1000 + count)))
                count += 1
            else:
                visit(child)

    visit(net)
    return count


class Repulsion:
    """Function-space repulsion from earlier members (repulsive deep ensembles, D'Angelo & Fortuin 2021), a
    training penalty of one member: lambda(epoch) * mean over members j and batch rows of exp(-d_j / h), d_j the
    mean squared difference of this member's ``function_output`` and member j's (EMA weights) on the same
    draws, h its batch median (median heuristic). Lowering it pushes this member's distribution away from the
    others; lambda decays linearly from ``strength`` to 0 over ``epochs``."""

    def __init__(self, others: list[TorchGenerator], strength: float, epochs: int):
        self.others, self.strength, self.epochs = others, strength, epochs

    def __call__(self, model: TorchGenerator, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor,
                 step: int) -> torch.Tensor | float:
        lam = self.strength * max(0.0, 1.0 - model.epoch_ / max(self.epochs, 1))
        if not self.others or lam <= 0:
            return 0.0
        g = torch.Generator(device=x.device)
        g.manual_seed(step)
        mine = model.function_output(net, x, c, g)
        total = 0.0
        for other in self.others:
            g.manual_seed(step)
            with torch.no_grad():
                theirs = other.function_output(other.ema_.module, x, c, g)
            d = ((mine - theirs) ** 2).mean(1)
            total = total + torch.exp(-d / (d.detach().median() + 1e-12)).mean()
        return lam * total / len(self.others)


class Ensemble(Generator):
    family: ClassVar[str] = "ensemble"

    def __init__(self, spec=None, **config) -> None:
        super().__init__(spec, **config)
        if self.config["base"] == "ensemble":
            raise HepFastSimError("an ensemble of ensembles is not supported")
        self.member_class = get_family(self.config["base"])  # unknown family -> clear error now, not after training
        if not issubclass(self.member_class, TorchGenerator) and (self.config["fixed_dropout"] or self.config["repulsion"]):
            raise HepFastSimError(f"fixed_dropout and repulsion need a neural family, not {self.config['base']!r}")
        self.members_: list[Generator] = []
        self.mask_seeds_: list[int] = []
        self.last_members: np.ndarray | None = None

    def _member(self, k: int, mask_seed: int) -> Generator:
        """Member k, untrained (seed: the ensemble's + k), with its fixed dropout mask if any."""
        opts = {**self.config["options"], "seed": self.config["seed"] + k}
        m = self.member_class(self.spec, **opts)
        p = float(self.config["fixed_dropout"])
        if p > 0:
            m.net_hooks.append(lambda net: apply_fixed_masks(net, p, mask_seed))
        return m

    def fit(self, train: Samples, val: Samples | None = None, *, trainer=None) -> "Ensemble":
        """Train the members one after the other (logs NAME.memberK.csv, TensorBoard events in TENSORBOARD/memberK).
        An ensemble trains in one go: resume and per-epoch checkpoints are refused rather than silently ignored."""
        from hepfastsim.train.engine import Trainer

        trainer = trainer or Trainer()
        if trainer.resume or trainer.checkpoint:
            raise HepFastSimError("an ensemble cannot resume or write per-epoch checkpoints; train it in one go "
                                  "(its members are saved together at the end)")
        self.members_, seed = [], int(self.config["seed"])
        self.mask_seeds_ = [seed + k for k in range(int(self.config["members"]))]
        for k, mask_seed in enumerate(self.mask_seeds_):
            m = self._member(k, mask_seed)
            if float(self.config["repulsion"]) > 0:
                m.penalties.append(Repulsion(list(self.members_), float(self.config["repulsion"]),
                                             int(self.config["repulsion_epochs"])))
            data = train
            if self.config["bootstrap"]:
                idx = np.random.default_rng(seed + k).integers(0, len(train), len(train))
                data = Samples(train.x[idx], train.c[idx])
            trainer.for_member(k).fit(m, data, val)
            if isinstance(m, TorchGenerator):
                m.penalties = []
            self.members_.append(m)
            self.history_.seconds += m.history_.seconds
        self.x_tf_, self.c_tf_ = self.members_[0].x_tf_, self.members_[0].c_tf_
        self.domain_ = self.members_[0].domain_
        return self

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """The mixture: each row from a random member (which one is kept in ``last_members``)."""
        c = self._check_conditions(conditions)
        for m in self.members_:
            m.extrapolate = self.extrapolate
        rng = np.random.default_rng(seed)
        who = rng.integers(0, len(self.members_), len(c))
        out = np.empty((len(c), self.spec.n_features), np.float32)
        for k, m in enumerate(self.members_):
            idx = np.flatnonzero(who == k)
            if len(idx):
                out[idx] = m.sample(c[idx], batch_size=batch_size, seed=None if seed is None else seed + 1 + k)
        self.last_members = who.astype(np.int32)
        return out

    def _extra_state(self) -> dict:
        return {"members": [m.state_dict() for m in self.members_], "mask_seeds": self.mask_seeds_}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.mask_seeds_ = [int(s) for s in state.get("mask_seeds", range(len(state["members"])))]
        self.members_ = []
        for k, (s, mask_seed) in enumerate(zip(state["members"], self.mask_seeds_)):
            s = upgrade_state(s)
            m = self._member(k, mask_seed)
            m.spec, m.config = TaskSpec.from_dict(s["spec"]), s["config"]
            m.load_state(s)
            self.members_.append(m)
