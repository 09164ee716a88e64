"""Compare a generated sample with a reference sample: every metric in one dict.

Used by ``hepfastsim evaluate`` and by the model benchmarks so that every family is
scored the same way.
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import Binning
from hepfastsim.validation import metrics as M
from hepfastsim.validation.features import (
    feature_matrix,
    high_level_features,
    local_maxima_per_layer,
    per_layer_features,
)


def feature_histograms(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, fr: dict | None = None,
                       fg: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """1-D observables to histogram and score: name -> (reference values, generated values).

    fr, fg: ``high_level_features`` of ref and gen when already computed.
    """
    fr = fr if fr is not None else high_level_features(ref.showers, ref.energies, binning)
    fg = fg if fg is not None else high_level_features(gen.showers, gen.energies, binning)
    out = {"E_tot/E_inc": (fr["e_ratio"], fg["e_ratio"])}
    for key, layers in per_layer_features(binning).items():
        for i, l in enumerate(layers):
            out[f"{key}_{l}"] = (fr[key][:, i], fg[key][:, i])
    nz_r, nz_g = ref.showers[ref.showers > 0], gen.showers[gen.showers > 0]
    out["log10_voxel_E"] = (np.log10(nz_r), np.log10(nz_g))
    return out


def evaluate(
    ref: ShowerDataset, gen: ShowerDataset, binning: Binning, *, classifier_runs: int = 1, classifier_epochs: int = 30,
    seed: int = 0, fast: bool = False,
) -> dict:
    """All validation metrics of gen against ref. fast=True skips the slow diversity and coverage checks."""
    ref.check_binning(binning)
    gen.check_binning(binning)
    result: dict = {"n_reference": len(ref), "n_generated": len(gen), "binning": binning.name}
    fr = high_level_features(ref.showers, ref.energies, binning)
    fg = high_level_features(gen.showers, gen.energies, binning)
    hists = feature_histograms(ref, gen, binning, fr, fg)
    sp = {k: M.separation_power_error(r, g, seed=seed) for k, (r, g) in hists.items()}
    seps = {k: v[0] for k, v in sp.items()}
    result["separation_power"] = seps
    result["separation_power_err"] = {k: v[1] for k, v in sp.items()}
    result["separation_power_floor"] = {k: v[2] for k, v in sp.items()}
    result["separation_power_mean"] = float(np.mean(list(seps.values())))
    # histograms whose separation power exceeds its statistical floor by more than 3 bootstrap errors
    result["separation_power_significant"] = sorted(k for k, (v, e, f) in sp.items() if v - f > 3 * e)
    low = M.classifier_auc(M.low_level_inputs(ref.showers, ref.energies), M.low_level_inputs(gen.showers, gen.energies),
                           runs=classifier_runs, epochs=classifier_epochs, seed=seed)
    xr, _ = feature_matrix(ref.showers, ref.energies, binning, fr)
    xg, _ = feature_matrix(gen.showers, gen.energies, binning, fg)
    high = M.classifier_auc(xr, xg, runs=classifier_runs, epochs=classifier_epochs, seed=seed)
    result["classifier_low"] = low.as_dict()
    result["classifier_high"] = high.as_dict()
    if "member" in gen.extras:  # an ensemble's sample: the members' spread is the model's systematic uncertainty
        from hepfastsim.validation.ensemble import ensemble_bands, ensemble_summary

        result["ensemble"] = ensemble_summary(ensemble_bands(ref, gen, binning))
    sr, sg = M.standardise_pair(xr, xg)
    result["fpd"], result["fpd_err"] = M.fpd(xr, xg)  # JetNet normalisation and seed, CaloChallenge settings
    # CaloChallenge's batch of 10 000, but never more showers per batch than the smaller sample holds
    result["kpd"], result["kpd_err"] = M.kpd(xr, xg, batch_size=min(10_000, len(xr), len(xg)))
    if not fast:
        result["prdc"] = M.prdc(sr, sg, seed=seed)
        ssim_r, ssim_g = M.ssim_pairs(ref.showers, seed=seed), M.ssim_pairs(gen.showers, seed=seed)
        result["diversity"] = {"ssim_reference_mean": float(ssim_r.mean()), "ssim_generated_mean": float(ssim_g.mean())}
        result["support_reference"] = M.support_size(ref.showers, seed=seed)
        result["support_generated"] = M.support_size(gen.showers, seed=seed)
        mr = (local_maxima_per_layer(ref.showers, binning) > 1).any(axis=1).mean()
        mg = (local_maxima_per_layer(gen.showers, binning) > 1).any(axis=1).mean()
        result["multi_maxima_fraction"] = {"reference": float(mr), "generated": float(mg)}
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


def near_energy_mask(energies: np.ndarray, energy: float, tolerance: float = 0.05) -> np.ndarray:
    """Events within +-tolerance (relative) of an incident energy in MeV: the window `train --holdout-energy`
    leaves out and `evaluate --holdout-energy` scores."""
    return np.abs(np.asarray(energies) / energy - 1) <= tolerance


def near_energy(ds: ShowerDataset, energy: float, tolerance: float = 0.05) -> ShowerDataset:
    """The showers of ``near_energy_mask``."""
    return ds.subset(near_energy_mask(ds.energies, energy, tolerance))


def interpolation(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, energy: float, *, seed: int = 0,
                  classifier_epochs: int = 30) -> dict:
    """Metrics restricted to an incident energy left out of training (``train --holdout-energy``)."""
    r, g = near_energy(ref, energy), near_energy(gen, energy)
    if min(len(r), len(g)) < 50:
        raise HepFastSimError(f"only {len(r)} reference / {len(g)} generated showers within 5 % of {energy:g} MeV; need 50")
    m = evaluate(r, g, binning, seed=seed, fast=True, classifier_epochs=classifier_epochs)
    return {"energy_MeV": energy, "n_reference": len(r), "n_generated": len(g),
            "auc_low": m["classifier_low"]["auc"], "auc_high": m["classifier_high"]["auc"], "fpd": m["fpd"],
            "fpd_err": m["fpd_err"], "e_ratio_separation_power": m["separation_power"]["E_tot/E_inc"]}
