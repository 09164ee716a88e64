"""CaloChallenge's histograms, separation powers and final-table row, as ``evaluate.py`` and its plotting helper.

Histogram binning (``evaluate_plotting_helper.py``), per dataset:

* E_tot / E_inc: 100 bins on [0.5, 1.5];
* E_layer: 39 log bins from the cell threshold to the reference's maximum of that layer;
* EC_eta, EC_phi: 100 bins on [-30, 30] mm (datasets 2/3), [-500, 500] (dataset 1, layers 12/13), else [-100, 100];
* width_eta, width_phi: [0, 30] (2/3), [0, 400] (1: 12/13), else [0, 100]; EC_r: [0, 42] (2/3), [0, 1500]
  (1: 12-14), else [0, 500]; width_r: [0, 20] (2/3), [0, 1500] / [0, 500];
* sparsity: 20 bins on [0, 1]; cell energies: 49 log bins from the threshold to the reference's largest voxel.

Separation power = 1/2 sum (h_r - h_g)^2 / (h_r + h_g) of the two histograms normalised *within the range*,
exactly the reference's density histograms; what falls outside is reported beside each value as the overflow
fraction of either sample, since a value computed on the in-range part alone says nothing about it. The
binnings of this package that are not CaloChallenge datasets (``demo``, a coarse readout of the dataset-2
detector) use the dataset-2/3 ranges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from hepfastsim.geometry.binning import Binning
from hepfastsim.validation.features import Features, per_layer_features, thresholded


def dataset_key(binning: Binning) -> str:
    """CaloChallenge's dataset name of a binning: '1-photons', '1-pions', '2', '3', or '2' for other binnings."""
    name = binning.name
    for key, stem in (("1-photons", "dataset_1_photons"), ("1-pions", "dataset_1_pions"), ("3", "dataset_3")):
        if stem in name:
            return key
    return "2"


def _limits(kind: str, layer: int, ds: str) -> tuple[float, float]:
    wide12 = layer in (12, 13)
    table = {
        "ec_xy": ((-30.0, 30.0), (-500.0, 500.0) if wide12 else (-100.0, 100.0)),
        "width_xy": ((0.0, 30.0), (0.0, 400.0) if wide12 else (0.0, 100.0)),
        "ec_r": ((0.0, 42.0), (0.0, 1500.0) if layer in (12, 13, 14) else (0.0, 500.0)),
        "width_r": ((0.0, 20.0), (0.0, 1500.0) if layer in (12, 13, 14) else (0.0, 500.0)),
    }[kind]
    return table[0] if ds in ("2", "3") else table[1]


def _log_edges(lo: float, hi: float, n: int) -> np.ndarray:
    hi = max(hi, lo * 10)
    return np.logspace(np.log10(lo), np.log10(hi), n)


def histogram_edges(ref: Features, binning: Binning) -> dict[str, np.ndarray]:
    """Observable name -> bin edges, CaloChallenge's choice for the binning's dataset."""
    ds, thr = dataset_key(binning), ref.threshold
    thr = thr if thr > 0 else 1e-3 * max(ref.max_voxel, 1e-12)  # log bins need a positive lower edge
    edges = {"E_tot/E_inc": np.linspace(0.5, 1.5, 101)}
    layers = per_layer_features(binning)
    for i, l in enumerate(layers["e_layer"]):
        edges[f"e_layer_{l}"] = _log_edges(thr, float(ref.values["e_layer"][:, i].max(initial=thr)), 40)
    for key, kind in (("ec_x", "ec_xy"), ("ec_y", "ec_xy"), ("width_x", "width_xy"), ("width_y", "width_xy"),
                      ("ec_r", "ec_r"), ("width_r", "width_r")):
        for l in layers[key]:
            edges[f"{key}_{l}"] = np.linspace(*_limits(kind, l, ds), 101)
    for l in layers["sparsity"]:
        edges[f"sparsity_{l}"] = np.linspace(0.0, 1.0, 21)
    edges["cell_E"] = _log_edges(thr, ref.max_voxel, 50)
    return edges


def observable(f: Features, name: str, binning: Binning) -> np.ndarray:
    """The per-shower values of a histogram's observable (not defined for cell_E, a per-voxel spectrum)."""
    if name == "E_tot/E_inc":
        return f["e_ratio"]
    key, layer = name.rsplit("_", 1)
    return f.values[key][:, per_layer_features(binning)[key].index(int(layer))]


def cell_counts(showers: np.ndarray, edges: np.ndarray, threshold: float, chunk: int = 2048) -> tuple[np.ndarray, int]:
    """Histogram of all voxel energies after the threshold (zeros fall below the first edge) and the number of
    voxels, in chunks."""
    counts = np.zeros(len(edges) - 1)
    for i in range(0, len(showers), chunk):
        x = thresholded(showers[i:i + chunk], threshold)
        counts += np.histogram(x[x > 0], edges)[0]
    return counts, int(np.prod(showers.shape))


@dataclass
class Separation:
    """One histogram's separation power, the fractions of either sample outside its range, and the value two
    samples of one distribution of these sizes give on average (n_occupied (1/N_r + 1/N_g) / 4)."""

    value: float
    overflow_reference: float
    overflow_generated: float
    floor: float


def separation(counts_ref: np.ndarray, counts_gen: np.ndarray, total_ref: int, total_gen: int) -> Separation:
    """Separation power of two count histograms normalised within range (CaloChallenge's density histograms)."""
    nr, ng = counts_ref.sum(), counts_gen.sum()
    hr = counts_ref / nr if nr else counts_ref
    hg = counts_gen / ng if ng else counts_gen
    value = 0.5 * float(np.sum((hr - hg) ** 2 / (hr + hg + 1e-16)))
    occupied = np.count_nonzero(counts_ref + counts_gen)
    floor = occupied * (1 / max(nr, 1) + 1 / max(ng, 1)) / 4
    return Separation(value, 1 - nr / max(total_ref, 1), 1 - ng / max(total_gen, 1), float(floor))


def separation_powers(fr: Features, fg: Features, binning: Binning, edges: dict[str, np.ndarray],
                      cells: tuple[np.ndarray, int, np.ndarray, int] | None = None) -> dict[str, Separation]:
    """Every histogram's separation power; cells: (counts_ref, n_ref, counts_gen, n_gen) of the cell spectrum.
    Cell-spectrum overflow counts the empty (zero) voxels, which the reference's log histogram drops too."""
    out = {}
    for name, e in edges.items():
        if name == "cell_E":
            if cells is not None:
                out[name] = separation(cells[0], cells[2], cells[1], cells[3])
            continue
        r, g = observable(fr, name, binning), observable(fg, name, binning)
        out[name] = separation(np.histogram(r, e)[0], np.histogram(g, e)[0], len(r), len(g))
    return out


def group_means(seps: dict[str, Separation]) -> dict[str, float]:
    """Mean separation power per observable family (CaloChallenge's 'sep E layer', 'sep EC eta', ... columns)."""
    groups: dict[str, list[float]] = {}
    for name, s in seps.items():
        group = name if name in ("E_tot/E_inc", "cell_E") else name.rsplit("_", 1)[0]
        groups.setdefault(group, []).append(s.value)
    return {g: float(np.mean(v)) for g, v in groups.items()}


# ---------------------------------------------------------------- the final table
TABLE_COLUMNS = {   # our metrics row -> the published table's column
    "auc_low": "binary cls low", "auc_low_std": "binary cls low std",
    "auc_high": "binary cls high", "auc_high_std": "binary cls high std",
    "auc_cnn": "binary cls cnn", "auc_cnn_std": "binary cls cnn std",
    "fpd_x1e3": "FPD * 1e3", "fpd_x1e3_err": "FPD * 1e3 std", "kpd_x1e3": "KPD * 1e3", "kpd_x1e3_err": "KPD * 1e3 std",
    "sep_E_total": "sep E total", "sep_cell": "sep cell",
    "precision": "precision", "recall": "recall", "density": "density", "coverage": "coverage",
    "ms_cpu_1": "time CPU 1", "ms_cpu_100": "time CPU 100", "ms_cpu_10000": "time CPU 10000",
}
PUBLISHED_NAMES = {"1-photons": "ds1-photons", "1-pions": "ds1-pions", "2": "ds2", "3": "ds3"}


def published_rows(binning: Binning) -> list[dict]:
    """The CaloChallenge final-table rows (Geant4 reference data) of the binning's dataset, shipped with the
    package (converted from the official tables by benchmarks/convert_calochallenge_tables.py)."""
    text = (resources.files("hepfastsim.validation") / "data" / "calochallenge_results.json").read_text()
    return json.loads(text)["datasets"][PUBLISHED_NAMES[dataset_key(binning)]]


def auc_columns(metrics: dict) -> dict[str, float | None]:
    """AUC low/high/CNN (mean and std over the classifier trainings) of evaluate's result; None where it ran without
    that classifier (classifier_runs=0; no cnn=True)."""
    lo, hi, cnn = (metrics.get(f"classifier_{k}") or {} for k in ("low", "high", "cnn"))
    return {"auc_low": lo.get("auc"), "auc_low_std": lo.get("auc_std"), "auc_high": hi.get("auc"),
            "auc_high_std": hi.get("auc_std"), "auc_cnn": cnn.get("auc"), "auc_cnn_std": cnn.get("auc_std")}


def table_row(metrics: dict) -> dict[str, float | None]:
    """Our evaluation in the columns of the final table (AUC low/high, FPD and KPD x 1e3, separation powers,
    PRDC; ms per shower at batch 1/100/10000 when a timing was given)."""
    seps = metrics["separation_power"]
    row = {**auc_columns(metrics),
           "fpd_x1e3": 1e3 * metrics["fpd"], "fpd_x1e3_err": 1e3 * metrics["fpd_err"],
           "kpd_x1e3": 1e3 * metrics["kpd"], "kpd_x1e3_err": 1e3 * metrics["kpd_err"],
           "sep_E_total": seps["E_tot/E_inc"]["value"], "sep_cell": seps.get("cell_E", {}).get("value")}
    row.update({k: metrics.get("prdc", {}).get(k) for k in ("precision", "recall", "density", "coverage")})
    timing = metrics.get("timing_ms_per_shower", {})
    row.update({f"ms_cpu_{b}": timing.get(str(b)) for b in (1, 100, 10000)})
    return row
