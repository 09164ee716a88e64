"""Validation of TPC pad-row responses as in the MPD fast-simulation study (EPJC 81, 599).

Per event the cluster moments of the (pad, time) amplitude image: barycentres along pad and
time, their variances and covariance, and the integrated amplitude. Their mean and standard
deviation are profiled versus each conditioning parameter (and the sub-bin positions); the
chi2 figure of merit sums, over the profile bins of every moment except the integral and
every parameter, the squared discrepancy of the upper (mean + std) and lower (mean - std)
band edges divided by the sum of their squared errors, reference and generated. Errors: mean
std/sqrt(n-1), std std/sqrt(2(n-1)) (Gaussian approximation instead of the study's bootstrap).
"""

from __future__ import annotations

import numpy as np

from hepfastsim.data.tpc_io import TPCDataset
from hepfastsim.errors import HepFastSimError
from hepfastsim.validation import metrics as M
from hepfastsim.validation.classifier import classifier_auc

MOMENT_NAMES = ("pad_mean", "time_mean", "pad_var", "time_var", "pad_time_cov", "amplitude_sum")


def cluster_moments(responses: np.ndarray) -> np.ndarray:
    """(N, pads, time) -> (N, 6) moments in bin units (NaN for empty responses), see MOMENT_NAMES."""
    r = np.clip(np.asarray(responses, np.float64), 0, None)
    s = r.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = r / s[:, None, None]
    i = np.arange(r.shape[1], dtype=np.float64)[None, :, None]
    j = np.arange(r.shape[2], dtype=np.float64)[None, None, :]
    mi = (w * i).sum(axis=(1, 2))
    mj = (w * j).sum(axis=(1, 2))
    vi = (w * i * i).sum(axis=(1, 2)) - mi**2
    vj = (w * j * j).sum(axis=(1, 2)) - mj**2
    cij = (w * i * j).sum(axis=(1, 2)) - mi * mj
    return np.column_stack([mi, mj, vi, vj, cij, s])


def profile_variables(ds: TPCDataset) -> dict[str, np.ndarray]:
    """The variables moments are profiled against: every non-constant parameter, plus the sub-bin positions."""
    out = {n: ds.params[:, k] for k, n in enumerate(ds.names)}
    if "drift_length" in ds.names:
        out["time_bin_fraction"] = ds.params[:, ds.names.index("drift_length")] % 1
    if "pad_coordinate" in ds.names:
        out["pad_coord_fraction"] = ds.params[:, ds.names.index("pad_coordinate")] % 1
    return out


def trend(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per bin of x: mean of y, its error, std of y, its error (NaN where a bin has < 2 events)."""
    out = np.full((4, len(edges) - 1), np.nan)
    k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    ok = np.isfinite(y) & (x >= edges[0]) & (x <= edges[-1])
    for b in range(len(edges) - 1):
        v = y[ok & (k == b)]
        if len(v) >= 2:
            sd = v.std()
            out[:, b] = v.mean(), sd / np.sqrt(len(v) - 1), sd, sd / np.sqrt(2 * (len(v) - 1))
    return tuple(out)


def chi2_terms(ref: TPCDataset, gen: TPCDataset, n_bins: int = 19) -> tuple[dict[str, float], int]:
    """chi2 of the mean +- std bands per 'moment vs variable' (integral excluded, as in the study), and the
    number of band points summed (two per filled profile bin): chi2/ndf ~ 1 for two samples of one simulation."""
    mr, mg = cluster_moments(ref.responses), cluster_moments(gen.responses)
    vr, vg = profile_variables(ref), profile_variables(gen)
    terms: dict[str, float] = {}
    ndf = 0
    for var in vr:
        lo, hi = min(vr[var].min(), vg[var].min()), max(vr[var].max(), vg[var].max())
        if hi - lo < 1e-9:
            continue  # constant in this sample (e.g. the pad row): nothing to profile
        edges = np.linspace(lo, hi, n_bins + 1)
        for m, name in enumerate(MOMENT_NAMES[:-1]):
            a_mean, a_mean_e, a_std, a_std_e = trend(vr[var], mr[:, m], edges)
            b_mean, b_mean_e, b_std, b_std_e = trend(vg[var], mg[:, m], edges)
            err2 = a_mean_e**2 + a_std_e**2 + b_mean_e**2 + b_std_e**2
            ok = np.isfinite(err2) & (err2 > 0)
            up = ((b_mean + b_std) - (a_mean + a_std)) ** 2 / err2
            low = ((b_mean - b_std) - (a_mean - a_std)) ** 2 / err2
            terms[f"{name} vs {var}"] = float(up[ok].sum() + low[ok].sum())
            ndf += 2 * int(ok.sum())
    return terms, ndf


def classifier_inputs(ds: TPCDataset) -> np.ndarray:
    """Low-level classifier inputs: log10(1 + amplitude) of every pad x time bin and the track parameters."""
    return np.concatenate([np.log10(1 + ds.responses.reshape(len(ds), -1)), ds.params], axis=1).astype(np.float32)


def evaluate_tpc(ref: TPCDataset, gen: TPCDataset, *, classifier_runs: int = 3, classifier_epochs: int = 30,
                 seed: int = 0, protocol: str = "quick") -> dict:
    """chi2, per-term chi2, separation power of every moment, and low/high-level classifier AUCs (inputs
    standardised with the reference's mean and std: moments and track parameters differ by orders of magnitude;
    the ``quick`` protocol since a few thousand events give CaloChallenge's batches of 1000 too few steps)."""
    if ref.shape != gen.shape or ref.names != gen.names:
        raise HepFastSimError(f"reference window {ref.shape} {ref.names} differs from generated {gen.shape} {gen.names}")
    terms, ndf = chi2_terms(ref, gen)
    mr, mg = cluster_moments(ref.responses), cluster_moments(gen.responses)
    okr, okg = np.isfinite(mr).all(1), np.isfinite(mg).all(1)
    result: dict = {"n_reference": len(ref), "n_generated": len(gen), "window": list(ref.shape),
                    "chi2": float(sum(terms.values())), "chi2_ndf": ndf, "chi2_terms": terms,
                    "empty_fraction": {"reference": float(1 - okr.mean()), "generated": float(1 - okg.mean())}}
    result["separation_power"] = {n: M.separation_power(mr[okr, k], mg[okg, k]) for k, n in enumerate(MOMENT_NAMES)}
    opts = {"runs": classifier_runs, "epochs": classifier_epochs, "seed": seed, "protocol": protocol}
    low = classifier_auc(*M.standardise_pair(classifier_inputs(ref), classifier_inputs(gen)), **opts)
    hr = np.concatenate([np.nan_to_num(mr), ref.params], 1)
    hg = np.concatenate([np.nan_to_num(mg), gen.params], 1)
    high = classifier_auc(*M.standardise_pair(hr, hg), **opts)
    result["classifier_low"], result["classifier_high"] = low.as_dict(), high.as_dict()
    return result
