"""The training loop of every neural family, assembled from the pieces of this package.

A family provides networks (``build``), optimisers, one optimisation step (``train_step``, by default a step on
its ``loss``) and a validation loss; the loop provides everything else: preprocessing, seeded batch order,
data-parallel sharding of each global batch, EMA weights, early stopping on the validation loss with the best
EMA weights kept, per-epoch checkpoints and resume, CSV/TensorBoard logs, a progress bar, a time budget and the
optional post-training calibration. The loop is written here rather than taken from PyTorch Lightning: it is
~100 lines, the adversarial families need two optimisers stepped at different rates and the
flow-matching family a distillation stage after training, which Lightning would impose manual
optimisation and its own checkpoint format on, and it keeps torch the only training dependency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from hepfastsim.data.samples import Samples, TaskSpec
from hepfastsim.errors import HepFastSimError
from hepfastsim.rng import isolated_torch_rng
from hepfastsim.train.budget import TimeBudget
from hepfastsim.train.checkpoint import read_checkpoint, write_checkpoint
from hepfastsim.train.distributed import init_process_group
from hepfastsim.train.early_stopping import EarlyStopping
from hepfastsim.train.ema import state_copy
from hepfastsim.train.logs import CsvLog, TensorBoardLog

if TYPE_CHECKING:
    from hepfastsim.models.options import CalibrationOptions


# options of the model being resumed that override the checkpoint's (all others are the checkpoint's)
BUDGET_OPTIONS = ("epochs", "patience", "time_limit_s")


@dataclass
class History:
    """Per-epoch losses of a fit (``model.history_``); seconds of training, distillation and calibration."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = -1
    stopped_early: bool = False


@dataclass
class Trainer:
    """How a model is trained, apart from its hyper-parameters: outputs and the post-training step.

    log_csv / tensorboard: per-epoch loss logs; checkpoint: written after every epoch (process 0); resume: a
    checkpoint of an interrupted fit to continue (its options, except the budget: epochs, patience,
    time_limit_s); calibration: quantile calibration after
    training; progress: a progress bar.
    """

    progress: bool = False
    log_csv: str | Path | None = None
    tensorboard: str | Path | None = None
    checkpoint: str | Path | None = None
    resume: str | Path | None = None
    calibration: CalibrationOptions | None = None

    def fit(self, model, train: Samples, val: Samples | None = None):
        """Train model (any family) on train, early-stopping on val; returns the model."""
        return model.fit(train, val, trainer=self)

    def for_member(self, k: int) -> "Trainer":
        """The trainer of ensemble member k: logs NAME.memberK.csv and TENSORBOARD/memberK."""
        return replace(self, log_csv=None if self.log_csv is None else Path(self.log_csv).with_suffix(f".member{k}.csv"),
                       tensorboard=None if self.tensorboard is None else Path(self.tensorboard) / f"member{k}")

    @isolated_torch_rng
    def run(self, model, train: Samples, val: Samples | None = None):
        """The loop for a neural family (``TorchGenerator``)."""
        if model.spec is None:
            raise HepFastSimError("a TaskSpec is needed to fit: pass spec= (e.g. hepfastsim.tasks.calo_spec(binning))")
        model.rank, model.world = init_process_group()
        seed = int(model.config["seed"])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)  # the same on every process: one global batch order
        stopper = EarlyStopping(int(model.config["patience"]))
        resumed = None
        if self.resume and Path(self.resume).exists():
            resumed = self._resume(model, stopper)
        else:
            model.fit_transforms(train)
            model.setup()
        epochs = int(model.config["epochs"])
        model.prepare(train, seed)
        xt = torch.from_numpy(model.x_tf_.forward(train.x, model._scale(train.c), rng))
        ct = torch.from_numpy(model.c_tf_.forward(train.c))
        xv = cv = None
        if val is not None and len(val):
            xv = torch.from_numpy(model.x_tf_.forward(val.x, model._scale(val.c), np.random.default_rng(seed + 1))).to(model.device)
            cv = torch.from_numpy(model.c_tf_.forward(val.c)).to(model.device)
        stopper.best_state = stopper.best_state or state_copy(model.ema_)
        bs = int(model.config["batch_size"])
        step = model.epoch_ * ((len(xt) + bs - 1) // bs)   # optimiser steps so far (the GAN's n_critic counts them)
        if resumed:   # continue exactly where the interrupted fit stopped: its batch order, random draws and step
            rng.bit_generator.state = resumed["numpy_rng"]
            torch.set_rng_state(resumed["torch_rng"])
            if resumed.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(resumed["cuda_rng"])
            step, stopper.bad = int(resumed["step"]), int(resumed["bad"])
        main = model.rank == 0
        logs = self._logs() if main else []
        budget = TimeBudget(float(model.config["time_limit_s"]), model.world)
        bar = tqdm(range(model.epoch_, epochs), desc=f"train {model.family}", disable=not (self.progress and main), unit="epoch")
        try:
            for ep in bar:
                tl, step = self._epoch(model, xt, ct, rng, step)
                model.ema_.eval()
                vl = model.val_loss(model.ema_.module, xv, cv) if xv is not None else tl
                model.epoch_ = ep + 1
                h = model.history_
                h.epochs.append(model.epoch_)
                h.train_loss.append(tl)
                h.val_loss.append(vl)
                for log in logs:
                    log.write(model.epoch_, tl, vl, budget.elapsed())
                bar.set_postfix(train=f"{tl:.4g}", val=f"{vl:.4g}")
                if stopper.update(vl, model.epoch_, lambda: state_copy(model.ema_)):
                    h.best_epoch = model.epoch_
                if self.checkpoint and main:
                    write_checkpoint({**model.state_dict(), "best_ema_state": stopper.best_state, "trainer_state": {
                        "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "step": step,
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                        "bad": stopper.bad}}, self.checkpoint)
                if stopper.should_stop:
                    h.stopped_early = True
                    break
                if budget.spent():
                    break
        finally:
            for log in logs:
                log.close()
        model.ema_.load_state_dict(stopper.best_state)
        model.history_.seconds += budget.elapsed()
        model.finish(train, seed=seed, progress=self.progress and main)
        model.calibration_ = None   # a calibration of earlier weights (resumed checkpoint) no longer applies
        if self.calibration is not None:
            from hepfastsim.models.calibration import calibrate

            t0 = time.perf_counter()
            calibrate(model, train, self.calibration, seed=seed)
            model.history_.seconds += time.perf_counter() - t0
        return model

    @staticmethod
    def _epoch(model, xt: torch.Tensor, ct: torch.Tensor, rng: np.random.Generator, step: int) -> tuple[float, int]:
        """One pass over the training set in the seeded global batch order (a last batch under half a batch is
        dropped); this process takes its share of every batch. Returns the mean training loss and the step count."""
        model.net_.train()
        bs = int(model.config["batch_size"])
        perm = torch.from_numpy(rng.permutation(len(xt)))
        losses = []
        for i in range(0, len(xt) - bs // 2, bs):
            idx = perm[i:i + bs][model.rank::model.world]
            losses.append(model.train_step(xt[idx].to(model.device), ct[idx].to(model.device), step))
            model.ema_.update_parameters(model.net_)
            step += 1
        return (float(np.mean(losses)) if losses else float("nan")), step

    def _resume(self, model, stopper: EarlyStopping) -> dict | None:
        """Continue the fit a checkpoint describes: its options, preprocessing, weights, optimisers, history and
        best weights so far; returns the loop's own state (random generators, step, epochs without improvement),
        None for a checkpoint written after training."""
        state = read_checkpoint(self.resume)
        if state.get("slim"):
            raise HepFastSimError(f"{self.resume} is a slim checkpoint (sampling weights only): training cannot resume from it")
        if state["family"] != model.family:
            raise HepFastSimError(f"{self.resume} holds a {state['family']!r} model, cannot resume it as {model.family!r}")
        budget = {k: model.config[k] for k in BUDGET_OPTIONS}   # how much longer to train is the caller's choice
        model.spec, model.config = TaskSpec.from_dict(state["spec"]), {**state["config"], **budget}
        model.load_state(state, with_optim=True)
        if model.history_.val_loss:
            stopper.best, stopper.best_epoch = min(model.history_.val_loss), model.history_.best_epoch
        stopper.best_state = state.get("best_ema_state")
        return state.get("trainer_state")

    def _logs(self) -> list:
        logs = []
        if self.log_csv:
            logs.append(CsvLog(self.log_csv, append=bool(self.resume)))
        if self.tensorboard:
            logs.append(TensorBoardLog(self.tensorboard))
        return logs
