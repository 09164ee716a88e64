"""Particle-identification validation: efficiency curves of the usual DLL cuts, and the comparison of the
built-in RICH simulation with LHCb's measured 2018 efficiencies (shipped: ``data/lhcb_rich_pid_efficiency_2018.csv``,
from the public PIDCalib2 test data).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from hepfastsim.data.pid_io import PID_RESPONSES

# the cuts analysts use, as functions of the (n, 4) DLL array (DLLe, DLLmu, DLLK, DLLp)
CUTS = {
    "DLLK > 0": lambda d: d[:, 2] > 0,
    "DLLK < 0": lambda d: d[:, 2] < 0,
    "DLLK > 4": lambda d: d[:, 2] > 4,
    "DLLp - DLLK > 0": lambda d: d[:, 3] - d[:, 2] > 0,
    "DLLe > 2": lambda d: d[:, 0] > 2,
    "DLLmu > 0": lambda d: d[:, 1] > 0,
}
assert PID_RESPONSES == ("DLLe", "DLLmu", "DLLK", "DLLp")   # the column order CUTS assumes

# what the LHCb calibration sample requires of a track: RICH information (at least one radiator in acceptance)
# and transverse momentum above 250 MeV, as the D*+ -> D0(K- pi+) pi+ calibration daughters
CALIBRATION_PT_MEV = 250.0


def lhcb_efficiencies() -> dict[str, np.ndarray]:
    """LHCb 2018: momentum bin edges (MeV) and the kaon DLLK > 0 and pion DLLK < 0 efficiencies per bin."""
    text = (resources.files("hepfastsim") / "validation" / "data" / "lhcb_rich_pid_efficiency_2018.csv").read_text()
    rows = np.array([[float(v) for v in line.split(",")] for line in text.splitlines()
                     if line and not line.startswith("#") and line[0].isdigit()])
    return {"edges": np.r_[rows[:, 0], rows[-1, 1]], "K DLLK > 0": rows[:, 2], "pi DLLK < 0": rows[:, 3]}


def efficiency_curve(passed: np.ndarray, x: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of tracks passing a cut in bins of x: (efficiency, binomial error, tracks per bin); NaN where a
    bin is empty."""
    k = np.digitize(x, edges) - 1
    inside = (k >= 0) & (k < len(edges) - 1)
    n = np.bincount(k[inside], minlength=len(edges) - 1).astype(float)
    s = np.bincount(k[inside], weights=passed[inside].astype(float), minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = s / n
        err = np.sqrt(eff * (1 - eff) / n)
    return eff, err, n


def calibration_like(conditions: np.ndarray, has_rich: np.ndarray) -> np.ndarray:
    """Tracks an LHCb calibration sample would contain: RICH information and p_T > 250 MeV."""
    pt = conditions[:, 0] / np.cosh(conditions[:, 1])
    return has_rich & (pt > CALIBRATION_PT_MEV)


def compare_with_lhcb(kaons: tuple[np.ndarray, np.ndarray], pions: tuple[np.ndarray, np.ndarray]) -> dict:
    """Simulated kaon DLLK > 0 and pion DLLK < 0 efficiencies in LHCb's momentum bins, beside LHCb's; each of
    kaons, pions = (conditions (n, 4), DLLs (n, 4)) of calibration-like tracks."""
    ref = lhcb_efficiencies()
    out: dict = {"p_edges_MeV": ref["edges"].tolist()}
    for name, (c, d), cut in (("K DLLK > 0", kaons, "DLLK > 0"), ("pi DLLK < 0", pions, "DLLK < 0")):
        eff, err, n = efficiency_curve(CUTS[cut](d), c[:, 0], ref["edges"])
        out[name] = {"simulated": eff.tolist(), "error": err.tolist(), "tracks": n.tolist(), "lhcb": ref[name].tolist(),
                     "max_abs_difference": float(np.nanmax(np.abs(eff - ref[name])))}
    return out


# the variables the efficiency curves are drawn against, with their bin edges
CURVE_EDGES = {"P": np.geomspace(2000.0, 150_000.0, 13), "eta": np.linspace(1.8, 5.5, 9),
               "nTracks": np.array([1.0, 50, 100, 150, 200, 300, 600])}


def efficiency_curves(conditions: np.ndarray, dll: np.ndarray, names: tuple[str, ...]) -> dict:
    """Every cut's efficiency and binomial error versus P, eta and nTracks: {cut: {variable: (eff, err, n)}}."""
    return {cut: {v: efficiency_curve(f(dll), conditions[:, names.index(v)], e) for v, e in CURVE_EDGES.items()}
            for cut, f in CUTS.items()}


def curves_chi2(ref: dict, gen: dict) -> tuple[float, int, dict]:
    """Sum over cuts, variables and bins of (eff_gen - eff_ref)^2 / (err_ref^2 + err_gen^2) (bins with >= 20 tracks
    in both samples and a non-zero error): the chi2, its number of bins and the chi2 per cut."""
    total, bins, per_cut = 0.0, 0, {}
    for cut in ref:
        c2 = 0.0
        for v in ref[cut]:
            (er, sr, nr), (eg, sg, ng) = ref[cut][v], gen[cut][v]
            var = sr ** 2 + sg ** 2
            ok = (nr >= 20) & (ng >= 20) & (var > 0)
            c2 += float(((eg[ok] - er[ok]) ** 2 / var[ok]).sum())
            bins += int(ok.sum())
        per_cut[cut] = c2
        total += c2
    return total, bins, per_cut


# DLL histograms: asinh(DLL) in these bins, for tracks in these momentum and pseudorapidity ranges
DLL_EDGES = np.linspace(-6.0, 6.0, 49)
P_RANGES_MEV = ((2000.0, 10_000.0), (10_000.0, 40_000.0), (40_000.0, 150_000.0))
ETA_RANGES = ((1.8, 3.0), (3.0, 5.5))


def dll_histograms(conditions: np.ndarray, dll: np.ndarray, names: tuple[str, ...]) -> dict:
    """Normalised histograms of asinh(DLL) per response, momentum range and eta range:
    {dll: {"P lo-hi GeV, eta lo-hi": density}} on DLL_EDGES (under/overflow in the end bins)."""
    p, eta = conditions[:, names.index("P")], conditions[:, names.index("eta")]
    out: dict = {}
    for j, name in enumerate(PID_RESPONSES):
        out[name] = {}
        for lo, hi in P_RANGES_MEV:
            for elo, ehi in ETA_RANGES:
                sel = (p >= lo) & (p < hi) & (eta >= elo) & (eta < ehi)
                v = np.clip(np.arcsinh(dll[sel, j]), DLL_EDGES[0], DLL_EDGES[-1])
                h, _ = np.histogram(v, DLL_EDGES, density=bool(sel.any()))
                out[name][f"P {lo / 1e3:g}-{hi / 1e3:g} GeV, eta {elo:g}-{ehi:g}"] = h.tolist()
    return out


def evaluate_pid(ref_c: np.ndarray, ref_dll: np.ndarray, gen_c: np.ndarray, gen_dll: np.ndarray,
                 names: tuple[str, ...], *, runs: int = 3, epochs: int = 30, seed: int = 0) -> dict:
    """Efficiency curves (chi2 of generated vs reference) and the low-level classifier AUC on (DLLs, conditions),
    inputs standardised with the reference's mean and std (asinh of the DLLs: their tails span orders of magnitude)."""
    from hepfastsim.validation import metrics as M
    from hepfastsim.validation.classifier import classifier_auc

    cr, cg = efficiency_curves(ref_c, ref_dll, names), efficiency_curves(gen_c, gen_dll, names)
    chi2, bins, per_cut = curves_chi2(cr, cg)
    prep = lambda c, d: np.column_stack([np.arcsinh(d), np.log(c[:, names.index("P")]), c[:, 1:]])
    auc = classifier_auc(*M.standardise_pair(prep(ref_c, ref_dll), prep(gen_c, gen_dll)), protocol="quick",
                         runs=runs, epochs=epochs, seed=seed)
    return {"n_reference": len(ref_c), "n_generated": len(gen_c), "efficiency_chi2": chi2, "efficiency_bins": bins,
            "efficiency_chi2_per_cut": per_cut, "classifier": auc.as_dict(),
            "dll_histograms": {"reference": dll_histograms(ref_c, ref_dll, names),
                               "generated": dll_histograms(gen_c, gen_dll, names)},
            "efficiencies": {cut: {v: {"reference": cr[cut][v][0].tolist(), "generated": cg[cut][v][0].tolist()}
                                   for v in cr[cut]} for cut in cr}}


def _save_png(fig, path, dpi: int) -> bytes:
    """Render a matplotlib Figure as PNG, write it atomically to path and return the bytes (for embedding)."""
    import io

    from hepfastsim.fileio import atomic_output

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    with atomic_output(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return buf.getvalue()


def write_pid_report(out, metrics: dict, title: str = "PID"):
    """metrics.json, efficiency.png (every cut versus P, eta and nTracks: reference and generated), dll.png (the
    DLL distributions in bins of P and eta) and a report.html embedding the figures and the numbers, all written
    atomically into folder out."""
    import base64
    import html
    import json
    from pathlib import Path

    from matplotlib.figure import Figure   # the object-oriented API: no global backend is touched

    from hepfastsim.fileio import atomic_output

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    eff = metrics["efficiencies"]
    fig = Figure(figsize=(12, 2.2 * len(eff)), constrained_layout=True)
    axes = fig.subplots(len(eff), len(CURVE_EDGES), squeeze=False)
    for i, cut in enumerate(eff):
        for j, (v, edges) in enumerate(CURVE_EDGES.items()):
            ax = axes[i, j]
            ax.stairs(np.nan_to_num(eff[cut][v]["reference"]), edges, label="reference", color="k")
            ax.stairs(np.nan_to_num(eff[cut][v]["generated"]), edges, label="generated", color="tab:red", ls="--")
            ax.set_xscale("log" if v in ("P", "nTracks") else "linear")
            ax.set_title(f"{cut} vs {v}", fontsize=9)
            ax.set_ylim(0, 1.02)
    axes[0, 0].legend(fontsize=8)
    png = _save_png(fig, out / "efficiency.png", dpi=90)
    hr, hg = metrics["dll_histograms"]["reference"], metrics["dll_histograms"]["generated"]
    ranges = list(hr[PID_RESPONSES[0]])
    fig = Figure(figsize=(2.6 * len(ranges), 2.2 * len(PID_RESPONSES)), constrained_layout=True)
    axes = fig.subplots(len(PID_RESPONSES), len(ranges), squeeze=False)
    for i, name in enumerate(PID_RESPONSES):
        for j, r in enumerate(ranges):
            ax = axes[i, j]
            ax.stairs(hr[name][r], DLL_EDGES, color="k", label="reference")
            ax.stairs(hg[name][r], DLL_EDGES, color="tab:red", ls="--", label="generated")
            ax.set_title(f"{name}: {r}", fontsize=7)
            ax.set_xlabel(f"asinh({name})", fontsize=7)
    axes[0, 0].legend(fontsize=7)
    png_dll = _save_png(fig, out / "dll.png", dpi=80)
    with atomic_output(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1, default=float))
    c = metrics["classifier"]
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.1f}</td></tr>" for k, v in metrics["efficiency_chi2_per_cut"].items())
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{metrics['n_reference']} reference and {metrics['n_generated']} generated "
            f"tracks. Efficiency-curve chi2 {metrics['efficiency_chi2']:.1f} over {metrics['efficiency_bins']} bins; "
            f"classifier AUC {c['auc']:.3f}" + (f" ± {c['auc_std']:.3f}" if c["auc_std"] is not None else " (1 training)")
            + f"</p><table><tr><th>cut</th><th>chi2</th></tr>{rows}</table>"
            f"<h2>Efficiency curves</h2><img alt='efficiency curves' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
            f"<h2>DLL distributions in bins of P and eta</h2>"
            f"<img alt='DLL distributions' src='data:image/png;base64,{base64.b64encode(png_dll).decode()}'></body></html>")
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page)
    return out / "report.html"
