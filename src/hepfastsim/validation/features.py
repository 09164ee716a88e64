"""CaloChallenge high-level features, vectorised over showers.

Definitions follow the CaloChallenge ``HighLevelFeatures`` class: per layer the energy,
the energy-weighted centre in x = r cos(alpha) and y = r sin(alpha) at the voxel centres,
the width sqrt(<x^2> - <x>^2) (clipped at 0), and the sparsity 1 - (fraction of voxels
above threshold). x/y centres and widths exist only for layers binned in alpha.
"""

from __future__ import annotations

import numpy as np

from hepfastsim.geometry.binning import Binning

EPS = 1e-16


def layer_energies(showers: np.ndarray, binning: Binning) -> np.ndarray:
    """(N, L_relevant) energy per layer in MeV."""
    return np.stack([showers[:, binning.layer_slice(l)].sum(axis=1) for l in binning.relevant_layers], axis=1)


def _moments(showers: np.ndarray, coord: np.ndarray, binning: Binning, layers: list[int]) -> tuple[np.ndarray, np.ndarray]:
    centres, widths = [], []
    for l in layers:
        sl = binning.layer_slice(l)
        e = showers[:, sl]
        c = coord[sl]
        tot = e.sum(axis=1) + EPS
        m1 = (e * c).sum(axis=1) / tot
        m2 = (e * c * c).sum(axis=1) / tot
        centres.append(m1)
        widths.append(np.sqrt(np.clip(m2 - m1**2, 0.0, None)))
    if not layers:
        empty = np.zeros((len(showers), 0))
        return empty, empty
    return np.stack(centres, axis=1), np.stack(widths, axis=1)


def high_level_features(showers: np.ndarray, energies: np.ndarray, binning: Binning, threshold: float = 0.0) -> dict[str, np.ndarray]:
    """All CaloChallenge high-level features as a dict of (N,) or (N, L) arrays.

    Keys: e_ratio (E_tot / E_inc), e_tot (MeV), e_layer (MeV), ec_x, ec_y, width_x, width_y (mm),
    ec_r, width_r (mm), sparsity (per layer).
    """
    showers = np.asarray(showers, dtype=np.float64)
    energies = np.asarray(energies, dtype=np.float64).reshape(-1)
    r, x, y = binning.voxel_centres
    e_tot = showers.sum(axis=1)
    feats = {
        "e_tot": e_tot,
        "e_ratio": e_tot / energies,
        "e_layer": layer_energies(showers, binning),
    }
    feats["ec_x"], feats["width_x"] = _moments(showers, x, binning, binning.alpha_binned_layers)
    feats["ec_y"], feats["width_y"] = _moments(showers, y, binning, binning.alpha_binned_layers)
    feats["ec_r"], feats["width_r"] = _moments(showers, r, binning, binning.relevant_layers)
    feats["sparsity"] = np.stack(
        [1.0 - (showers[:, binning.layer_slice(l)] > threshold).mean(axis=1) for l in binning.relevant_layers], axis=1
    )
    return feats


def per_layer_features(binning: Binning) -> dict[str, list[int]]:
    """The per-layer features of ``high_level_features`` and the layers each is defined for."""
    alpha, relevant = binning.alpha_binned_layers, binning.relevant_layers
    return {"e_layer": relevant, "ec_x": alpha, "ec_y": alpha, "width_x": alpha, "width_y": alpha, "sparsity": relevant}


def feature_matrix(showers: np.ndarray, energies: np.ndarray, binning: Binning,
                   feats: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """Flatten the features into one (N, F) matrix with column names, for FPD/KPD and classifiers.

    Layer energies enter as log10(E_layer + 1 keV) so that one hot layer does not dominate.
    feats: the output of ``high_level_features`` for these showers, when already computed.
    """
    f = feats if feats is not None else high_level_features(showers, energies, binning)
    cols, names = [], []
    cols.append(np.log10(energies.reshape(-1, 1)))
    names.append("log10_E_inc")
    cols.append(f["e_ratio"].reshape(-1, 1))
    names.append("E_tot/E_inc")
    for key, layers in per_layer_features(binning).items():
        arr = f[key]
        if key == "e_layer":
            arr = np.log10(arr + 1e-3)
        cols.append(arr)
        names.extend(f"{key}_{l}" for l in layers)
    return np.concatenate(cols, axis=1), names


def longitudinal_profile(showers: np.ndarray, binning: Binning) -> np.ndarray:
    """Mean energy per layer (MeV), averaged over showers."""
    return layer_energies(showers, binning).mean(axis=0)


def radial_profile(showers: np.ndarray, binning: Binning) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy (MeV) in each radial bin summed over layers and alpha, for layers sharing the first layer's r edges."""
    edges = np.asarray(binning.r_edges[binning.relevant_layers[0]])
    nr = len(edges) - 1
    prof = np.zeros(nr)
    for l in binning.relevant_layers:
        if binning.n_r(l) != nr:
            continue
        e = showers[:, binning.layer_slice(l)].reshape(len(showers), binning.n_alpha[l], nr)
        prof += e.sum(axis=1).mean(axis=0)
    return edges, prof


def local_maxima_per_layer(showers: np.ndarray, binning: Binning, min_energy: float = 0.0) -> np.ndarray:
    """(N, L) number of voxels that exceed all their (alpha, r) neighbours in a layer (rare-topology check)."""
    out = []
    for l in binning.relevant_layers:
        na, nr = binning.n_alpha[l], binning.n_r(l)
        e = showers[:, binning.layer_slice(l)].reshape(len(showers), na, nr)
        is_max = e > min_energy
        for da, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            shifted = np.roll(e, da, axis=1) if da else e
            if dr:
                pad = np.zeros_like(e[:, :, :1])
                shifted = np.concatenate([pad, e[:, :, :-1]], axis=2) if dr == 1 else np.concatenate([e[:, :, 1:], pad], axis=2)
            if na == 1 and da:
                continue
            is_max &= e > shifted
        out.append(is_max.sum(axis=(1, 2)))
    return np.stack(out, axis=1)
