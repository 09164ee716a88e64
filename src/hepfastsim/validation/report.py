"""Self-contained HTML report (figures embedded as base64 PNG) plus metrics.json and the PNGs."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep as hep  # noqa: E402
import numpy as np  # noqa: E402

from hepfastsim.data.calo_io import ShowerDataset  # noqa: E402
from hepfastsim.fileio import atomic_output  # noqa: E402
from hepfastsim.geometry.binning import Binning  # noqa: E402
from hepfastsim.validation.evaluate import feature_histograms  # noqa: E402
from hepfastsim.validation.features import longitudinal_profile, radial_profile  # noqa: E402

plt.style.use(hep.style.ROOT)


def _ratio_hist(ax_top, ax_bot, ref, gen, name, bins=40, sep=None):
    lo, hi = np.nanpercentile(np.concatenate([ref, gen]), [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, bins + 1)
    hr, _ = np.histogram(ref, edges, density=True)
    hg, _ = np.histogram(gen, edges, density=True)
    nr, _ = np.histogram(ref, edges)
    err = np.where(nr > 0, hr / np.sqrt(np.maximum(nr, 1)), 0)
    hep.histplot(hr, edges, ax=ax_top, label="reference", color="k", histtype="fill", alpha=0.25)
    hep.histplot(hg, edges, ax=ax_top, label="generated", color="C1", lw=2)
    ax_top.set_ylabel("density", fontsize=14)
    title = name if sep is None else f"{name}  (sep. power {sep:.3g})"
    ax_top.set_title(title, fontsize=13)
    ax_top.legend(fontsize=11)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hr > 0, hg / hr, np.nan)
        rerr = np.where(hr > 0, err / hr, np.nan)
    centres = 0.5 * (edges[:-1] + edges[1:])
    ax_bot.errorbar(centres, ratio, yerr=rerr, fmt="o", ms=3, color="C1")
    ax_bot.axhline(1, color="k", lw=1)
    ax_bot.set_ylim(0.5, 1.5)
    ax_bot.set_xlim(ax_top.get_xlim())
    ax_bot.set_ylabel("gen/ref", fontsize=12)
    ax_bot.set_xlabel(name, fontsize=13)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def make_figures(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, metrics: dict) -> dict[str, bytes]:
    """All report figures as PNG bytes, keyed by file name."""
    figs: dict[str, bytes] = {}
    hists = feature_histograms(ref, gen, binning)
    seps = metrics.get("separation_power", {})
    groups: dict[str, list[str]] = {}
    for name in hists:
        groups.setdefault(name.rsplit("_", 1)[0] if name[-1].isdigit() else name, []).append(name)
    for group, names in groups.items():
        names = names[:: max(1, len(names) // 6)][:6]
        ncol = min(3, len(names))
        nrow = (len(names) + ncol - 1) // ncol
        fig = plt.figure(figsize=(6 * ncol, 6 * nrow))
        gs = fig.add_gridspec(2 * nrow, ncol, height_ratios=[3, 1] * nrow, hspace=0.35)
        for i, name in enumerate(names):
            r, c = divmod(i, ncol)
            _ratio_hist(fig.add_subplot(gs[2 * r, c]), fig.add_subplot(gs[2 * r + 1, c]), *hists[name], name,
                        sep=seps.get(name))
        figs[f"hist_{group.replace('/', '_')}.png"] = _png(fig)
    # E_tot / E_inc per incident energy bin
    edges = np.unique(np.quantile(ref.energies, np.linspace(0, 1, 5)))
    fig, axes = plt.subplots(1, len(edges) - 1, figsize=(5 * (len(edges) - 1), 4.5), squeeze=False)
    for i, ax in enumerate(axes[0]):
        mr = (ref.energies >= edges[i]) & (ref.energies <= edges[i + 1])
        mg = (gen.energies >= edges[i]) & (gen.energies <= edges[i + 1])
        rr = ref.showers[mr].sum(1) / ref.energies[mr]
        rg = gen.showers[mg].sum(1) / gen.energies[mg]
        b = np.linspace(*np.percentile(np.concatenate([rr, rg]) if len(rg) else rr, [0.5, 99.5]), 40)
        ax.hist(rr, b, density=True, histtype="stepfilled", color="k", alpha=0.25, label="reference")
        ax.hist(rg, b, density=True, histtype="step", color="C1", lw=2, label="generated")
        ax.set_title(f"E_inc {edges[i]/1000:.1f}-{edges[i+1]/1000:.1f} GeV", fontsize=12)
        ax.set_xlabel("E_tot/E_inc", fontsize=12)
    axes[0][0].legend(fontsize=10)
    figs["e_ratio_per_energy.png"] = _png(fig)
    # profiles
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    lr, lg = longitudinal_profile(ref.showers, binning), longitudinal_profile(gen.showers, binning)
    a1.step(binning.relevant_layers, lr, where="mid", color="k", label="reference")
    a1.step(binning.relevant_layers, lg, where="mid", color="C1", label="generated")
    a1.set_xlabel("layer", fontsize=12)
    a1.set_ylabel("mean energy [MeV]", fontsize=12)
    a1.set_title("longitudinal profile", fontsize=12)
    a1.legend(fontsize=10)
    e_r, pr = radial_profile(ref.showers, binning)
    _, pg = radial_profile(gen.showers, binning)
    a2.stairs(pr, e_r, color="k", label="reference")
    a2.stairs(pg, e_r, color="C1", label="generated")
    a2.set_yscale("log")
    a2.set_xlabel("r [mm]", fontsize=12)
    a2.set_title("radial profile", fontsize=12)
    figs["profiles.png"] = _png(fig)
    # average shower per layer (alpha x r images)
    layers = binning.relevant_layers[:: max(1, len(binning.relevant_layers) // 5)][:5]
    fig, axes = plt.subplots(2, len(layers), figsize=(3.2 * len(layers), 6.4), squeeze=False)
    for j, l in enumerate(layers):
        shape = (binning.n_alpha[l], binning.n_r(l))
        for i, (d, lab) in enumerate(((ref, "reference"), (gen, "generated"))):
            img = d.showers[:, binning.layer_slice(l)].mean(0).reshape(shape)
            axes[i][j].imshow(np.log10(img + 1e-3), aspect="auto", origin="lower", cmap="viridis")
            axes[i][j].set_title(f"{lab} layer {l}", fontsize=10)
            axes[i][j].set_xlabel("r bin", fontsize=9)
            axes[i][j].set_ylabel("alpha bin", fontsize=9)
    figs["average_showers.png"] = _png(fig)
    return figs


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def write_report(out_dir: str | Path, ref: ShowerDataset, gen: ShowerDataset, binning: Binning, metrics: dict,
                 title: str = "hepfastsim validation report") -> Path:
    """Write report.html (self-contained), metrics.json and every PNG into out_dir; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = make_figures(ref, gen, binning, metrics)
    for name, data in figs.items():
        _atomic_write(out / name, data)
    _atomic_write(out / "metrics.json", json.dumps(metrics, indent=2, default=float).encode())
    summary = [
        ("events (reference / generated)", f"{metrics['n_reference']} / {metrics['n_generated']}"),
        ("classifier AUC, low level", f"{metrics['classifier_low']['auc']:.3f} ± {metrics['classifier_low']['auc_std']:.3f}"),
        ("classifier AUC, high level", f"{metrics['classifier_high']['auc']:.3f} ± {metrics['classifier_high']['auc_std']:.3f}"),
        ("JSD low / high", f"{metrics['classifier_low']['jsd']:.3f} / {metrics['classifier_high']['jsd']:.3f}"),
        ("FPD", f"{metrics['fpd']:.4g} ± {metrics['fpd_err']:.2g}"),
        ("KPD", f"{metrics['kpd']:.3g} ± {metrics['kpd_err']:.2g}"),
        ("mean separation power", f"{metrics['separation_power_mean']:.4g}"),
    ]
    for k in ("prdc", "diversity", "multi_maxima_fraction"):
        if k in metrics:
            summary.append((k, ", ".join(f"{a}={_fmt(b)}" for a, b in metrics[k].items())))
    rows = "\n".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in summary)
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(d).decode()}"/>'
        f"<figcaption>{html.escape(n)}</figcaption></figure>" for n, d in figs.items()
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:auto}} table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}} img{{max-width:100%}} figure{{margin:20px 0}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Binning: {html.escape(binning.name)} ({binning.n_voxels} voxels). AUC 0.5 = indistinguishable from the reference.</p>
<table>{rows}</table>
{imgs}
</body></html>
"""
    path = out / "report.html"
    _atomic_write(path, page.encode())
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
