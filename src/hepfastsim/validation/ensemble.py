"""Ensemble uncertainty bands: the spread of K generators' histograms as the model's systematic uncertainty.

For every per-shower observable of ``feature_histograms`` the generated sample is split by the member that
made each shower (the ``member`` dataset written by ``generate`` for ensemble models); each member's
normalised histogram is computed on common edges (40 bins between the 0.5 and 99.5 percentiles of
the reference). The band is the 68 % prediction interval of K members: mean +- t * sqrt(1 + 1/K) * std,
with t the Student-t quantile for K - 1 degrees of freedom (1.52 std for K = 3, 1.25 for K = 5).
Mean +- std alone covers a further member only ~50 % of the time for K = 3, because the std of three
histograms is itself a poor estimate of the spread. A reference bin is covered when
|reference - mean| <= sqrt(half_width^2 + reference statistical error^2).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from hepfastsim.errors import HepFastSimError
from hepfastsim.geometry.binning import Binning
from hepfastsim.validation import calochallenge as CC
from hepfastsim.validation.features import Features


def band_edges(ref: np.ndarray, bins: int = 40) -> np.ndarray:
    lo, hi = np.nanpercentile(ref, [0.5, 99.5])
    return np.linspace(lo, max(hi, lo + 1e-6), bins + 1)


def prediction_factor(k: int, cl: float = 0.6827) -> float:
    """Half-width of the central ``cl`` prediction interval for one more draw, in units of the sample std of k
    draws from a normal distribution: t_{k-1}((1 + cl) / 2) * sqrt(1 + 1/k)."""
    return float(stats.t.ppf(0.5 + cl / 2, k - 1) * np.sqrt(1 + 1 / k))


def band_coverage(band: dict, half_width: np.ndarray) -> float:
    """Fraction of a band's used bins (reference or members non-empty) where |ref - mean| <= sqrt(half_width^2 +
    ref_err^2)."""
    used = (band["ref"] > 0) | (band["mean"] > 0)
    if not used.any():
        return float("nan")
    return float((np.abs(band["ref"] - band["mean"]) <= np.hypot(half_width, band["ref_err"]))[used].mean())


def ensemble_bands(fr: Features, fg: Features, member: np.ndarray, binning: Binning,
                   names: "list[str] | dict | None" = None) -> dict[str, dict]:
    """name -> {edges, ref, ref_err, mean, std, half_width, coverage, systematic_68} (densities per bin).

    fr, fg: the features of the reference and of the ensemble's sample; member: which member made each generated
    shower (the file's ``member`` dataset); names: the observables (default: every per-shower histogram).
    std: the members' spread per bin; half_width: the band's 68 % half-width (``prediction_factor`` * std);
    systematic_68: the same interval for the members' means of the observable."""
    who = np.asarray(member)
    if len(who) != len(fg):
        raise HepFastSimError(f"{len(who)} member labels for {len(fg)} generated showers")
    members = [fg.subset(who == k) for k in np.unique(who)]
    if len(members) < 2:
        raise HepFastSimError("an ensemble band needs showers of at least 2 members")
    names = [n for n in (names if names is not None else CC.histogram_edges(fr, binning)) if n != "cell_E"]
    factor = prediction_factor(len(members))
    out = {}
    for name in names:
        r = CC.observable(fr, name, binning)
        vals = [CC.observable(m, name, binning) for m in members]
        edges = band_edges(r)
        width = np.diff(edges)
        nr, _ = np.histogram(r, edges)
        ref_d = nr / max(len(r), 1) / width
        ref_e = np.sqrt(nr) / max(len(r), 1) / width
        dens = np.array([np.histogram(v, edges)[0] / max(len(v), 1) / width for v in vals])
        std = dens.std(0, ddof=1)
        spread = float(np.std([np.mean(v) for v in vals], ddof=1))
        b = {"edges": edges, "ref": ref_d, "ref_err": ref_e, "mean": dens.mean(0), "std": std,
             "half_width": factor * std, "systematic_68": factor * spread}
        out[name] = {**b, "coverage": band_coverage(b, b["half_width"])}
    return out


def ensemble_summary(bands: dict[str, dict]) -> dict:
    """Coverage per observable; its mean over the high-level feature histograms; and the 68 % systematic on each
    observable's mean (members' spread)."""
    cov = {n: b["coverage"] for n, b in bands.items()}
    return {"band_coverage_high_level": float(np.nanmean(list(cov.values()))), "coverage": cov,
            "systematic_of_mean": {n: b["systematic_68"] for n, b in bands.items()}}
