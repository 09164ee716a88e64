"""The generator interface: one for every family (scikit-learn style), plus the family registry.

A family is one file with a subclass of ``Generator`` (non-neural, like the shower library: ``fit`` and
``sample``) or of ``models.neural.TorchGenerator`` (networks, objective, latent -> response; trained by the
engine in ``hepfastsim.train``). Hyper-parameters are constructor arguments, validated against the family's
``Options`` (models/options.py); ``fit`` returns the model; fitted state ends in an underscore
(``x_tf_``, ``c_tf_``, ``history_``, ...).
"""

from __future__ import annotations

import abc
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from hepfastsim import __version__
from hepfastsim.data.preprocessing import ConditionTransform, ResponseTransform
from hepfastsim.data.samples import Samples, TaskSpec
from hepfastsim.errors import HepFastSimError
from hepfastsim.models import options as opts
from hepfastsim.train.checkpoint import FORMAT, read_checkpoint, write_checkpoint
from hepfastsim.train.engine import History

if TYPE_CHECKING:
    from hepfastsim.train.engine import Trainer

FAMILIES: dict[str, type[Generator]] = {}
DOMAIN_MARGIN = 0.02  # conditions up to 2 % of the training range's width (log width for log conditions) beyond it
PROVENANCE_KEYS = ("particle", "engine", "physics", "physics_revision", "geant4_version", "detector", "binning",
                   "geometry_id", "threshold_MeV", "energy_spec", "theta", "phi", "sampling_fraction",
                   "holdout_energy_MeV")


class Generator(abc.ABC):
    """p(responses | conditions) for one task: fit on full-simulation samples, sample in physical units (MeV)."""

    family: ClassVar[str] = ""
    Options: ClassVar[type[opts.Options]] = opts.Options

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.family:
            FAMILIES[cls.family] = cls
            cls.Options = opts.FAMILY_OPTIONS.get(cls.family, cls.Options)

    def __init__(self, spec: TaskSpec | None = None, **options) -> None:
        self.config: dict = opts.validated(self.Options, f"model {self.family!r}", options).model_dump()
        self.spec = spec
        self.x_tf_: ResponseTransform | None = None
        self.c_tf_: ConditionTransform | None = None
        self.history_ = History()
        self.domain_: dict[str, list[float]] = {}   # condition name -> [min, max] of the training sample
        self.provenance_: dict = {}                 # how the training data was made (file attributes), see set_provenance
        self.extrapolate = False                    # True: sample outside domain_ (the caller records that it did)

    def get_params(self) -> dict:
        """The model's options (scikit-learn convention)."""
        return dict(self.config)

    def set_params(self, **options) -> "Generator":
        """Change options before fitting (validated as in the constructor); returns the model."""
        self.config = opts.validated(self.Options, f"model {self.family!r}", {**self.config, **options}).model_dump()
        return self

    @property
    def condition_names(self) -> tuple[str, ...]:
        return self.spec.condition_names if self.spec else ()

    # -- interface
    @abc.abstractmethod
    def fit(self, train: Samples, val: Samples | None = None, *, trainer: Trainer | None = None) -> "Generator":
        """Learn p(responses | conditions) from train (val: early stopping where the family trains); returns the
        model. trainer: logs, checkpoints, resume, calibration, progress bar (default: none of them)."""

    @abc.abstractmethod
    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        """One response per condition row, in physical units; the same seed gives the same output."""

    def onnx_graph(self) -> torch.nn.Module:
        """The module ONNX export traces: (standardised conditions (B, C), latent (B, latent_dim())) -> graph output."""
        raise HepFastSimError(f"model family {self.family!r} has no exportable graph (no ONNX export)")

    def latent_dim(self) -> int:
        """Size of the standard-normal latent vector of one response."""
        raise HepFastSimError(f"model family {self.family!r} has no latent vector")

    # -- preprocessing shared by all families
    def _scale(self, c: np.ndarray) -> np.ndarray:
        """The energy scale of each condition row (incident energy, MeV; 1 for tasks without one)."""
        col = self.spec.scale_column
        return np.ones(len(c)) if col is None else np.asarray(c, np.float64)[:, col]

    def response_transform(self) -> ResponseTransform:
        """The (unfitted) response preprocessing this model's options ask for."""
        eps = self.spec.eps if self.config["eps"] is None else float(self.config["eps"])
        groups = self.spec.groups if self.config.get("group_energies") else ()
        return ResponseTransform(eps=eps, threshold=self.spec.threshold, groups=groups,
                                 dequantize=bool(self.config.get("dequantize")), signed=self.spec.signed,
                                 differences=self.spec.response_differences)

    def fit_transforms(self, data: Samples) -> None:
        """Fit the response and condition preprocessing on the training sample."""
        self.x_tf_ = self.response_transform().fit(data.x, self._scale(data.c))
        self.c_tf_ = ConditionTransform(self.spec.log_conditions, names=self.spec.condition_names,
                                        fraction_columns=self.spec.fraction_conditions,
                                        features=self.spec.condition_features).fit(data.c)
        c = np.asarray(data.c, np.float64).reshape(len(data.c), -1)
        self.domain_ = {name: [float(c[:, j].min()), float(c[:, j].max())]
                        for j, name in enumerate(self.spec.condition_names)}

    def _check_conditions(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, np.float64)
        if c.ndim == 1:
            c = c.reshape(-1, 1)
        if self.spec is None or self.x_tf_ is None:
            raise HepFastSimError("the model is not trained: call fit() or load a checkpoint")
        if c.shape[1] != len(self.spec.condition_names):
            raise HepFastSimError(f"model needs {len(self.spec.condition_names)} conditions {self.spec.condition_names}, got {c.shape[1]}")
        if not np.all(np.isfinite(c)):
            raise HepFastSimError("conditions contain NaN or inf")
        for j, flag in enumerate(self.spec.log_conditions):
            if flag and np.any(c[:, j] <= 0):
                raise HepFastSimError(f"condition {self.spec.condition_names[j]!r} must be positive")
        self._check_domain(c)
        return c

    def set_provenance(self, attrs: dict) -> None:
        """Record how the training data was made (particle, engine, physics list, its revision or Geant4 version, detector,
        binning, threshold, energy spec, angles) from a data file's attributes; saved with the checkpoint."""
        self.provenance_ = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in attrs.items()
                            if k in PROVENANCE_KEYS}

    def domain_limits(self, name: str) -> tuple[float, float]:
        """[low, high] of a condition: the training sample's range, widened to the nominal range of a
        'log:LO:HI' / 'uniform:LO:HI' energy spec recorded in the provenance."""
        from hepfastsim.data.calo_io import energy_range

        lo, hi = self.domain_[name]
        nominal = energy_range(str(self.provenance_.get("energy_spec", ""))) if name == "energy_MeV" else None
        if nominal is not None:
            lo, hi = min(lo, nominal[1]), max(hi, nominal[2])
        return lo, hi

    def outside_domain(self, c: np.ndarray) -> dict[str, np.ndarray]:
        """Per enforced condition, the rows outside the training domain (its limits widened by DOMAIN_MARGIN of
        their width, in log for log conditions). Enforced: the calorimeter's incident energy (TPC and PID
        conditions have sparse tails: their ranges are recorded, not enforced). Empty for older checkpoints."""
        c = np.asarray(c, np.float64).reshape(len(c), -1)
        out = {}
        for j, name in enumerate(self.spec.condition_names):
            if name not in self.domain_ or self.spec.task != "calo":
                continue
            lo, hi = self.domain_limits(name)
            if self.spec.log_conditions[j] and lo > 0 and np.all(c[:, j] > 0):
                v, a, b = np.log(c[:, j]), np.log(lo), np.log(hi)
            else:
                v, a, b = c[:, j], lo, hi
            margin = DOMAIN_MARGIN * (b - a)
            bad = (v < a - margin) | (v > b + margin)
            if np.any(bad):
                out[name] = bad
        return out

    def _check_domain(self, c: np.ndarray) -> None:
        """Conditions outside the training domain are a one-line error unless self.extrapolate."""
        if self.extrapolate:
            return
        for name, bad in self.outside_domain(c).items():
            v = c[bad, self.spec.condition_names.index(name)]
            lo, hi = self.domain_limits(name)
            raise HepFastSimError(f"condition {name!r} = {v.min():.6g}..{v.max():.6g} outside the model's training "
                                  f"domain [{lo:.6g}, {hi:.6g}] ({int(bad.sum())} rows); pass --extrapolate to allow "
                                  "it (recorded in the output)")

    def check_particle(self, particles) -> None:
        """Refuse particles (names or PDG ids) other than the one the training data holds, when it is recorded."""
        from hepfastsim.data.calo_io import particle_pdg

        trained = self.provenance_.get("particle")
        if trained is None:
            return
        other = sorted({particle_pdg(p) for p in particles} - {particle_pdg(trained)})
        if other:
            raise HepFastSimError(f"model was trained on {trained} showers, not PDG {other}")

    def check_geometry(self, geometry_id: str, name: str = "") -> None:
        """Refuse data of another geometry with a clear message."""
        if self.spec.geometry_id != geometry_id:
            raise HepFastSimError(
                f"model was trained for geometry {self.spec.geometry_name!r} ({self.spec.geometry_id}), "
                f"not {name or geometry_id!r} ({geometry_id})"
            )

    # -- checkpoints
    def _extra_state(self) -> dict:
        """The family's fitted state (weights, stored showers, ...)."""
        return {}

    def _load_extra_state(self, state: dict, with_optim: bool = False) -> None:
        pass

    def state_dict(self) -> dict:
        """Everything needed to sample: options, task spec, preprocessing constants, weights, package version."""
        if self.x_tf_ is None:
            raise HepFastSimError("cannot save an untrained model")
        return {
            "format": FORMAT, "version": __version__, "family": self.family,
            "config": self.config, "spec": asdict(self.spec), "x_tf": self.x_tf_.state(), "c_tf": self.c_tf_.state(),
            "log": asdict(self.history_), "domain": self.domain_, "provenance": self.provenance_,
            **self._extra_state(),
        }

    def load_state(self, state: dict, with_optim: bool = False) -> None:
        """Preprocessing constants, history and the family's state from a checkpoint dict (with_optim: also the
        optimisers', to resume training)."""
        self.x_tf_ = ResponseTransform.from_state(state["x_tf"])
        self.c_tf_ = ConditionTransform.from_state(state["c_tf"])
        self.history_ = History(**state["log"])
        self.domain_ = dict(state.get("domain") or {})          # older checkpoints: no domain recorded
        self.provenance_ = dict(state.get("provenance") or {})
        self._load_extra_state(state, with_optim)

    def save(self, path: str | Path, slim: bool = False) -> Path:
        """One checkpoint file (atomic write: a crash never leaves a half-written checkpoint). slim: for sampling
        only (no optimiser state and no training weights: half the size or less, cannot resume training)."""
        state = self.state_dict()
        if slim:
            state = {**state, "optimizers": {}, "train_weights": None, "slim": True}
        return write_checkpoint(state, path)

    @classmethod
    def from_state(cls, state: dict) -> Generator:
        """The model a ``state_dict`` describes, of whichever family it names."""
        state = upgrade_state(state)
        model = get_family(state["family"])(TaskSpec.from_dict(state["spec"]), **state["config"])
        model.load_state(state)
        return model

    @classmethod
    def load(cls, path: str | Path) -> Generator:
        """The model of a checkpoint file, or of a shipped model by name (models/pretrained: ``ds2``, ``demo``)."""
        from hepfastsim.models.pretrained import resolve_model

        path = resolve_model(path)
        state = read_checkpoint(path)
        klass = get_family(state["family"])
        if cls is not Generator and not issubclass(klass, cls):
            raise HepFastSimError(f"{path} holds a {state['family']!r} model, not {cls.family!r}")
        return Generator.from_state(state)


# options that checkpoint format 1 kept among a family's options: now the calibration step's and the ensemble's
_MOVED = {"calibrate", "calibration_bins", "calibration_samples", "fixed_dropout", "mask_seed", "repulsion", "repulsion_epochs"}


def upgrade_state(state: dict) -> dict:
    """A format-1 checkpoint's state in today's layout (options moved out of the families, mask seeds kept)."""
    if state.get("format") == FORMAT:
        return state
    if "members" not in state and float(state["config"].get("fixed_dropout") or 0.0) > 0:
        raise HepFastSimError("this checkpoint is a lone model with fixed dropout masks (an ensemble member saved on "
                              "its own); retrain it as part of an ensemble")
    state = {**state, "format": FORMAT, "config": {k: v for k, v in state["config"].items() if k not in _MOVED}}
    if "members" in state:
        members = state["members"]
        state["config"]["options"] = {k: v for k, v in state["config"].get("options", {}).items() if k not in _MOVED}
        state["config"]["fixed_dropout"] = max(float(m["config"].get("fixed_dropout") or 0.0) for m in members)
        state["mask_seeds"] = [int(m["config"].get("mask_seed", 0)) for m in members]
        state["members"] = [upgrade_state({**m, "config": {k: v for k, v in m["config"].items() if k != "fixed_dropout"}})
                            for m in members]
    return state


def get_family(name: str) -> type[Generator]:
    # import the family modules so that they register themselves
    from hepfastsim.models import binned, ensemble, flow, flow_matching, gan, layer_fm, library, vae  # noqa: F401

    if name not in FAMILIES:
        raise HepFastSimError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[name]


def load_generator(path: str | Path) -> Generator:
    return Generator.load(path)
