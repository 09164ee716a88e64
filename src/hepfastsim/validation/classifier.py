"""The binary classifier test of CaloChallenge's ``evaluate.py``: can a DNN tell generated from reference?

Protocol ``calochallenge`` (the reference's defaults): ``DNN(num_layer=2, num_hidden=2048)`` = an input layer and
two hidden layers of 2048 units, LeakyReLU (slope 0.01), no dropout, one logit; Adam, lr 2e-4, batch 1000,
50 epochs, BCE with logits, raw inputs (no standardisation). Each sample is shuffled and split 60/20/20 into
train / test / val; the epoch kept is the one with the best *accuracy* on test; isotonic regression fitted on the
test predictions calibrates the probabilities; AUC and JSD (= (ln 2 - BCE) / ln 2 of the calibrated
probabilities) come from val. Differences from the reference: float32 instead of float64, and both samples are
cut to the same size (the reference asserts it). ``quick`` is an explicitly named smaller variant (512 units,
30 epochs, batches of at most 1/20 of the training set, high-level inputs standardised) for tests, small samples
and quick looks; its AUCs are not comparable with the published table. Measured here (RESULTS): on raw inputs
at a single incident energy (10 GeV, 3000 showers each, 5 % energy scale) the high-level classifier scored AUC
0.50 where the single feature log10 E_tot alone scores 0.80; standardised it scores 0.78-0.79.

``CNN_PROTOCOL``: the same split, epoch choice, calibration, AUC and JSD with a small residual CNN over the voxel
grid (layer, alpha, r) of a regular readout (datasets 2 and 3, the demo readout) in place of the DNN: the
CaloChallenge final table's "binary cls cnn" column. The published column's exact network is not reproduced
(its code is not in CaloChallenge's evaluate.py); ours is ``CylindricalResNet``: circular padding in alpha, two
residual blocks at reduced resolution, log10 E_inc joined after pooling. On 2 CPU cores a dataset-2 training takes
minutes; dataset 3 is not practical there.

Inputs stream: a sample is any (N, D) array plus a per-batch transform, so the low-level input
[log10 E_inc, voxels / E_inc] is formed batch by batch from the showers instead of as a second copy of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from hepfastsim.errors import HepFastSimError
from hepfastsim.rng import isolated_torch_rng


@dataclass(frozen=True)
class ClassifierProtocol:
    """Hyper-parameters of the classifier test."""

    name: str
    hidden: int = 2048
    hidden_layers: int = 2          # after the input layer, as CaloChallenge's num_layer
    slope: float = 0.01
    lr: float = 2e-4
    batch_size: int = 1000
    epochs: int = 50
    min_steps: int = 1              # batches per epoch at least (quick variant: smaller batches for small samples)
    standardise_features: bool = False  # high-level inputs scaled by the training split's mean and std (CC: raw)
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    architecture: str = "dnn"       # "cnn": CylindricalResNet on the voxel grid (low-level inputs only)
    channels: int = 8               # cnn: feature maps

    def batch_for(self, n_train: int) -> int:
        return max(16, min(self.batch_size, n_train // self.min_steps))


PROTOCOLS = {
    "calochallenge": ClassifierProtocol("calochallenge"),
    "quick": ClassifierProtocol("quick", hidden=512, epochs=30, min_steps=20, standardise_features=True),
}
# the "binary cls cnn" column: a third classifier beside low and high level, not a choice for those two
CNN_PROTOCOL = ClassifierProtocol("cnn", hidden=128, lr=1e-3, batch_size=128, epochs=20, architecture="cnn", channels=8)


def get_protocol(protocol: "str | ClassifierProtocol") -> ClassifierProtocol:
    if isinstance(protocol, ClassifierProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise HepFastSimError(f"unknown classifier protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


@dataclass
class Inputs:
    """Classifier inputs of one sample: rows of ``data`` (and of ``energies``) mapped batch-wise by ``transform``."""

    data: np.ndarray
    energies: np.ndarray | None = None
    transform: Callable[[np.ndarray, np.ndarray | None], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.data)

    def rows(self, index: np.ndarray) -> np.ndarray:
        index = np.sort(index)  # contiguous reads are faster; the batch order does not matter
        x = self.data[index]
        e = None if self.energies is None else self.energies[index]
        return np.asarray(self.transform(x, e) if self.transform else x, dtype=np.float32)


def low_level_inputs(showers: np.ndarray, energies: np.ndarray, threshold: float = 0.0) -> Inputs:
    """CaloChallenge's low-level input [log10 E_inc, voxels / E_inc] after the cell threshold (MeV, stored units)."""

    def transform(v: np.ndarray, e: np.ndarray) -> np.ndarray:
        e = e.reshape(-1, 1)
        v = np.where(v < threshold, 0.0, v) / e
        return np.concatenate([np.log10(e), v], axis=1)

    return Inputs(showers, np.asarray(energies, dtype=np.float64).reshape(-1), transform)


@dataclass
class ClassifierResult:
    """AUC and JSD on the val split: mean and std over runs, every run's values, the split sizes per sample."""

    auc: float
    auc_std: float | None      # sample std over runs; None for a single run
    jsd: float
    jsd_std: float | None
    runs: int
    protocol: str
    aucs: list[float] = field(default_factory=list)
    jsds: list[float] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    n_per_sample: dict[str, int] = field(default_factory=dict)
    # with energy_bins: the same classifiers' AUC on the val rows of each incident-energy bin (edges in MeV),
    # mean and std over runs, and the val rows per bin (both samples)
    energy_bins: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _dnn(n_in: int, p: ClassifierProtocol) -> torch.nn.Sequential:
    mods: list[torch.nn.Module] = [torch.nn.Linear(n_in, p.hidden), torch.nn.LeakyReLU(p.slope)]
    for _ in range(p.hidden_layers):
        mods += [torch.nn.Linear(p.hidden, p.hidden), torch.nn.LeakyReLU(p.slope)]
    mods.append(torch.nn.Linear(p.hidden, 1))
    return torch.nn.Sequential(*mods)


def regular_grid(binning) -> tuple[int, int, int] | None:
    """(layers, alpha bins, radial bins) when every layer of the binning has the same alpha x r grid, else None
    (dataset 1: the CNN classifier does not apply)."""
    n_a, n_r = set(binning.n_alpha), {len(r) - 1 for r in binning.r_edges}
    if len(n_a) != 1 or len(n_r) != 1 or min(n_r) < 1:
        return None
    return binning.n_layers, n_a.pop(), n_r.pop()


def require_regular_grid(binning) -> tuple[int, int, int]:
    """``regular_grid`` of the binning, or the one-line error of the CNN classifier when it has none."""
    grid = regular_grid(binning)
    if grid is None:
        raise HepFastSimError(f"the CNN classifier needs the same alpha x r grid in every layer; {binning.name} has not")
    return grid


def _cylinder_pad(x: torch.Tensor) -> torch.Tensor:
    """Pad (N, C, layer, alpha, r) by one cell: circular in alpha (the angle closes), zeros in depth and radius."""
    x = torch.cat([x[:, :, :, -1:], x, x[:, :, :, :1]], dim=3)
    return torch.nn.functional.pad(x, (1, 1, 0, 0, 1, 1))


class _CylinderConv(torch.nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = torch.nn.Conv3d(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_cylinder_pad(x))


class _Residual(torch.nn.Module):
    def __init__(self, c: int, slope: float):
        super().__init__()
        self.a, self.b, self.act = _CylinderConv(c, c), _CylinderConv(c, c), torch.nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.b(self.act(self.a(x))))


class CylindricalResNet(torch.nn.Module):
    """The CNN of the ``cnn`` protocol. Input: low-level rows [log10 E_inc, voxels / E_inc] (alpha-major, r fastest
    within a layer); a cell enters as log10(v / E_inc + 1e-7) + 7, 0 when empty, so that cells near threshold and
    the core both weigh. A stem convolution at full resolution, average pooling to at most (15, 8, r), a residual
    block, pooling to at most (5, 4, 3), a residual block, then log10 E_inc joins the flattened maps in a dense head."""

    def __init__(self, grid: tuple[int, int, int], channels: int = 8, hidden: int = 128, slope: float = 0.01):
        super().__init__()
        self.grid = grid
        n_l, n_a, n_r = grid
        self.mid = (min(n_l, 15), min(n_a, 8), n_r)
        self.low = (min(n_l, 5), min(n_a, 4), min(n_r, 3))
        self.stem = _CylinderConv(1, channels)
        self.act = torch.nn.LeakyReLU(slope)
        self.block1, self.block2 = _Residual(channels, slope), _Residual(channels, slope)
        self.head = torch.nn.Sequential(torch.nn.Linear(channels * int(np.prod(self.low)) + 1, hidden),
                                        torch.nn.LeakyReLU(slope), torch.nn.Linear(hidden, 1))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps (N, C, *self.low) of the low-level rows x (N, 1 + voxels)."""
        v = x[:, 1:].reshape(-1, 1, *self.grid)
        v = torch.where(v > 0, torch.log10(v.clamp_min(0) + 1e-7) + 7.0, torch.zeros_like(v))
        h = self.act(self.stem(v))
        h = self.block1(torch.nn.functional.adaptive_avg_pool3d(h, self.mid))
        return self.block2(torch.nn.functional.adaptive_avg_pool3d(h, self.low))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.trunk(x).flatten(1), x[:, :1]], dim=1))


def _model(d_in: int, p: ClassifierProtocol, grid: tuple[int, int, int] | None) -> torch.nn.Module:
    if p.architecture == "dnn":
        return _dnn(d_in, p)
    if grid is None or d_in != 1 + int(np.prod(grid)):
        raise HepFastSimError(f"the {p.name} classifier needs low-level inputs of a regular voxel grid "
                              f"(layers x alpha x r), got {d_in} inputs and grid {grid}")
    return CylindricalResNet(grid, p.channels, p.hidden, p.slope)


def _split(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled row indices of one sample cut into train / test / val (CaloChallenge's ttv_split)."""
    counts = (n * np.asarray(fractions)).astype(int)
    return np.split(rng.permutation(n)[: counts.sum()], counts.cumsum()[:-1])


def _scaler(ref: Inputs, gen: Inputs, ir: np.ndarray, ig: np.ndarray, chunk: int = 4096):
    """Mean and std of the training rows of both samples, accumulated in chunks (float64)."""
    s1 = s2 = 0.0
    n = 0
    for src, idx in ((ref, ir), (gen, ig)):
        for i in range(0, len(idx), chunk):
            x = src.rows(idx[i:i + chunk]).astype(np.float64)
            s1, s2, n = s1 + x.sum(0), s2 + (x * x).sum(0), n + len(x)
    mu = s1 / n
    sd = np.sqrt(np.maximum(s2 / n - mu * mu, 0.0)) + 1e-8
    return mu.astype(np.float32), sd.astype(np.float32)


def _scaled(src: Inputs, mu: np.ndarray, sd: np.ndarray) -> Inputs:
    inner = src.transform

    def transform(x, e):
        return ((inner(x, e) if inner else x) - mu) / sd

    return Inputs(src.data, src.energies, transform)


def _gather(ref: Inputs, gen: Inputs, ir: np.ndarray, ig: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch: reference rows labelled 0, generated rows labelled 1."""
    x = np.concatenate([ref.rows(ir), gen.rows(ig)])
    y = np.concatenate([np.zeros(len(ir)), np.ones(len(ig))]).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def _predict(model: torch.nn.Module, ref: Inputs, gen: Inputs, ir: np.ndarray, ig: np.ndarray,
             batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of a split, in batches."""
    ps, ys = [], []
    model.eval()
    with torch.no_grad():
        for src, idx, label in ((ref, ir, 0.0), (gen, ig, 1.0)):
            for i in range(0, len(idx), batch):
                x = torch.from_numpy(src.rows(idx[i:i + batch]))
                ps.append(torch.sigmoid(model(x)).squeeze(-1).double().numpy())
                ys.append(np.full(len(x), label))
    return np.concatenate(ps), np.concatenate(ys)


def _binned_auc(y: np.ndarray, p: np.ndarray, e: np.ndarray, edges: np.ndarray) -> tuple[list[float], list[int]]:
    """AUC of the rows with incident energy in each bin [edges[i], edges[i+1]) (NaN without both labels), rows per bin."""
    which = np.digitize(e, edges) - 1
    aucs, counts = [], []
    for b in range(len(edges) - 1):
        sel = which == b
        both = sel.any() and 0 < y[sel].sum() < sel.sum()
        aucs.append(float(roc_auc_score(y[sel], p[sel])) if both else float("nan"))
        counts.append(int(sel.sum()))
    return aucs, counts


def _one_run(ref: Inputs, gen: Inputs, n: int, p: ClassifierProtocol, seed: int,
             standardise: bool, edges: np.ndarray | None = None,
             grid: tuple[int, int, int] | None = None) -> tuple[float, float, int, dict, tuple]:
    rng = np.random.default_rng(seed)
    (tr_r, te_r, va_r), (tr_g, te_g, va_g) = _split(n, p.split, rng), _split(n, p.split, rng)
    if standardise:
        mu, sd = _scaler(ref, gen, tr_r, tr_g)
        ref, gen = _scaled(ref, mu, sd), _scaled(gen, mu, sd)
    torch.manual_seed(seed)
    d_in = ref.rows(tr_r[:1]).shape[1]
    model = _model(d_in, p, grid)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    lossf = torch.nn.BCEWithLogitsLoss()
    n_tr = len(tr_r) + len(tr_g)
    bs = p.batch_for(n_tr)
    best_acc, best_state, best_epoch = -np.inf, None, 0
    for epoch in range(p.epochs):
        model.train()
        order = rng.permutation(n_tr)  # positions in [ref train | gen train]
        for i in range(0, n_tr, bs):
            pos = order[i:i + bs]
            x, y = _gather(ref, gen, tr_r[pos[pos < len(tr_r)]], tr_g[pos[pos >= len(tr_r)] - len(tr_r)])
            opt.zero_grad()
            loss = lossf(model(x).squeeze(-1), y)
            loss.backward()
            opt.step()
        prob, lab = _predict(model, ref, gen, te_r, te_g, bs)
        acc = float(np.mean(np.round(prob) == lab))
        if acc > best_acc:
            best_acc, best_epoch, p_test, y_test = acc, epoch + 1, prob, lab   # the kept epoch's test predictions
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if acc == 1.0:
            break
    model.load_state_dict(best_state)
    va_r, va_g = np.sort(va_r), np.sort(va_g)   # Inputs.rows reads sorted rows: predictions in this order
    p_val, y_val = _predict(model, ref, gen, va_r, va_g, bs)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(p_test, y_test)
    p_cal = iso.predict(p_val)
    bce = -np.mean(y_val * np.log(p_cal) + (1 - y_val) * np.log(1 - p_cal))
    sizes = {"train": len(tr_r), "test": len(te_r), "val": len(va_r)}
    binned = ()
    if edges is not None and ref.energies is not None and gen.energies is not None:
        binned = _binned_auc(y_val, p_cal, np.concatenate([ref.energies[va_r], gen.energies[va_g]]), edges)
    return float(roc_auc_score(y_val, p_cal)), float((np.log(2.0) - bce) / np.log(2.0)), best_epoch, sizes, binned


@isolated_torch_rng
def classifier_auc(ref: "Inputs | np.ndarray", gen: "Inputs | np.ndarray", *,
                   protocol: "str | ClassifierProtocol" = "calochallenge", runs: int = 3, seed: int = 0,
                   epochs: int | None = None, standardise: bool = False,
                   energy_bins: "np.ndarray | None" = None,
                   grid: "tuple[int, int, int] | None" = None) -> ClassifierResult:
    """Train the classifier ``runs`` times (seeds seed, seed + 1, ...: other splits and initialisations) to tell
    reference (label 0) from generated (label 1); AUC 0.5 means indistinguishable. Both samples are cut to the
    size of the smaller one. epochs: overrides the protocol's number of epochs; standardise: scale the inputs by
    the training rows' mean and std (the quick protocol does so for high-level features); energy_bins: edges of
    incident energy (MeV; Inputs with energies) for the AUC of the same classifiers per bin; grid: (layers, alpha,
    r) of the voxels, for the cnn protocol (``regular_grid``)."""
    p = get_protocol(protocol)
    if epochs is not None:
        if epochs < 1:
            raise HepFastSimError(f"classifier epochs must be >= 1, got {epochs}")
        p = ClassifierProtocol(**{**asdict(p), "epochs": epochs, "name": f"{p.name} ({epochs} epochs)"})
    ref = ref if isinstance(ref, Inputs) else Inputs(np.asarray(ref))
    gen = gen if isinstance(gen, Inputs) else Inputs(np.asarray(gen))
    n = min(len(ref), len(gen))
    if n < 50:
        raise HepFastSimError(f"classifier needs at least 50 events per sample, got {n}")
    if runs < 1:
        raise HepFastSimError(f"classifier runs must be >= 1, got {runs}")
    edges = None if energy_bins is None else np.asarray(energy_bins, np.float64)
    aucs, jsds, epochs_kept, sizes, per_bin = [], [], [], {}, []
    for run in range(runs):
        auc, jsd, best, sizes, binned = _one_run(ref, gen, n, p, seed + run, standardise, edges, grid)
        aucs.append(auc)
        jsds.append(jsd)
        epochs_kept.append(best)
        per_bin.append(binned)
    spread = (lambda v: float(np.std(v, ddof=1))) if runs > 1 else (lambda v: None)  # no spread from one run
    bins = {}
    if edges is not None and per_bin[0]:
        a = np.array([b[0] for b in per_bin])
        bins = {"edges_MeV": edges.tolist(), "auc": a.mean(0).tolist(),
                "auc_std": a.std(0, ddof=1).tolist() if runs > 1 else None, "n_val": per_bin[0][1]}
    return ClassifierResult(float(np.mean(aucs)), spread(aucs), float(np.mean(jsds)), spread(jsds), runs, p.name,
                            aucs, jsds, epochs_kept, sizes, bins)
