"""Invertible preprocessing shared by every model family.

Responses x >= 0 (voxel energies in MeV, or TPC amplitudes) are divided by a scale set by the
conditions (the incident energy for showers, 1 for TPC), mapped with u = log(x/scale + eps)
and standardised per feature. The inverse clips at zero and applies the readout threshold,
so generated responses are physical (non-negative, zero-suppressed like the reference).
Conditions are log-transformed where requested, extended by the fractional part of the
columns that position a response on a pad / time-bin grid (the TPC drift length and pad
coordinate: the response is centred on their integer part, so the network needs the rest),
optionally by derived features of a named feature map (``CONDITION_FEATURES``: for the TPC the
expected cluster extent of the track, see ``tpc_track_features``), and standardised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError


LOGIT_ALPHA = 1e-6
# signed responses (PID DLLs) below this, relative to eps, are generated as exact zeros: the data hold exact zeros
# (no information, or two hypotheses that predict the same) that a calibrated model reproduces only to rounding
SIGNED_ZERO = 1e-4


CHUNK = 4096  # showers per chunk in the transforms ...
CHUNK_BYTES = 128 * 2**20  # ... but no more than this in one float64 copy of a chunk (dataset 3: 413 showers)


def energies_to_fractions(e: np.ndarray, eps: float) -> np.ndarray:
    """(N, G) group energies -> [log(E_tot + eps), logit of E_i / sum_{j>=i} E_j for i < G-1] (CaloFlow)."""
    rest = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]          # sum_{j>=i} E_j
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(rest[:, :-1] > 0, e[:, :-1] / rest[:, :-1], 0.0)
    f = LOGIT_ALPHA + (1 - 2 * LOGIT_ALPHA) * np.clip(f, 0.0, 1.0)
    return np.column_stack([np.log(rest[:, 0] + eps), np.log(f / (1 - f))])


def fractions_to_energies(v: np.ndarray, eps: float) -> np.ndarray:
    """Inverse of ``energies_to_fractions``: (N, G) -> non-negative group energies summing to E_tot."""
    remaining = np.clip(np.exp(v[:, 0]) - eps, 0.0, None)
    f = (1 / (1 + np.exp(-v[:, 1:])) - LOGIT_ALPHA) / (1 - 2 * LOGIT_ALPHA)
    f = np.clip(f, 0.0, 1.0)
    out = np.empty((len(v), v.shape[1]))
    for i in range(v.shape[1] - 1):
        out[:, i] = f[:, i] * remaining
        remaining = remaining - out[:, i]
    out[:, -1] = remaining
    return out


@dataclass
class ResponseTransform:
    """x -> standardised log(x/scale + eps). Fitted constants travel inside every checkpoint.

    With groups (calorimeter layers: (start, stop) feature ranges) the group energies are appended
    as extra standardised variables in CaloFlow's parametrisation: log(E_tot/scale + eps), then the
    stick-breaking fractions E_i / (E_i + ... + E_last), logit-transformed; ``inverse`` rebuilds
    the layer energies from them and rescales each group of generated voxels to its energy. The
    total energy and the longitudinal profile are then variables of their own instead of sums
    of many noisy voxels.

    With ``dequantize`` (CaloFlow's noise injection) the training cells below the readout threshold
    become noise instead of a spike: log(eps * (1 - U/2)), U uniform in [0, 1), a band of width
    log 2 just below log(eps), the value of an empty cell (group energies stay those of the real
    cells). The per-cell distribution is then continuous, which continuous generative models learn
    far more easily, and ``inverse`` maps the whole band back to zero. The band lies below the
    threshold of every shower whatever its energy; noise uniform in [0, threshold) MeV instead ends
    at log(threshold / E_inc), at a different place for every incident energy, and generated values
    near that edge became hits (measured: 4.6 instead of 1.2 hits per shower in the demo's
    eighth layer after calibration).
    """

    eps: float = 1e-6
    threshold: float = 0.0
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    groups: tuple[tuple[int, int], ...] = ()
    u_max: np.ndarray | None = None   # per-feature maximum of the standardised training data
    dequantize: bool = False
    signed: bool = False   # responses of either sign (PID log-likelihood differences): asinh(x / eps) instead of log
    # signed responses only: (i, j) models feature i as x_i - x_j (PID: DLLp - DLLK, exactly 0 where the kaon and
    # proton hypotheses predict the same, i.e. below both thresholds: a spike the calibration can then reproduce)
    differences: tuple[tuple[int, int], ...] = ()
    # groups only: a group whose generated energy reaches the threshold but whose cells all fall below it keeps its
    # energy in its largest cell (the group energies decide whether a layer is hit, the cells only where)
    fill_empty_groups: bool = False

    @property
    def n_out(self) -> int:
        """Width of the preprocessed vector (features + one per group)."""
        return len(self.mean)

    def _log(self, x: np.ndarray, scale: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.signed:   # linear within +-eps, logarithmic in the tails, either sign
            if self.differences:
                x = x.copy()
                for i, j in self.differences:
                    x[:, i] -= x[:, j]
            return np.arcsinh(x / (scale[:, None] * self.eps))
        u = np.log(x / scale[:, None] + self.eps)
        if self.dequantize and rng is not None:
            below = x < self.threshold
            u[below] = np.log(self.eps) + np.log1p(-0.5 * rng.uniform(0.0, 1.0, int(below.sum())))
        if not self.groups:
            return u
        x = x / scale[:, None]
        return np.column_stack([u, energies_to_fractions(np.stack([x[:, a:b].sum(1) for a, b in self.groups], 1), self.eps)])

    def _chunks(self, x: np.ndarray, scale: np.ndarray, rng: np.random.Generator | None):
        """The float64 log features of a chunk of rows at a time (memory: a few float64 copies of one chunk, never
        of the whole set; the draws of rng are the same whatever the chunk size)."""
        rows = max(64, min(CHUNK, CHUNK_BYTES // (8 * max(x.shape[1], 1))))
        for i in range(0, len(x), rows):
            yield i, self._log(x[i:i + rows], scale[i:i + rows], rng)

    def fit(self, x: np.ndarray, scale: np.ndarray) -> "ResponseTransform":
        """Mean and maximum (first pass), std (second pass, float64 sums) of the features of the training set; the
        maximum of the standardised features follows from them."""
        scale = np.asarray(scale, np.float64)
        s1, u_hi = 0.0, -np.inf
        for _, u in self._chunks(x, scale, np.random.default_rng(0)):
            s1, u_hi = s1 + u.sum(0), np.maximum(u_hi, u.max(0))
        self.mean = s1 / len(x)
        s2 = sum(((u - self.mean) ** 2).sum(0) for _, u in self._chunks(x, scale, np.random.default_rng(0)))
        # floor for features (nearly) constant in training, so a rare non-zero value elsewhere stays O(10), not O(1e6)
        sd = np.sqrt(s2 / len(x))
        self.std = np.maximum(sd, 0.01 * sd.max()) + 1e-6
        self.u_max = (u_hi - self.mean) / self.std   # standardising is increasing: the maximum maps to the maximum
        return self

    def forward(self, x: np.ndarray, scale: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Preprocessed responses (float32, computed in chunks); rng: draw the dequantisation noise (training
        data) when ``dequantize``."""
        scale = np.asarray(scale, np.float64)
        out = np.empty((len(x), self.n_out), np.float32)
        for i, u in self._chunks(x, scale, rng):
            out[i:i + len(u)] = (u - self.mean) / self.std
        return out

    def inverse(self, u: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Physical responses; a generated value above the training maximum of its feature (plus one training
        standard deviation) is clipped there, so one wild output cannot create a shower of absurd energy."""
        u = np.array(u, np.float32)   # float32 and in place: this runs on every generated batch
        if self.u_max is not None:
            np.minimum(u, (self.u_max + 1.0).astype(np.float32), out=u)
        d = len(self.mean) - len(self.groups)
        x = u[:, :d]
        x *= self.std[:d].astype(np.float32)
        x += self.mean[:d].astype(np.float32)
        if self.signed:
            np.sinh(x, out=x)
            x[np.abs(x) < SIGNED_ZERO] = 0.0
            x *= (np.float32(self.eps) * scale.astype(np.float32))[:, None]
            for i, j in self.differences:
                x[:, i] += x[:, j]
            return np.ascontiguousarray(x)
        np.exp(x, out=x)
        x -= np.float32(self.eps)
        np.maximum(x, 0.0, out=x)
        x *= scale.astype(np.float32)[:, None]
        if self.groups:
            v = u[:, d:].astype(np.float64) * self.std[d:] + self.mean[d:]
            target = fractions_to_energies(v, self.eps) * scale[:, None]
            peak = [x[:, a:b].argmax(1) for a, b in self.groups] if self.fill_empty_groups else None
            x[x < self.threshold] = 0.0   # cells below threshold carry no energy, before the layers are rescaled
            for j, (a, b) in enumerate(self.groups):
                s = x[:, a:b].sum(1, dtype=np.float64)
                if peak is not None:
                    empty = np.flatnonzero((s == 0) & (target[:, j] >= self.threshold))
                    x[empty, a + peak[j][empty]] = 1.0
                    s[empty] = 1.0
                x[:, a:b] *= np.where(s > 0, target[:, j] / np.where(s > 0, s, 1.0), 0.0).astype(np.float32)[:, None]
        x[x < self.threshold] = 0.0
        return np.ascontiguousarray(x)

    def state(self) -> dict:
        return {"eps": self.eps, "threshold": self.threshold, "mean": self.mean, "std": self.std,
                "groups": [list(g) for g in self.groups], "u_max": self.u_max, "dequantize": self.dequantize,
                "signed": self.signed, "differences": [list(d) for d in self.differences],
                "fill_empty_groups": self.fill_empty_groups}

    @classmethod
    def from_state(cls, s: dict) -> "ResponseTransform":
        return cls(float(s["eps"]), float(s["threshold"]), np.asarray(s["mean"]), np.asarray(s["std"]),
                   tuple(tuple(g) for g in s.get("groups", ())), None if s.get("u_max") is None else np.asarray(s["u_max"]),
                   bool(s.get("dequantize", False)), bool(s.get("signed", False)),
                   tuple((int(i), int(j)) for i, j in s.get("differences", ())), bool(s.get("fill_empty_groups", False)))


def tpc_track_features(c: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
    """What a straight track leaves on one pad row, from its angles (degrees) and drift length (time bins).

    Over the row's height the track moves tan(crossing) along the pads and tan(dip) / cos(crossing) along z
    (drift time), per unit height: the cluster's pad and time extents grow with |tan(crossing)| and
    |tan(dip)| / cos(crossing), its pad-time tilt with their product, and its diffusion width with
    sqrt(drift length). A network sees these directly instead of learning tan and |.| of standardised
    angles (tan 60 deg is three times tan 30 deg: the extent is far from linear in the angle)."""
    phi = np.radians(c[:, names.index("crossing_angle")])
    u = np.tan(phi)
    w = np.tan(np.radians(c[:, names.index("dip_angle")])) / np.cos(phi)
    out = [np.abs(u), np.abs(w), u * u, w * w, u * w]
    if "drift_length" in names:
        out.append(np.sqrt(np.clip(c[:, names.index("drift_length")], 0.0, None)))
    return out


# derived condition features by name (TaskSpec.condition_features)
CONDITION_FEATURES = {"tpc_track": tpc_track_features}


@dataclass
class ConditionTransform:
    """Conditions (N, C) -> standardised (N, n_out): log of the log_columns, plus x mod 1 of the fraction_columns,
    plus the derived columns of the feature map named ``features`` ("" for none)."""

    log_columns: tuple[bool, ...] = ()
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    names: tuple[str, ...] = field(default_factory=tuple)
    fraction_columns: tuple[bool, ...] = ()
    features: str = ""

    @property
    def n_out(self) -> int:
        """Width of the transformed conditions (what the networks see)."""
        return len(self.mean)

    def _pre(self, c: np.ndarray) -> np.ndarray:
        c = np.asarray(c, np.float64).reshape(len(c), -1).copy()
        derived = CONDITION_FEATURES[self.features](c, self.names) if self.features else []
        for j, flag in enumerate(self.log_columns):
            if flag:
                c[:, j] = np.log(c[:, j])
        frac = [np.mod(c[:, j], 1.0) for j, flag in enumerate(self.fraction_columns) if flag]
        return np.column_stack([c, *frac, *derived]) if frac or derived else c

    def fit(self, c: np.ndarray) -> "ConditionTransform":
        p = self._pre(c)
        self.mean, self.std = p.mean(0), p.std(0) + 1e-6
        return self

    def forward(self, c: np.ndarray) -> np.ndarray:
        return ((self._pre(c) - self.mean) / self.std).astype(np.float32)

    def physical_column(self, u: np.ndarray, column: int | None) -> np.ndarray:
        """Column ``column`` of the physical conditions (e.g. the incident energy in MeV) from transformed ones;
        ones when column is None (a response without a scale)."""
        if column is None:
            return np.ones(len(u))
        v = np.asarray(u, np.float64)[:, column] * self.std[column] + self.mean[column]
        return np.exp(v) if column < len(self.log_columns) and self.log_columns[column] else v

    def state(self) -> dict:
        return {"log_columns": list(self.log_columns), "mean": self.mean, "std": self.std, "names": list(self.names),
                "fraction_columns": list(self.fraction_columns), "features": self.features}

    @classmethod
    def from_state(cls, s: dict) -> "ConditionTransform":
        if str(s.get("features", "")) not in ("", *CONDITION_FEATURES):
            raise HepFastSimError(f"unknown condition feature map {s['features']!r}; known: {', '.join(CONDITION_FEATURES)}")
        return cls(tuple(bool(v) for v in s["log_columns"]), np.asarray(s["mean"]), np.asarray(s["std"]), tuple(s["names"]),
                   tuple(bool(v) for v in s.get("fraction_columns", ())), str(s.get("features", "")))


class InverseResponse(torch.nn.Module):
    """``ResponseTransform.inverse`` as a torch module, fed with the standardised conditions the networks see:
    the physical scale (the incident energy) is rebuilt from them. Exported graphs end with it, so every
    family's ONNX output is the response in physical units (MeV), float32."""

    def __init__(self, x_tf: ResponseTransform, c_tf: ConditionTransform, scale_column: int | None):
        super().__init__()
        f32 = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=torch.float32)
        self.register_buffer("mean", f32(x_tf.mean))
        self.register_buffer("std", f32(x_tf.std))
        cap = np.full(len(x_tf.mean), np.inf) if x_tf.u_max is None else np.asarray(x_tf.u_max) + 1.0
        self.register_buffer("u_cap", f32(cap))
        self.eps, self.threshold, self.groups = float(x_tf.eps), float(x_tf.threshold), tuple(x_tf.groups)
        self.signed = bool(x_tf.signed)
        self.differences = tuple(x_tf.differences)
        for i, _ in self.differences:   # unit vectors: x + x[:, j] e_i adds column j to column i (traceable)
            self.register_buffer(f"unit{i}", torch.nn.functional.one_hot(torch.tensor(i), len(x_tf.mean)).float())
        self.col = scale_column
        self.log_scale = scale_column is not None and scale_column < len(c_tf.log_columns) and c_tf.log_columns[scale_column]
        self.c_mean = 0.0 if scale_column is None else float(c_tf.mean[scale_column])
        self.c_std = 1.0 if scale_column is None else float(c_tf.std[scale_column])

    def scale(self, c: torch.Tensor) -> torch.Tensor:
        if self.col is None:   # ones_like keeps the batch size dynamic in a traced (ONNX) graph
            return torch.ones_like(c[:, 0])
        v = c[:, self.col] * self.c_std + self.c_mean
        return torch.exp(v) if self.log_scale else v

    def forward(self, u: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale = self.scale(c)[:, None]
        u = torch.minimum(u, self.u_cap)
        d = len(self.mean) - len(self.groups)
        if self.signed:   # sinh as exponentials: ONNX opset 17 has no Sinh export in torch
            v = u * self.std + self.mean
            x = 0.5 * (torch.exp(v) - torch.exp(-v))
            x = torch.where(torch.abs(x) < SIGNED_ZERO, torch.zeros_like(x), x) * self.eps * scale
            for i, j in self.differences:
                x = x + x[:, j:j + 1] * getattr(self, f"unit{i}")[None, :]
            return x
        x = torch.clamp(torch.exp(u[:, :d] * self.std[:d] + self.mean[:d]) - self.eps, min=0.0) * scale
        zero = torch.zeros_like(x)
        if self.groups:
            v = u[:, d:] * self.std[d:] + self.mean[d:]
            remaining = torch.clamp(torch.exp(v[:, 0]) - self.eps, min=0.0)
            f = torch.clamp((torch.sigmoid(v[:, 1:]) - LOGIT_ALPHA) / (1 - 2 * LOGIT_ALPHA), 0.0, 1.0)
            x = torch.where(x < self.threshold, zero, x)  # below threshold carries no energy, before rescaling
            pieces, end = [], 0
            for j, (a, b) in enumerate(self.groups):
                target = (f[:, j] * remaining if j < len(self.groups) - 1 else remaining)[:, None] * scale
                remaining = remaining - f[:, j] * remaining if j < len(self.groups) - 1 else remaining
                s = x[:, a:b].sum(1, keepdim=True)
                pieces += [x[:, end:a], x[:, a:b] * torch.where(s > 0, target / torch.where(s > 0, s, 1.0), 0.0 * s)]
                end = b
            x = torch.cat(pieces + [x[:, end:]], 1)
            zero = torch.zeros_like(x)
        return torch.where(x < self.threshold, zero, x)
