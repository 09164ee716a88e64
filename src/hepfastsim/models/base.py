"""The generator interface, the shared training loop, EMA weights and checkpoints.

A family is one file: a subclass of ``Generator`` (non-neural, like the shower library,
implementing ``fit`` and ``sample``) or of ``TorchGenerator`` that implements ``build`` (the
networks), ``loss`` (the training objective on a preprocessed batch) and either ``decode``
(latent noise -> preprocessed responses; also what ONNX export traces) or ``generate``.
Adversarial families override ``train_step``/``val_loss`` instead of ``loss``. Everything else
(preprocessing, batching, EMA, early stopping, resumable checkpoints, progress bar, CSV loss
log, seeds) lives here once.
"""

from __future__ import annotations

import abc
import pickle
import csv
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from hepfastsim import __version__
from hepfastsim.data.preprocessing import ConditionTransform, InverseResponse, ResponseTransform
from hepfastsim.data.samples import Samples, TaskSpec  # noqa: F401 - re-exported: the data layer defines them
from hepfastsim.errors import HepFastSimError
from hepfastsim.rng import fresh_seed, isolated_torch_rng
from hepfastsim.fileio import atomic_output

if TYPE_CHECKING:
    from hepfastsim.models.calibration import QuantileCalibration

FAMILIES: dict[str, type[Generator]] = {}


@dataclass
class TrainLog:
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = -1
    stopped_early: bool = False


def _checked_option(family: str, key: str, value, default):
    """An option value of the type of its default (int, float, bool, str; int accepted for float): one-line error
    naming the option otherwise. Options whose default is None or a container are checked by the family."""
    kind = type(default)
    if default is None or kind not in (int, float, bool, str):
        return value
    if kind in (bool, str):
        ok = isinstance(value, kind)
    else:  # a bool is an int to Python, not a number of epochs or a learning rate
        ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if not ok:
        raise HepFastSimError(f"option {key!r} of model {family!r} must be {kind.__name__}, got {value!r}")
    if kind in (int, float):
        if not np.isfinite(value):
            raise HepFastSimError(f"option {key!r} of model {family!r} must be finite, got {value!r}")
        if value < 0 or (key in POSITIVE_OPTIONS and value == 0):
            bound = "> 0" if key in POSITIVE_OPTIONS else ">= 0"
            raise HepFastSimError(f"option {key!r} of model {family!r} must be {bound}, got {value!r}")
        if key in FRACTION_OPTIONS and value > 1:
            raise HepFastSimError(f"option {key!r} of model {family!r} must be <= 1, got {value!r}")
    return float(value) if kind is float else value


# numeric options are >= 0; these must be > 0, and these at most 1
POSITIVE_OPTIONS = {"epochs", "batch_size", "lr", "hidden", "layers", "patience", "members", "steps", "latent",
                    "transforms", "n_critic", "k", "per_bin", "student_hidden", "student_layers", "calibration_bins",
                    "calibration_samples"}
FRACTION_OPTIONS = {"ema_decay", "fixed_dropout"}


class Generator(abc.ABC):
    """Base class: one interface for every family (scikit-learn style)."""

    family: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}                     # options of one family
    # options every family of this kind accepts: eps None = the task's; group_energies: model the layer energies
    # as variables of their own (see ResponseTransform)
    # dequantize: train on sub-threshold cells replaced by uniform noise below the threshold (see ResponseTransform)
    common_defaults: ClassVar[dict] = {"eps": None, "group_energies": False, "dequantize": False}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.family:
            FAMILIES[cls.family] = cls

    def __init__(self, spec: TaskSpec | None = None, **config) -> None:
        allowed = {**self.common_defaults, **self.defaults}
        unknown = set(config) - set(allowed)
        if unknown:
            raise HepFastSimError(f"unknown option(s) for model {self.family!r}: {sorted(unknown)}")
        self.config = {**allowed, **{k: _checked_option(self.family, k, v, allowed[k]) for k, v in config.items()}}
        self.spec = spec
        self.x_tf: ResponseTransform | None = None
        self.c_tf: ConditionTransform | None = None
        self.log = TrainLog()

    @property
    def condition_names(self) -> tuple[str, ...]:
        return self.spec.condition_names if self.spec else ()

    # -- preprocessing shared by all families
    def _scale(self, c: np.ndarray) -> np.ndarray:
        col = self.spec.scale_column
        return np.ones(len(c)) if col is None else np.asarray(c, np.float64)[:, col]

    def _fit_transforms(self, data: Samples) -> None:
        eps = self.spec.eps if self.config["eps"] is None else float(self.config["eps"])
        groups = self.spec.groups if self.config.get("group_energies") else ()
        self.x_tf = ResponseTransform(eps=eps, threshold=self.spec.threshold, groups=groups,
                                      dequantize=bool(self.config.get("dequantize"))).fit(data.x, self._scale(data.c))
        self.c_tf = ConditionTransform(self.spec.log_conditions, names=self.spec.condition_names,
                                       fraction_columns=self.spec.fraction_conditions).fit(data.c)

    def _check_conditions(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, np.float64)
        if c.ndim == 1:
            c = c.reshape(-1, 1)
        if self.spec is None or self.x_tf is None:
            raise HepFastSimError("the model is not trained: call fit() or load a checkpoint")
        if c.shape[1] != len(self.spec.condition_names):
            raise HepFastSimError(f"model needs {len(self.spec.condition_names)} conditions {self.spec.condition_names}, got {c.shape[1]}")
        if not np.all(np.isfinite(c)):
            raise HepFastSimError("conditions contain NaN or inf")
        for j, flag in enumerate(self.spec.log_conditions):
            if flag and np.any(c[:, j] <= 0):
                raise HepFastSimError(f"condition {self.spec.condition_names[j]!r} must be positive")
        return c

    # -- interface
    @abc.abstractmethod
    def fit(self, train: Samples, val: Samples | None = None, *, epochs: int | None = None, seed: int = 0,
            progress: bool = True, log_csv: str | Path | None = None, resume: str | Path | None = None,
            checkpoint: str | Path | None = None, tensorboard: str | Path | None = None) -> "Generator":
        """Learn p(responses | conditions) from train (val for early stopping where the family uses it); returns the
        model (scikit-learn style), the training history is ``self.log``.
        log_csv / tensorboard: loss log as CSV / TensorBoard events (families with a training loop)."""

    @abc.abstractmethod
    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """One response per condition row, in physical units; the same seed gives the same output."""

    def onnx_graph(self) -> torch.nn.Module:
        """The module ONNX export traces: (standardised conditions (B, C), latent (B, latent_dim())) -> graph output."""
        raise HepFastSimError(f"model family {self.family!r} has no exportable graph (no ONNX export)")

    def latent_dim(self) -> int:
        """Size of the standard-normal latent vector of one response."""
        raise HepFastSimError(f"model family {self.family!r} has no latent vector")


    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        pass

    def _restore(self, state: dict) -> None:
        """Preprocessing constants and training log from a checkpoint dict."""
        self.x_tf = ResponseTransform.from_state(state["x_tf"])
        self.c_tf = ConditionTransform.from_state(state["c_tf"])
        self.log = TrainLog(**state["log"])

    def state_dict(self) -> dict:
        """Everything needed to sample: config, task spec, preprocessing constants, weights, package version."""
        if self.x_tf is None:
            raise HepFastSimError("cannot save an untrained model")
        return {
            "format": "hepfastsim-checkpoint-1", "version": __version__, "family": self.family,
            "config": self.config, "spec": asdict(self.spec), "x_tf": self.x_tf.state(), "c_tf": self.c_tf.state(),
            "log": asdict(self.log), **self._extra_state(),
        }

    def save(self, path: str | Path) -> Path:
        """One checkpoint file (atomic write: a crash never leaves a half-written checkpoint)."""
        state = self.state_dict()
        path = Path(path)
        with atomic_output(path) as tmp:
            torch.save(state, tmp)
        return path

    @classmethod
    def from_state(cls, state: dict) -> Generator:
        """The model a ``state_dict`` describes, of whichever family it names."""
        klass = get_family(state["family"])
        model = klass(TaskSpec.from_dict(state["spec"]), **state["config"])
        model._restore(state)
        model._load_extra_state(state)
        return model

    @classmethod
    def load(cls, path: str | Path) -> Generator:
        state = read_checkpoint(path)
        family = state["family"]
        klass = get_family(family)
        if cls is not Generator and not issubclass(klass, cls):
            raise HepFastSimError(f"{path} holds a {family!r} model, not {cls.family!r}")
        return Generator.from_state(state)

    def check_geometry(self, geometry_id: str, name: str = "") -> None:
        """Refuse data of another geometry with a clear message."""
        if self.spec.geometry_id != geometry_id:
            raise HepFastSimError(
                f"model was trained for geometry {self.spec.geometry_name!r} ({self.spec.geometry_id}), "
                f"not {name or geometry_id!r} ({geometry_id})"
            )


def _safe_numpy_globals() -> list:
    """What torch's weights-only unpickler may build besides tensors and containers: numpy arrays and dtypes."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [_reconstruct, np.ndarray, np.dtype, *dtypes]


def read_checkpoint(path: str | Path) -> dict:
    """A checkpoint's state, read with torch's weights-only unpickler: tensors, numpy arrays, containers and
    plain values only, so a crafted file cannot execute code."""
    path = Path(path)
    if not path.exists():
        raise HepFastSimError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_safe_numpy_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # torch names the refused global (a class or function the file wants to call)
            raise HepFastSimError(f"{path} holds objects other than tensors, arrays and containers: refused (a checkpoint "
                                  "must not be able to run code; re-save it with this version)") from None
        raise HepFastSimError(f"{path} is not a readable hepfastsim checkpoint (corrupt or truncated)") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise HepFastSimError(f"{path} is not a readable hepfastsim checkpoint (corrupt or truncated: {type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != "hepfastsim-checkpoint-1":
        raise HepFastSimError(f"{path} is not a hepfastsim checkpoint")
    return state


def get_family(name: str) -> type[Generator]:
    # import the family modules so that they register themselves
    from hepfastsim.models import ensemble, flow, flow_matching, gan, library, vae  # noqa: F401

    if name not in FAMILIES:
        raise HepFastSimError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[name]


def load_generator(path: str | Path) -> Generator:
    get_family("library")  # registers all families
    return Generator.load(path)


def tensorboard_writer(folder: str | Path):
    """A TensorBoard SummaryWriter on folder; the optional ``tensorboard`` package is needed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise HepFastSimError("TensorBoard logging needs the tensorboard package: pip install 'hepfastsim[tensorboard]'") from None
    return SummaryWriter(log_dir=str(folder))


def mlp(n_in: int, n_out: int, hidden: int, layers: int, act=torch.nn.SiLU, dropout: float = 0.0) -> torch.nn.Sequential:
    """Fully connected network used by all families."""
    mods: list[torch.nn.Module] = []
    d = n_in
    for _ in range(layers):
        mods += [torch.nn.Linear(d, hidden), act()]
        if dropout:
            mods.append(torch.nn.Dropout(dropout))
        d = hidden
    mods.append(torch.nn.Linear(d, n_out))
    return torch.nn.Sequential(*mods)


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


class TorchGenerator(Generator):
    """Neural families: the shared training loop with EMA, early stopping and resumable checkpoints."""

    common_defaults: ClassVar[dict] = {
        **Generator.common_defaults, "epochs": 100, "batch_size": 256, "lr": 1e-3, "weight_decay": 0.0, "ema_decay": 0.999, "patience": 20,
        "hidden": 256, "layers": 3, "device": "auto", "threads": 0, "time_limit_s": 0.0, "grad_clip": 0.0,
        # ensemble members: a fixed random dropout mask (fraction fixed_dropout of the hidden units of every
        # activation, drawn from mask_seed) and a repulsion from earlier members' functions, annealed
        # linearly from ``repulsion`` to 0 over ``repulsion_epochs`` (see repulsion_term)
        "fixed_dropout": 0.0, "mask_seed": 0, "repulsion": 0.0, "repulsion_epochs": 50,
        # after training, correct each feature's marginal per energy bin by quantile mapping (models/calibration.py)
        "calibrate": False, "calibration_bins": 8, "calibration_samples": 20_000,
    }

    def __init__(self, spec: TaskSpec | None = None, **config) -> None:
        super().__init__(spec, **config)
        self.net: torch.nn.Module | None = None
        self.ema: AveragedModel | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.epoch = 0
        self._best_state: dict | None = None   # best EMA weights of the running fit (saved in checkpoints)
        self.device = torch.device("cpu")
        self.rank, self.world = 0, 1
        self.repel_from: list[TorchGenerator] = []   # trained earlier ensemble members (set by Ensemble)
        self.calibration: QuantileCalibration | None = None

    # family hooks -------------------------------------------------------------
    @abc.abstractmethod
    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        """The family's networks as one module (moved to the device and EMA-averaged by the base class)."""

    def prepare(self, train: Samples, seed: int) -> None:
        """Optional family hook, called once per fit after the networks exist (e.g. to train a surrogate)."""

    def finish(self, train: Samples, seed: int, progress: bool) -> None:
        """Optional family hook, called after the training loop with the best EMA weights (e.g. distillation)."""

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"main": torch.optim.AdamW(self.net.parameters(), lr=self.config["lr"], weight_decay=self.config["weight_decay"])}

    def loss(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Training objective of single-optimiser families (random draws from gen when given)."""
        raise TypeError(f"{type(self).__name__} must implement loss() or override train_step() and val_loss()")

    def train_step(self, x: torch.Tensor, c: torch.Tensor, step: int) -> float:
        """One optimiser step on ``loss`` (+ the ensemble repulsion); adversarial families override this."""
        opt = self.optimizers["main"]
        opt.zero_grad()
        loss = self.loss(self.net, x, c)
        (loss + self.repulsion_term(self.net, x, c, step)).backward()
        self.optimizer_step("main", self.net.parameters())
        return loss.item()

    def function_output(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """What the repulsion compares between ensemble members: here the responses decoded from latent draws
        of gen (the same draws for every member); families without a cheap decoder override it."""
        return self.generate(net, c, gen)

    def repulsion_term(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, step: int) -> torch.Tensor | float:
        """Function-space repulsion from the earlier members (repulsive deep ensembles, D'Angelo & Fortuin 2021):
        lambda(epoch) * mean over members j and batch rows of exp(-d_j / h), d_j the mean squared difference of
        this member's ``function_output`` and member j's on the same draws, h its batch median (median heuristic).
        Lowering it pushes this member's distribution away from the others; lambda decays linearly to 0."""
        lam = float(self.config.get("repulsion") or 0.0) * max(0.0, 1.0 - self.epoch / max(int(self.config["repulsion_epochs"]), 1))
        if not self.repel_from or lam <= 0:
            return 0.0
        g = torch.Generator(device=x.device)
        g.manual_seed(step)
        mine = self.function_output(net, x, c, g)
        total = 0.0
        for other in self.repel_from:
            g.manual_seed(step)
            with torch.no_grad():
                theirs = other.function_output(other.ema.module, x, c, g)
            d = ((mine - theirs) ** 2).mean(1)
            total = total + torch.exp(-d / (d.detach().median() + 1e-12)).mean()
        return lam * total / len(self.repel_from)

    def optimizer_step(self, name: str, params) -> None:
        """Step optimiser ``name`` after averaging the gradients over the processes of a distributed run
        (all-reduce, as DDP does) and optional clipping; every family steps through here."""
        params = [p for p in params if p.grad is not None]
        if self.world > 1:
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            torch.distributed.all_reduce(flat)
            flat /= self.world
            i = 0
            for p in params:
                p.grad.copy_(flat[i:i + p.numel()].view_as(p.grad))
                i += p.numel()
        if self.config.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(params, float(self.config["grad_clip"]))
        self.optimizers[name].step()

    @torch.no_grad()
    def val_loss(self, net: torch.nn.Module, x: torch.Tensor, c: torch.Tensor) -> float:
        """Validation loss with fixed random draws, so epochs compare like for like."""
        g = torch.Generator(device=x.device)
        g.manual_seed(0)
        return float(self.loss(net, x, c, g))

    def latent_dim(self) -> int:
        """Size of the Gaussian latent vector that ``decode`` maps to a response."""
        return int(self.config["latent"])

    def onnx_graph(self) -> torch.nn.Module:
        if type(self).decode is TorchGenerator.decode:
            raise HepFastSimError(f"model family {self.family!r} has no latent decoder (no ONNX export)")
        return _Decoder(self)

    def decode(self, net: torch.nn.Module, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Deterministic (standardised conditions, latent) -> preprocessed responses; ONNX export traces this."""
        raise HepFastSimError(f"model family {self.family!r} has no latent decoder (no ONNX export)")

    def generate(self, net: torch.nn.Module, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Preprocessed responses for conditions c: Gaussian latent noise from gen through ``decode``."""
        z = torch.randn(len(c), self.latent_dim(), generator=gen, device=c.device)
        return self.decode(net, c, z)

    # shared machinery -----------------------------------------------------------
    def _pick_device(self) -> torch.device:
        want = self.config.get("device", "auto")
        if want == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", self.rank % torch.cuda.device_count())
            return torch.device("cpu")
        return torch.device(want)

    def _init_distributed(self) -> None:
        """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank, self.world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if dist else (0, 1)

    def _setup(self) -> None:
        self.device = self._pick_device()
        if self.config.get("threads"):
            torch.set_num_threads(int(self.config["threads"]))
        self.net = self.build(self.x_tf.n_out, self.c_tf.n_out)
        if float(self.config.get("fixed_dropout") or 0.0) > 0:
            apply_fixed_masks(self.net, float(self.config["fixed_dropout"]), int(self.config["mask_seed"]))
        self.net = self.net.to(self.device)
        if self.world > 1:  # identical starting weights on every process
            for t in self.net.state_dict().values():
                torch.distributed.broadcast(t, 0)
        self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(self.config["ema_decay"]), use_buffers=True)
        self.optimizers = self.make_optimizers()

    @isolated_torch_rng
    def fit(self, train: Samples, val: Samples | None = None, *, epochs: int | None = None, seed: int = 0,
            progress: bool = True, log_csv: str | Path | None = None, resume: str | Path | None = None,
            checkpoint: str | Path | None = None, tensorboard: str | Path | None = None) -> "Generator":
        """Train on train (and early-stop on val). resume: a checkpoint written by a previous fit to continue;
        tensorboard: a folder for TensorBoard event files (loss/train, loss/val per epoch)."""
        if self.spec is None:
            raise HepFastSimError("a TaskSpec is needed to fit: pass spec= (e.g. hepfastsim.tasks.calo_spec(binning))")
        epochs = int(epochs or self.config["epochs"])
        self._init_distributed()
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)  # the same on every process: one global batch order
        if resume and Path(resume).exists():
            state = read_checkpoint(resume)
            if state["family"] != self.family:
                raise HepFastSimError(f"{resume} holds a {state['family']!r} model, cannot resume it as {self.family!r}")
            self.spec, self.config = TaskSpec.from_dict(state["spec"]), state["config"]
            self._restore(state)
            self._setup()
            self._load_extra_state(state, with_optim=True)
        else:
            self._fit_transforms(train)
            self._setup()
        self.prepare(train, seed)
        xt = torch.from_numpy(self.x_tf.forward(train.x, self._scale(train.c), rng))
        ct = torch.from_numpy(self.c_tf.forward(train.c))
        if val is not None and len(val):
            xv = torch.from_numpy(self.x_tf.forward(val.x, self._scale(val.c), np.random.default_rng(seed + 1))).to(self.device)
            cv = torch.from_numpy(self.c_tf.forward(val.c)).to(self.device)
        else:
            xv = cv = None
        bs = int(self.config["batch_size"])
        best = min(self.log.val_loss) if self.log.val_loss else np.inf
        # on resume, the best weights so far are the checkpoint's, not the EMA of its last epoch
        best_state = self._best_state or {k: v.detach().clone() for k, v in self.ema.state_dict().items()}
        bad = 0
        t0 = time.perf_counter()
        writer = None
        fcsv = None
        main = self.rank == 0
        if not main:
            log_csv = checkpoint = tensorboard = None
            progress = False
        board = tensorboard_writer(tensorboard) if tensorboard else None
        if log_csv:
            new = not Path(log_csv).exists() or not resume
            fcsv = open(log_csv, "w" if new else "a", newline="")
            writer = csv.writer(fcsv)
            if new:
                writer.writerow(["epoch", "train_loss", "val_loss", "seconds"])
        bar = tqdm(range(self.epoch, epochs), desc=f"train {self.family}", disable=not progress, unit="epoch")
        step = self.epoch * ((len(xt) + bs - 1) // bs)
        try:
            for ep in bar:
                self.net.train()
                perm = torch.from_numpy(rng.permutation(len(xt)))
                losses = []
                for i in range(0, len(xt) - bs // 2, bs):
                    idx = perm[i:i + bs][self.rank::self.world]  # this process's share of the global batch
                    losses.append(self.train_step(xt[idx].to(self.device), ct[idx].to(self.device), step))
                    self.ema.update_parameters(self.net)
                    step += 1
                tl = float(np.mean(losses)) if losses else float("nan")
                self.ema.eval()
                vl = self.val_loss(self.ema.module, xv, cv) if xv is not None else tl
                self.epoch = ep + 1
                self.log.epochs.append(self.epoch)
                self.log.train_loss.append(tl)
                self.log.val_loss.append(vl)
                if writer:
                    writer.writerow([self.epoch, tl, vl, time.perf_counter() - t0])
                    fcsv.flush()
                if board:
                    board.add_scalar("loss/train", tl, self.epoch)
                    board.add_scalar("loss/val", vl, self.epoch)
                    board.flush()
                bar.set_postfix(train=f"{tl:.4g}", val=f"{vl:.4g}")
                if vl < best - 1e-6:
                    best, bad = vl, 0
                    best_state = {k: v.detach().clone() for k, v in self.ema.state_dict().items()}
                    self.log.best_epoch = self.epoch
                else:
                    bad += 1
                self._best_state = best_state
                if checkpoint:
                    self.save(checkpoint)
                if bad >= int(self.config["patience"]):
                    self.log.stopped_early = True
                    break
                limit = float(self.config.get("time_limit_s") or 0)
                stop = torch.tensor([float(bool(limit) and time.perf_counter() - t0 > limit)])
                if self.world > 1:  # process 0's clock decides, so no process waits for another forever
                    torch.distributed.broadcast(stop, 0)
                if stop.item():
                    break
        finally:
            if fcsv:
                fcsv.close()
            if board:
                board.close()
        self.ema.load_state_dict(best_state)
        self._best_state = None   # the EMA now holds the best weights
        self.log.seconds += time.perf_counter() - t0
        self.finish(train, seed=seed, progress=progress)
        self.calibration = None   # a calibration of earlier weights (resumed checkpoint) no longer applies
        if self.config.get("calibrate"):
            t0 = time.perf_counter()
            self.fit_calibration(train, seed=seed)
            self.log.seconds += time.perf_counter() - t0
        return self

    @torch.no_grad()
    def fit_calibration(self, train: Samples, seed: int = 0) -> None:
        """Quantile calibration of the trained model against (a random subset of) its training data."""
        from hepfastsim.models.calibration import QuantileCalibration

        rng = np.random.default_rng(seed + 7)
        n = min(int(self.config["calibration_samples"]), len(train))
        idx = np.sort(rng.choice(len(train), n, replace=False))
        c = self.c_tf.forward(train.c[idx])
        u_data = self.x_tf.forward(train.x[idx], self._scale(train.c[idx]), rng)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed + 11)
        net = self.ema.module.eval()
        ct = torch.from_numpy(c)
        u_gen = np.concatenate([self.generate(net, ct[i:i + 10_000].to(self.device), gen).float().cpu().numpy()
                                for i in range(0, n, 10_000)])
        self.calibration = QuantileCalibration.fit(u_gen, u_data, c, column=self.spec.scale_column,
                                                   n_bins=int(self.config["calibration_bins"])).to(self.device)

    @torch.no_grad()
    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """Responses for each condition row, in physical units (MeV), generated in batches with the EMA weights."""
        c = self._check_conditions(conditions)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed) if seed is not None else fresh_seed())
        net = self.ema.module
        net.eval()
        ct = torch.from_numpy(self.c_tf.forward(c))
        out = np.empty((len(c), self.spec.n_features), np.float32)
        for i in range(0, len(c), batch_size):
            cb = ct[i:i + batch_size].to(self.device)
            u = self.generate(net, cb, gen).float()
            if self.calibration is not None:
                u = self.calibration(u, cb)
            out[i:i + batch_size] = self.x_tf.inverse(u.cpu().numpy(), self._scale(c[i:i + batch_size]))
        return out

    def _extra_state(self) -> dict:
        return {
            "train_weights": self.net.state_dict() if self.net else None,
            "ema_state": self.ema.state_dict() if self.ema else None,
            "best_ema_state": self._best_state,   # mid-training checkpoints: the best epoch's EMA so far
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "epoch": self.epoch,
            "calibration": None if self.calibration is None else
            {"args": self.calibration.shape_args(), "tables": self.calibration.state_dict()},
        }

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        if self.net is None:
            self._setup()
        try:
            self.net.load_state_dict(state["train_weights"])
            self.ema.load_state_dict(state["ema_state"])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise HepFastSimError(f"checkpoint weights do not fit the {self.family!r} architecture: {str(exc).splitlines()[0]}") from None
        self.epoch = int(state.get("epoch", 0))
        cal = state.get("calibration")
        if cal is not None:
            from hepfastsim.models.calibration import QuantileCalibration

            self.calibration = QuantileCalibration(**cal["args"])
            self.calibration.load_state_dict(cal["tables"])
            self.calibration.to(self.device)
        if with_optim:
            self._best_state = state.get("best_ema_state")
            for k, o in self.optimizers.items():
                if k in state.get("optimizers", {}):
                    o.load_state_dict(state["optimizers"][k])


class _Decoder(torch.nn.Module):
    """(standardised conditions, latent) -> responses in physical units (MeV) with the EMA weights: the family's
    ``decode``, the calibration and the inverse preprocessing, all in the graph."""

    def __init__(self, model: TorchGenerator):
        super().__init__()
        self.model = model
        self.net = model.ema.module
        self.calibration = model.calibration
        self.inverse = InverseResponse(model.x_tf, model.c_tf, model.spec.scale_column)

    def preprocessed(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        u = self.model.decode(self.net, c, z)
        return u if self.calibration is None else self.calibration(u, c)

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.inverse(self.preprocessed(c, z), c)
