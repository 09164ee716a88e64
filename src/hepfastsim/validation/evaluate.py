"""Compare a generated sample with a reference sample on CaloChallenge's terms: every metric in one dict.

Used by ``hepfastsim evaluate`` and by the model benchmarks so that every family is scored the same way. Both
samples are cut at the dataset's cell threshold first; the high-level features of each sample are computed once,
in chunks, and reused by the classifier, FPD/KPD, the histograms and the report.
"""

from __future__ import annotations

import time

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.data.samples import HOLDOUT_TOLERANCE, near_energy_mask
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import Binning
from hepfastsim.validation import calochallenge as CC
from hepfastsim.validation import metrics as M
from hepfastsim.validation.classifier import (
    CNN_PROTOCOL,
    ClassifierResult,
    Inputs,
    classifier_auc,
    get_protocol,
    low_level_inputs,
    require_regular_grid,
)
from hepfastsim.validation.features import (
    Features,
    compute_features,
    feature_matrix,
    high_level_vector,
    local_maxima_per_layer,
)


def feature_histograms(fr: Features, fg: Features, binning: Binning,
                       edges: dict[str, np.ndarray] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-shower observables with CaloChallenge's binning: name -> (reference values, generated values, edges).
    The cell spectrum (a per-voxel histogram) is not among them; see ``calochallenge.cell_counts``."""
    edges = edges if edges is not None else CC.histogram_edges(fr, binning)
    return {n: (CC.observable(fr, n, binning), CC.observable(fg, n, binning), e) for n, e in edges.items() if n != "cell_E"}


def sample_features(ref: ShowerDataset, gen: ShowerDataset, binning: Binning) -> tuple[Features, Features]:
    """Both samples' features after the binning's cell threshold: computed once, passed to evaluate and the report."""
    thr = binning.threshold
    return (compute_features(ref.showers, ref.energies, binning, thr),
            compute_features(gen.showers, gen.energies, binning, thr))


def timing_row(path) -> dict[str, float]:
    """ms per shower at batch 1/100/10000, averaged over the energies of a ``benchmark --out`` JSON file."""
    import json
    from pathlib import Path

    try:
        per = json.loads(Path(path).read_text())["per_energy"]
        return {b: float(np.mean([v["ms_per_shower"][b] for v in per.values()])) for b in ("1", "100", "10000")}
    except FileNotFoundError:
        raise HepFastSimError(f"timing file not found: {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise HepFastSimError(f"{path} is not a `hepfastsim benchmark --out` file ({exc.__class__.__name__}: {exc})") from None


def prdc_max_rows(n_voxels: int) -> int:
    """Rows per sample for PRDC on voxels: 10 000 up to dataset-2 size, fewer for larger readouts (CPU time)."""
    return int(np.clip(6.5e7 / n_voxels, 1000, 10_000))


def decade_edges(energies: np.ndarray) -> np.ndarray | None:
    """Incident-energy decades (MeV: 1e3, 1e4, ...) spanned by a sample, None when it lies within one decade."""
    e = np.asarray(energies, np.float64)
    if not len(e) or not np.all(np.isfinite(e)) or e.min() <= 0:
        return None
    lo, hi = np.floor(np.log10(e.min()) + 1e-9), np.ceil(np.log10(e.max()) - 1e-9)
    return 10.0 ** np.arange(lo, hi + 1) if hi - lo >= 2 else None


def classifiers(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, high_level: tuple[np.ndarray, np.ndarray], *,
                protocol: str = "calochallenge", runs: int = 3, epochs: int | None = None,
                seed: int = 0) -> tuple[ClassifierResult, ClassifierResult, dict[str, float]]:
    """The low- and high-level classifiers of gen against ref (each ``runs`` trainings, AUC also per incident-energy
    decade when the sample spans several) and their seconds: (low, high, {"low", "high", "total"}).
    high_level: both samples' ``high_level_vector`` (computed once by the caller, which also needs it for FPD/KPD)."""
    thr = binning.threshold
    opts = {"protocol": protocol, "runs": runs, "epochs": epochs, "seed": seed, "energy_bins": decade_edges(ref.energies)}
    t0 = time.perf_counter()
    low = classifier_auc(low_level_inputs(ref.showers, ref.energies, thr), low_level_inputs(gen.showers, gen.energies, thr),
                         **opts)
    t1 = time.perf_counter()
    xr, xg = high_level
    high = classifier_auc(Inputs(xr, ref.energies), Inputs(xg, gen.energies), **opts,
                          standardise=get_protocol(protocol).standardise_features)
    t2 = time.perf_counter()
    return low, high, {"low": t1 - t0, "high": t2 - t1, "total": t2 - t0}


def cnn_classifier(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, *, runs: int = 3,
                   epochs: int | None = None, seed: int = 0) -> ClassifierResult:
    """The CNN column ("binary cls cnn"): ``CNN_PROTOCOL`` on the low-level inputs of a regular voxel grid."""
    grid = require_regular_grid(binning)
    thr = binning.threshold
    return classifier_auc(low_level_inputs(ref.showers, ref.energies, thr), low_level_inputs(gen.showers, gen.energies, thr),
                          protocol=CNN_PROTOCOL, runs=runs, epochs=epochs, seed=seed,
                          energy_bins=decade_edges(ref.energies), grid=grid)


def evaluate(
    ref: ShowerDataset, gen: ShowerDataset, binning: Binning, *, protocol: str = "calochallenge", classifier_runs: int = 3,
    classifier_epochs: int | None = None, seed: int = 0, fast: bool = False,
    features: tuple[Features, Features] | None = None, timing_ms: dict[str, float] | None = None, cnn: bool = False,
) -> dict:
    """All validation metrics of gen against ref. fast=True skips PRDC and the diversity checks; classifier_runs=0
    skips the classifiers; cnn=True adds the CNN classifier column (classifier_runs trainings; regular grids only).
    features: ``sample_features`` when already computed; timing_ms: ms per shower by batch size ("1", "100",
    "10000") for the final-table row."""
    ref.check_binning(binning)
    gen.check_binning(binning)
    thr = binning.threshold
    fr, fg = features or sample_features(ref, gen, binning)
    result: dict = {"n_reference": len(ref), "n_generated": len(gen), "binning": binning.name,
                    "dataset": CC.dataset_key(binning), "threshold_MeV": thr, "protocol": protocol}
    edges = CC.histogram_edges(fr, binning)
    cells = (*CC.cell_counts(ref.showers, edges["cell_E"], thr), *CC.cell_counts(gen.showers, edges["cell_E"], thr))
    seps = CC.separation_powers(fr, fg, binning, edges, cells)
    # the cell spectrum needs a pass over every voxel: kept, so the report draws it without a second pass
    result["cell_spectrum"] = {"edges": edges["cell_E"].tolist(), "reference": cells[0].tolist(),
                               "generated": cells[2].tolist()}
    result["separation_power"] = {k: s.__dict__ for k, s in seps.items()}
    result["separation_power_groups"] = CC.group_means(seps)
    xr, _ = high_level_vector(fr, binning)
    xg, _ = high_level_vector(fg, binning)
    if classifier_runs > 0:   # 0: the distances and separation powers alone (a re-scoring without the classifiers)
        low, high, seconds = classifiers(ref, gen, binning, (xr, xg), protocol=protocol, runs=classifier_runs,
                                         epochs=classifier_epochs, seed=seed)
        result["classifier_seconds"] = seconds
        result["classifier_low"] = low.as_dict()
        result["classifier_high"] = high.as_dict()
        if cnn:
            t0 = time.perf_counter()
            result["classifier_cnn"] = cnn_classifier(ref, gen, binning, runs=classifier_runs, seed=seed).as_dict()
            seconds["cnn"] = time.perf_counter() - t0
    if "member" in gen.extras:  # an ensemble's sample: the members' spread is the model's systematic uncertainty
        from hepfastsim.validation.ensemble import ensemble_bands, ensemble_summary

        result["ensemble"] = ensemble_summary(ensemble_bands(fr, fg, gen.extras["member"], binning, edges))
    result["fpd"], result["fpd_err"] = M.fpd(xr, xg)  # JetNet's definition, CaloChallenge's settings
    # CaloChallenge's batch of 10 000, but never more showers per batch than the smaller sample holds
    result["kpd"], result["kpd_err"] = M.kpd(xr, xg, batch_size=min(10_000, len(xr), len(xg)))
    if not fast:
        rng = np.random.default_rng(seed)
        n = prdc_max_rows(binning.n_voxels)
        ir, ig = rng.permutation(len(ref))[:n], rng.permutation(len(gen))[:n]
        result["prdc"] = M.prdc(M.prdc_inputs(ref.showers, thr, ir), M.prdc_inputs(gen.showers, thr, ig), max_n=n,
                                seed=seed)
        result["prdc"]["rows_per_sample"] = int(min(n, len(ir), len(ig)))
        ssim_r, ssim_g = M.ssim_pairs(ref.showers, seed=seed), M.ssim_pairs(gen.showers, seed=seed)
        result["diversity"] = {"ssim_reference_mean": float(ssim_r.mean()), "ssim_generated_mean": float(ssim_g.mean())}
        mr = (local_maxima_per_layer(ref.showers[ir], binning) > 1).any(axis=1).mean()
        mg = (local_maxima_per_layer(gen.showers[ig], binning) > 1).any(axis=1).mean()
        result["multi_maxima_fraction"] = {"reference": float(mr), "generated": float(mg)}
    if timing_ms:
        result["timing_ms_per_shower"] = timing_ms
    result["calochallenge_row"] = CC.table_row(result)
    return result


def amplification(train: ShowerDataset, holdout: ShowerDataset, gen: ShowerDataset, binning: Binning,
                  sizes: tuple[int, ...] = (100, 300, 1000, 3000, 10_000, 30_000, 100_000), seed: int = 0) -> dict:
    """Statistical amplification: mean W1 over the high-level features between a held-out reference and
    N generated showers, versus N (the sizes up to len(gen), and len(gen)), next to the same distance for all
    N_train training showers. Generated samples larger than N_train that come closer amplify the training set."""
    sizes = tuple(sorted({n for n in sizes if n < len(gen)} | {len(gen)}))
    rng = np.random.default_rng(seed)
    xh, _ = feature_matrix(holdout.showers, holdout.energies, binning)
    xt, _ = feature_matrix(train.showers, train.energies, binning)
    xg, _ = feature_matrix(gen.showers, gen.energies, binning)
    sd = xh.std(0) + 1e-12

    def mean_w1(x: np.ndarray) -> float:
        return float(np.mean([M.w1(xh[:, j] / sd[j], x[:, j] / sd[j]) for j in range(xh.shape[1])]))

    return {
        "n_train": len(train),
        "w1_train": mean_w1(xt),
        "w1_generated": {int(n): mean_w1(xg[rng.choice(len(xg), n, replace=False)]) for n in sizes if n <= len(xg)},
    }


def near_energy(ds: ShowerDataset, energy: float, tolerance: float = HOLDOUT_TOLERANCE) -> ShowerDataset:
    """The showers of ``near_energy_mask``."""
    return ds.subset(near_energy_mask(ds.energies, energy, tolerance))


def interpolation(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, energy: float, *, seed: int = 0,
                  protocol: str = "calochallenge", classifier_runs: int = 3, classifier_epochs: int | None = None) -> dict:
    """Metrics restricted to an incident energy left out of training (``train --holdout-energy``)."""
    r, g = near_energy(ref, energy), near_energy(gen, energy)
    if min(len(r), len(g)) < 50:
        raise HepFastSimError(f"only {len(r)} reference / {len(g)} generated showers within "
                              f"{HOLDOUT_TOLERANCE * 100:g} % of {energy:g} MeV; need 50")
    m = evaluate(r, g, binning, seed=seed, fast=True, protocol=protocol, classifier_runs=classifier_runs,
                 classifier_epochs=classifier_epochs)
    return {"energy_MeV": energy, "n_reference": len(r), "n_generated": len(g),
            "auc_low": m["classifier_low"]["auc"], "auc_high": m["classifier_high"]["auc"], "fpd": m["fpd"],
            "fpd_err": m["fpd_err"], "e_ratio_separation_power": m["separation_power"]["E_tot/E_inc"]["value"]}
