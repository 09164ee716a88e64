"""Ensembles: K generators of one family trained with different seeds, for a systematic uncertainty.

Neural members can also differ by a fixed dropout mask each (option ``fixed_dropout`` in the
family's ``options``; member k uses mask seed seed + k) and be trained with a repulsion from the
members before them (option ``repulsion``, annealed to 0 over ``repulsion_epochs``; see
``TorchGenerator.repulsion_term``), which widens the ensemble where the data allow it.

With ``bootstrap: true`` each member is trained (and calibrated) on its own bootstrap resample of
the training set (as many showers, drawn with replacement, rng seed + k): the band then also carries
the statistical uncertainty of the finite training sample, which the members otherwise share; the
calibration in particular maps every member onto the same training marginals.

``sample`` draws from the ensemble mixture (each response from a randomly chosen member, whose
index ``last_members`` keeps, so ``generate`` can record it); ``evaluate`` turns the members'
histograms into a band (the members' 68 % prediction interval, ``validation/ensemble.py``) on every observable and reports how often it
covers the reference. Options: ``base`` (the family), ``members`` (K), ``bootstrap``, ``options`` (the
family's own options, e.g. from its YAML config).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Generator, Samples, TrainLog, get_family


class Ensemble(Generator):
    family: ClassVar[str] = "ensemble"
    defaults: ClassVar[dict] = {"base": "fm", "members": 3, "bootstrap": False, "options": {}}

    def __init__(self, spec=None, **config) -> None:
        super().__init__(spec, **config)
        if int(self.config["members"]) < 2:
            raise HepFastSimError("an ensemble needs at least 2 members")
        if self.config["base"] == "ensemble":
            raise HepFastSimError("an ensemble of ensembles is not supported")
        get_family(self.config["base"])  # unknown family -> clear error now, not after training
        self.members: list[Generator] = []
        self.last_members: np.ndarray | None = None

    def fit(self, train: Samples, val: Samples | None = None, *, epochs: int | None = None, seed: int = 0,
            progress: bool = True, log_csv: str | Path | None = None, resume=None, checkpoint=None,
            tensorboard: str | Path | None = None) -> "Generator":
        """Train the members one after the other with seeds seed, seed + 1, ... (loss logs NAME.memberK.csv,
        TensorBoard events in TENSORBOARD/memberK). An ensemble trains in one go: resume and per-epoch
        checkpoints are refused rather than silently ignored."""
        if resume or checkpoint:
            raise HepFastSimError("an ensemble cannot resume or write per-epoch checkpoints; train it in one go "
                                  "(its members are saved together at the end)")
        klass = get_family(self.config["base"])
        self.members = []
        for k in range(int(self.config["members"])):
            opts = dict(self.config["options"])
            if float(opts.get("fixed_dropout") or 0.0) > 0:
                opts["mask_seed"] = seed + k            # each member its own fixed dropout mask
            m = klass(self.spec, **opts)
            m.repel_from = list(self.members) if float(opts.get("repulsion") or 0.0) > 0 else []
            csv = None if log_csv is None else Path(log_csv).with_suffix(f".member{k}.csv")
            data = train
            if self.config["bootstrap"]:
                idx = np.random.default_rng(seed + k).integers(0, len(train), len(train))
                data = Samples(train.x[idx], train.c[idx])
            board = None if tensorboard is None else Path(tensorboard) / f"member{k}"
            m.fit(data, val, epochs=epochs, seed=seed + k, progress=progress, log_csv=csv, tensorboard=board)
            m.repel_from = []
            self.members.append(m)
            self.log.seconds += m.log.seconds
        self.x_tf, self.c_tf = self.members[0].x_tf, self.members[0].c_tf
        return self

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """The mixture: each row from a random member (which one is kept in ``last_members``)."""
        c = self._check_conditions(conditions)
        rng = np.random.default_rng(seed)
        who = rng.integers(0, len(self.members), len(c))
        out = np.empty((len(c), self.spec.n_features), np.float32)
        for k, m in enumerate(self.members):
            idx = np.flatnonzero(who == k)
            if len(idx):
                out[idx] = m.sample(c[idx], batch_size=batch_size, seed=None if seed is None else seed + 1 + k)
        self.last_members = who.astype(np.int32)
        return out

    def _extra_state(self) -> dict:
        return {"members": [m.state_dict() for m in self.members]}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        self.members = [Generator.from_state(s) for s in state["members"]]
