"""What a neural family is to the training engine: its networks, optimisers, objective and latent -> response.

A family implements ``build`` (the networks as one module), ``loss`` (the objective on a preprocessed batch)
and ``decode`` (latent noise -> preprocessed responses, also what ONNX export traces) or ``generate``;
adversarial families override ``train_step``/``val_loss`` and ``make_optimizers``. The loop itself (batches,
EMA, early stopping, checkpoints, logs, data parallel) is ``hepfastsim.train.Trainer``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Callable, ClassVar

import numpy as np
import torch

from hepfastsim.data.preprocessing import InverseResponse
from hepfastsim.data.samples import Samples
from hepfastsim.errors import HepFastSimError
from hepfastsim.models import options as opts
from hepfastsim.models.base import Generator
from hepfastsim.models.nets import mlp  # noqa: F401 - the families' building block, re-exported
from hepfastsim.rng import fresh_seed
from hepfastsim.train.distributed import average_gradients, broadcast_weights, pick_device
from hepfastsim.train.ema import ema_of

if TYPE_CHECKING:
    from torch.optim.swa_utils import AveragedModel

    from hepfastsim.models.calibration import QuantileCalibration
    from hepfastsim.train.engine import Trainer

# an extra training term (model, net, x, c, step) -> scalar, e.g. the ensemble's repulsion
Penalty = Callable[["TorchGenerator", torch.nn.Module, torch.Tensor, torch.Tensor, int], "torch.Tensor | float"]


class TorchGenerator(Generator):
    """A neural family: networks trained by the engine, sampled with their EMA weights."""

    Options: ClassVar[type[opts.Options]] = opts.TorchOptions

    def __init__(self, spec=None, **options) -> None:
        super().__init__(spec, **options)
        self.net_: torch.nn.Module | None = None
        self.ema_: AveragedModel | None = None
        self.optimizers_: dict[str, torch.optim.Optimizer] = {}
        self.epoch_ = 0
        self.calibration_: QuantileCalibration | None = None
        self.device = torch.device("cpu")
        self.rank, self.world = 0, 1
        # set by whoever trains this model as an ensemble member: applied to the built networks / added to the loss
        self.net_hooks: list[Callable[[torch.nn.Module], object]] = []
        self.penalties: list[Penalty] = []

    # family hooks -------------------------------------------------------------
    @abc.abstractmethod
    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        """The family's networks as one module (moved to the device and EMA-averaged by ``setup``)."""

    def prepare(self, train: Samples, seed: int) -> None:
        """Optional: called once per fit after the networks exist (e.g. to train a surrogate)."""

    def finish(self, train: Samples, seed: int, progress: bool) -> None:
        """Optional: called after the training loop with the best EMA weights (e.g. distillation)."""

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": torch.optim.AdamW(self.net_.parameters(), lr=self.config["lr"], weight_decay=self.config["weight_decay"])}

    def loss(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Training objective of single-optimiser families (random draws from gen when given)."""
        raise TypeError(f"{type(self).__name__} must implement loss() or override train_step() and val_loss()")

    def train_step(self, x: torch.Tensor, c: torch.Tensor, step: int) -> float:
        """One optimiser step on ``loss`` (+ any ``penalties``); adversarial families override this."""
        opt = self.optimizers_["main"]
        opt.zero_grad()
        loss = self.loss(self.net_, x, c)
        (loss + self.penalty(self.net_, x, c, step)).backward()
        self.optimizer_step("main", self.net_.parameters())
        return loss.item()

    @torch.no_grad()
    def val_loss(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor) -> float:
        """Validation loss with fixed random draws, so epochs compare like for like."""
        g = torch.Generator(device=x.device)
        g.manual_seed(0)
        return float(self.loss(net, x, c, g))

    def function_output(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """This family's function as ensemble members compare it: responses decoded from latent draws of gen;
        families without a cheap decoder override it."""
        return self.generate(net, c, gen)

    def decode(self, net: torch.nn.Module, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Deterministic (standardised conditions, latent) -> preprocessed responses; ONNX export traces this."""
        raise HepFastSimError(f"model family {self.family!r} has no latent decoder (no ONNX export)")

    def generate(self, net: torch.nn.Module, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Preprocessed responses for conditions c: Gaussian latent noise from gen through ``decode``."""
        z = torch.randn(len(c), self.latent_dim(), generator=gen, device=c.device)
        return self.decode(net, c, z)

    def latent_dim(self) -> int:
        """Size of the Gaussian latent vector that ``decode`` maps to a response."""
        return int(self.config["latent"])

    def onnx_graph(self) -> torch.nn.Module:
        if type(self).decode is TorchGenerator.decode:
            raise HepFastSimError(f"model family {self.family!r} has no latent decoder (no ONNX export)")
        return _Decoder(self)

    # what the engine and the families call --------------------------------------
    def penalty(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, step: int) -> torch.Tensor | float:
        """The sum of the extra training terms set on this model (0 without any)."""
        return sum((p(self, net, x, c, step) for p in self.penalties), 0.0)

    def optimizer_step(self, name: str, params) -> None:
        """Step optimiser ``name`` after averaging the gradients over the processes of a distributed run and
        optional clipping; every family steps through here."""
        params = [p for p in params if p.grad is not None]
        average_gradients(params, self.world)
        if self.config.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(params, float(self.config["grad_clip"]))
        self.optimizers_[name].step()

    def setup(self) -> None:
        """Build the networks on the device (identical on every process), their EMA copy and the optimisers."""
        self.device = pick_device(self.config["device"], self.rank)
        if self.config["threads"]:
            torch.set_num_threads(int(self.config["threads"]))
        self.net_ = self.build(self.x_tf_.n_out, self.c_tf_.n_out)
        for hook in self.net_hooks:
            hook(self.net_)
        self.net_ = self.net_.to(self.device)
        broadcast_weights(self.net_, self.world)
        self.ema_ = ema_of(self.net_, self.config["ema_decay"])
        self.optimizers_ = self.make_optimizers()

    def fit(self, train: Samples, val: Samples | None = None, *, trainer: Trainer | None = None) -> "TorchGenerator":
        """Train with the engine (early stopping on val); returns the model, its losses in ``history_``."""
        from hepfastsim.train.engine import Trainer

        return (trainer or Trainer()).run(self, train, val)

    @torch.no_grad()
    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """Responses for each condition row, in physical units (MeV), generated in batches with the EMA weights."""
        c = self._check_conditions(conditions)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed) if seed is not None else fresh_seed())
        net = self.ema_.module
        net.eval()
        ct = torch.from_numpy(self.c_tf_.forward(c))
        out = np.empty((len(c), self.spec.n_features), np.float32)
        for i in range(0, len(c), batch_size):
            cb = ct[i:i + batch_size].to(self.device)
            u = self.generate(net, cb, gen).float()
            if self.calibration_ is not None:
                u = self.calibration_(u, cb)
            out[i:i + batch_size] = self.x_tf_.inverse(u.cpu().numpy(), self._scale(c[i:i + batch_size]))
        return out

    def _extra_state(self) -> dict:
        return {
            "train_weights": self.net_.state_dict() if self.net_ else None,
            "ema_state": self.ema_.state_dict() if self.ema_ else None,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers_.items()},
            "epoch": self.epoch_,
            "calibration": None if self.calibration_ is None else
            {"args": self.calibration_.shape_args(), "tables": self.calibration_.state_dict()},
        }

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        if self.net_ is None or with_optim:
            self.setup()
        try:
            self.ema_.load_state_dict(state["ema_state"])
            weights = state["train_weights"]
            if weights is None:   # a slim checkpoint (sampling only): the EMA weights stand in for the training weights
                weights = {k.removeprefix("module."): v for k, v in state["ema_state"].items() if k.startswith("module.")}
            self.net_.load_state_dict(weights)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise HepFastSimError(f"checkpoint weights do not fit the {self.family!r} architecture: {str(exc).splitlines()[0]}") from None
        self.epoch_ = int(state.get("epoch", 0))
        cal = state.get("calibration")
        if cal is not None:
            from hepfastsim.models.calibration import QuantileCalibration

            self.calibration_ = QuantileCalibration(**cal["args"])
            self.calibration_.load_state_dict(cal["tables"])
            self.calibration_.to(self.device)
        if with_optim:
            for k, o in self.optimizers_.items():
                if k in state.get("optimizers", {}):
                    o.load_state_dict(state["optimizers"][k])


class _Decoder(torch.nn.Module):
    """(standardised conditions, latent) -> responses in physical units (MeV) with the EMA weights: the family's
    ``decode``, the calibration and the inverse preprocessing, all in the graph."""

    def __init__(self, model: TorchGenerator):
        super().__init__()
        self.model = model
        self.net = model.ema_.module
        self.calibration = model.calibration_
        self.inverse = InverseResponse(model.x_tf_, model.c_tf_, model.spec.scale_column)

    def preprocessed(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        u = self.model.decode(self.net, c, z)
        return u if self.calibration is None else self.calibration(u, c)

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.inverse(self.preprocessed(c, z), c)
