"""Ensemble uncertainty bands: the spread of K generators' histograms as the model's systematic uncertainty.

For every observable of ``feature_histograms`` the generated sample is split by the member that
made each shower (the ``member`` dataset written by ``generate`` for ensemble models); each member's
normalised histogram is computed on common edges (40 bins between the 0.5 and 99.5 percentiles of
the reference), and the band is their mean +- standard deviation. A reference bin is covered when
|reference - mean| <= sqrt(std^2 + reference statistical error^2).
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import Binning
from hepfastsim.validation.evaluate import feature_histograms
from hepfastsim.validation.features import high_level_features


def band_edges(ref: np.ndarray, bins: int = 40) -> np.ndarray:
    lo, hi = np.nanpercentile(ref, [0.5, 99.5])
    return np.linspace(lo, max(hi, lo + 1e-6), bins + 1)


def ensemble_bands(ref: ShowerDataset, gen: ShowerDataset, binning: Binning) -> dict[str, dict]:
    """name -> {edges, ref, ref_err, mean, std, coverage, mean_spread} (densities per bin)."""
    if "member" not in gen.extras:
        raise HepFastSimError("the generated file has no 'member' dataset: generate it with an ensemble model")
    who = np.asarray(gen.extras["member"])
    members = [gen.subset(who == k) for k in np.unique(who)]
    if len(members) < 2:
        raise HepFastSimError("an ensemble band needs showers of at least 2 members")
    fr = high_level_features(ref.showers, ref.energies, binning)  # the reference's features, once for all members
    per_member = [feature_histograms(ref, m, binning, fr=fr) for m in members]
    out = {}
    for name, (r, _) in per_member[0].items():
        edges = band_edges(r)
        width = np.diff(edges)
        nr, _ = np.histogram(r, edges)
        ref_d = nr / max(len(r), 1) / width
        ref_e = np.sqrt(nr) / max(len(r), 1) / width
        dens = np.array([np.histogram(pm[name][1], edges)[0] / max(len(pm[name][1]), 1) / width for pm in per_member])
        mean, std = dens.mean(0), dens.std(0, ddof=1)
        used = (nr > 0) | (dens.sum(0) > 0)
        covered = np.abs(ref_d - mean) <= np.sqrt(std**2 + ref_e**2)
        means = [np.mean(pm[name][1]) for pm in per_member]
        out[name] = {"edges": edges, "ref": ref_d, "ref_err": ref_e, "mean": mean, "std": std,
                     "coverage": float(covered[used].mean()) if used.any() else float("nan"),
                     "mean_spread": float(np.std(means, ddof=1))}
    return out


def ensemble_summary(bands: dict[str, dict], names: list[str] | None = None) -> dict:
    """Coverage per observable and overall, and the members' spread of each observable's mean (its systematic)."""
    names = names or list(bands)
    cov = {n: bands[n]["coverage"] for n in names}
    return {"members_band_coverage_mean": float(np.nanmean(list(cov.values()))), "coverage": cov,
            "systematic_of_mean": {n: bands[n]["mean_spread"] for n in names}}
