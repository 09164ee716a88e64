"""The options of every model family, with their defaults and allowed ranges, in one place.

A family registered under a name in ``FAMILY_OPTIONS`` takes that class as its ``Options``. Options are validated strictly (pydantic): an
unknown key, a wrong type (a string for a number, a bool for a count), NaN/inf or a value out of range is a
one-line ``HepFastSimError`` naming the option. Checkpoints store the validated options as a plain dict.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hepfastsim.errors import HepFastSimError

Count = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Options(BaseModel):
    """Options every family accepts. seed: of the training (initial weights, batch order, draws);
    eps: floor of the log preprocessing relative to the energy scale (None: the task's);
    group_energies: model the layer energies as variables of their own; dequantize: train on sub-threshold
    cells replaced by uniform noise below the threshold (see data/preprocessing.ResponseTransform)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    seed: NonNegativeInt = 0
    eps: Optional[Positive] = None
    group_energies: bool = False
    dequantize: bool = False


class LibraryOptions(Options):
    """Shower library: ``energy_bins`` log-spaced bins of at most ``per_bin`` showers (0 bins: k nearest
    neighbours in all conditions)."""

    k: Count = 5
    energy_bins: NonNegativeInt = 10
    per_bin: Count = 200


class BinnedOptions(Options):
    """Binned resampling: ``bins`` quantile bins per condition."""

    bins: Count = 8


class TorchOptions(Options):
    """Neural families: the training loop's budget and optimiser, network size, device."""

    epochs: Count = 100
    batch_size: Count = 256
    lr: Positive = 1e-3
    weight_decay: NonNegative = 0.0
    ema_decay: Fraction = 0.999
    patience: Count = 20
    hidden: Count = 256
    layers: Count = 3
    device: str = "auto"
    threads: NonNegativeInt = 0
    time_limit_s: NonNegative = 0.0     # wall-clock budget (0: none); prefer epochs for anything compared
    grad_clip: NonNegative = 0.0        # max gradient norm (0: no clipping)


class VAEOptions(TorchOptions):
    """latent: size of the code; beta: weight of the KL term; decoder_noise: sample from p(x|z,c), not its mean."""

    latent: Count = 32
    beta: NonNegative = 0.01
    decoder_noise: bool = False


class GANOptions(TorchOptions):
    """WGAN-GP: n_critic critic steps per generator step, gradient-penalty weight gp_lambda, weight of the
    critic's regression of the conditions aux_weight; surrogate: an observable ("sparsity") whose
    differentiable surrogate enters the generator loss with surrogate_weight."""

    latent: Count = 64
    n_critic: Count = 5
    gp_lambda: NonNegative = 10.0
    aux_weight: NonNegative = 1.0
    surrogate: Optional[str] = None
    surrogate_weight: NonNegative = 1.0


class FlowOptions(TorchOptions):
    """Two-stage flow: ``transforms`` autoregressive transforms per stage."""

    transforms: Count = 4
    # (first, last + 1) voxel index of each stage-1 variable (None: the task's layers); lists or tuples
    layer_slices: Optional[Annotated[list[Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2, strict=False)]],
                                     Field(strict=False)]] = None
    grad_clip: NonNegative = 5.0
    group_energies: bool = True


class FMOptions(TorchOptions):
    """Flow matching: ``steps`` midpoint steps of the sampler; distill_*: the one-pass student trained after
    (0 epochs: none); sampler: ode, student, or auto (the student when there is one)."""

    steps: Count = 8
    distill_epochs: NonNegativeInt = 0
    distill_time_s: NonNegative = 0.0
    distill_pairs: Count = 100_000
    student_hidden: Count = 256
    student_layers: Count = 4
    sampler: Literal["auto", "ode", "student"] = "auto"


class LayerFMOptions(TorchOptions):
    """Layer-wise flow matching (models/layer_fm.py): ``steps`` midpoint steps per layer of the shape model,
    ``energy_steps`` of the energy model (width ``energy_hidden``); ``layers_per_step``: layers of each shower in
    one training step (0: all). Its preprocessing is its own (eps, group_energies and dequantize do not apply)."""

    steps: Count = 4
    energy_steps: Count = 16
    energy_hidden: Count = 256
    layers_per_step: NonNegativeInt = 0


class EnsembleOptions(Options):
    """K members of family ``base`` with seeds seed..seed+K-1 and the family's ``options``. fixed_dropout: each
    neural member silences this fraction of the hidden units for good (its own mask); repulsion: initial
    strength of the function-space repulsion from earlier members, annealed to 0 over repulsion_epochs;
    bootstrap: each member trained on its own resample of the training set."""

    base: str = "fm"
    members: Annotated[int, Field(ge=2)] = 3
    bootstrap: bool = False
    options: dict = {}
    fixed_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    repulsion: NonNegative = 0.0
    repulsion_epochs: Count = 50


class CalibrationOptions(BaseModel):
    """Post-training quantile calibration (models/calibration.py): ``calibrate`` switches it on; per-feature
    marginals in ``calibration_bins`` bins of the condition ``calibration_condition`` (None: the task's scale,
    the incident energy; e.g. "P" for PID) from ``calibration_samples`` training events."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    calibrate: bool = False
    calibration_bins: Count = 8
    calibration_samples: Count = 20_000
    calibration_condition: Optional[str] = None


# the options of each family, by family name (Generator subclasses take theirs from here)
FAMILY_OPTIONS: dict[str, type[Options]] = {"library": LibraryOptions, "binned": BinnedOptions, "vae": VAEOptions, "gan": GANOptions,
                                            "flow": FlowOptions, "fm": FMOptions, "ensemble": EnsembleOptions,
                                            "layer_fm": LayerFMOptions}


def validated(options: type[BaseModel], what: str, config: dict) -> BaseModel:
    """``options(**config)`` or a one-line error naming the first offending option."""
    try:
        return options(**config)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "?"
        if err["type"] == "extra_forbidden":
            raise HepFastSimError(f"unknown option {key!r} for {what}; known: {sorted(options.model_fields)}") from None
        raise HepFastSimError(f"option {key!r} of {what}: {err['msg'].lower()}, got {err.get('input')!r}") from None


def split_calibration(config: dict) -> tuple[dict, CalibrationOptions | None]:
    """A YAML config's model options and its calibration step (keys ``calibrate``, ``calibration_bins``,
    ``calibration_samples``, at the top or in an ensemble's ``options``); None when calibration is off."""
    keys = set(CalibrationOptions.model_fields)
    model = {k: v for k, v in config.items() if k not in keys}
    found = {k: v for k, v in config.items() if k in keys}
    if isinstance(config.get("options"), dict):
        model["options"] = {k: v for k, v in config["options"].items() if k not in keys}
        found = {**{k: v for k, v in config["options"].items() if k in keys}, **found}
    cal = validated(CalibrationOptions, "the calibration", found)
    return model, cal if cal.calibrate else None
