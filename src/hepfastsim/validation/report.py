"""Self-contained HTML report (figures embedded as base64 PNG) plus metrics.json and the PNGs."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from functools import wraps

import matplotlib.style
import mplhep as hep
import numpy as np
from matplotlib.figure import Figure

from hepfastsim.data.calo_io import ShowerDataset
from hepfastsim.data.tpc_io import TPCDataset
from hepfastsim.fileio import atomic_output
from hepfastsim.geometry.binning import Binning
from hepfastsim.validation import calochallenge as CC
from hepfastsim.validation.evaluate import feature_histograms
from hepfastsim.validation.features import Features, compute_features, longitudinal_profile, radial_profile


def _styled(fn):
    """Run a figure maker in mplhep's ROOT style, restored afterwards: figures are plain matplotlib Figures
    rendered by savefig, so neither pyplot's backend nor the user's style is touched (notebooks keep theirs)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.style.context(hep.style.ROOT):
            return fn(*args, **kwargs)

    return wrapper


def _subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """(Figure, axes) like pyplot.subplots, without pyplot."""
    fig = Figure(figsize=kwargs.pop("figsize", None), layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _ratio_hist(ax_top, ax_bot, ref, gen, name, edges=None, sep=None, band: dict | None = None, log_x: bool = False,
                counts: tuple[np.ndarray, np.ndarray] | None = None):
    """Reference vs generated density with a ratio panel, on the given edges (CaloChallenge's for calorimeter
    observables); counts: precomputed (reference, generated) histograms on those edges (the cell spectrum);
    sep: the metrics' separation-power entry of this histogram (value and overflow fractions, on these edges);
    band: an ensemble's 68 % band per bin on its own edges."""
    if band is not None:
        edges = band["edges"]
    elif edges is None:
        lo, hi = np.nanpercentile(np.concatenate([ref, gen]), [0.5, 99.5])
        edges = np.linspace(lo, max(hi, lo + 1e-6), 41)
    nr, ng = counts if counts is not None else (np.histogram(ref, edges)[0], np.histogram(gen, edges)[0])
    width = np.diff(edges)
    hr = nr / max(nr.sum(), 1) / width
    hg = ng / max(ng.sum(), 1) / width
    err = np.where(nr > 0, hr / np.sqrt(np.maximum(nr, 1)), 0)
    hep.histplot(hr, edges, ax=ax_top, label="reference", color="k", histtype="fill", alpha=0.25)
    hep.histplot(hg, edges, ax=ax_top, label="generated", color="C1", lw=2)
    if band is not None:
        lo_b, hi_b = band["mean"] - band["half_width"], band["mean"] + band["half_width"]
        ax_top.stairs(hi_b, edges, baseline=lo_b, fill=True, color="C1", alpha=0.3,
                      label=f"ensemble 68 % band (covers {100 * band['coverage']:.0f} %)")
    ax_top.set_ylabel("density", fontsize=12)
    title = name
    if isinstance(sep, dict):
        title += f"\nsep. power {sep['value']:.3g}"
        over = max(sep["overflow_reference"], sep["overflow_generated"])
        if over > 0.001:
            title += f"\noutside range: ref {100 * sep['overflow_reference']:.1f} %, gen {100 * sep['overflow_generated']:.1f} %"
    elif sep is not None:
        title += f"\nsep. power {sep:.3g}"
    ax_top.set_title(title, fontsize=11)
    ax_top.legend(fontsize=9)
    if log_x:
        for ax in (ax_top, ax_bot):
            ax.set_xscale("log")
        ax_top.set_yscale("log")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(hr > 0, hg / hr, np.nan)
        rerr = np.where(hr > 0, err / hr, np.nan)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else 0.5 * (edges[:-1] + edges[1:])
    ax_bot.errorbar(centres, ratio, yerr=rerr, fmt="o", ms=3, color="C1")
    ax_bot.axhline(1, color="k", lw=1)
    ax_bot.set_ylim(0.5, 1.5)
    ax_bot.set_xlim(edges[0], edges[-1])
    ax_top.set_xlim(edges[0], edges[-1])
    ax_top.tick_params(labelbottom=False)
    ax_bot.set_ylabel("gen/ref", fontsize=10)
    ax_bot.set_xlabel(name, fontsize=11)


def _panel_grid(names: list[str]) -> tuple[Figure, list[tuple[object, object]]]:
    """A figure with a (histogram, ratio) pair of axes per name. The spacing is fixed in inches (room for a
    title of up to three lines above each pair, tick labels and the x label below it) instead of a layout engine, whose
    passes over every tick label made drawing the report several times slower."""
    ncol = min(3 if len(names) <= 9 else 5, len(names))
    nrow = (len(names) + ncol - 1) // ncol
    size = 5.5 if len(names) <= 9 else 4.2
    w, h = size * ncol, 1.15 * size * nrow
    left, right, top, bottom, gap_w, gap_h = 1.3, 0.45, 0.75, 0.75, 1.45, 1.45   # inches
    ax_w = (w - left - right - (ncol - 1) * gap_w) / ncol
    ax_h = (h - top - bottom - (nrow - 1) * gap_h) / nrow
    fig = Figure(figsize=(w, h))
    outer = fig.add_gridspec(nrow, ncol, left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                             wspace=gap_w / ax_w, hspace=gap_h / ax_h)
    pairs = []
    for i in range(len(names)):
        inner = outer[divmod(i, ncol)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
        pairs.append((fig.add_subplot(inner[0]), fig.add_subplot(inner[1])))
    return fig, pairs


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


@_styled
def make_figures(ref: ShowerDataset, gen: ShowerDataset, binning: Binning, metrics: dict,
                 features: "tuple[Features, Features] | None" = None) -> dict[str, bytes]:
    """All report figures as PNG bytes, keyed by file name. features: both samples' features when computed."""
    figs: dict[str, bytes] = {}
    thr = binning.threshold
    fr, fg = features or (compute_features(ref.showers, ref.energies, binning, thr),
                          compute_features(gen.showers, gen.energies, binning, thr))
    edges = CC.histogram_edges(fr, binning)
    hists = feature_histograms(fr, fg, binning, edges)
    seps = metrics.get("separation_power", {})
    bands = {}
    if "member" in gen.extras:
        from hepfastsim.validation.ensemble import ensemble_bands

        bands = ensemble_bands(fr, fg, gen.extras["member"], binning, list(hists))
    groups: dict[str, list[str]] = {}
    for name in hists:
        groups.setdefault(name.rsplit("_", 1)[0] if name[-1].isdigit() else name, []).append(name)
    for group, names in groups.items():   # every histogram (every layer), smaller panels for many layers
        fig, pairs = _panel_grid(names)
        for (ax_top, ax_bot), name in zip(pairs, names):
            ref_v, gen_v, e = hists[name]
            _ratio_hist(ax_top, ax_bot, ref_v, gen_v, name, e,
                        sep=seps.get(name), band=bands.get(name), log_x=group == "e_layer")
        figs[f"hist_{group.replace('/', '_')}.png"] = _png(fig)
    spectrum = metrics.get("cell_spectrum")   # evaluate's histogram on these edges, else one pass here
    if spectrum is not None:
        counts_r, counts_g = np.asarray(spectrum["reference"]), np.asarray(spectrum["generated"])
    else:
        counts_r, _ = CC.cell_counts(ref.showers, edges["cell_E"], thr)
        counts_g, _ = CC.cell_counts(gen.showers, edges["cell_E"], thr)
    fig, [(ax_top, ax_bot)] = _panel_grid(["cell_E"])
    _ratio_hist(ax_top, ax_bot, None, None, "cell energy [MeV]",
                edges["cell_E"], sep=seps.get("cell_E"), log_x=True, counts=(counts_r, counts_g))
    figs["hist_cell_E.png"] = _png(fig)
    # E_tot / E_inc per incident energy bin
    edges = np.unique(np.quantile(ref.energies, np.linspace(0, 1, 5)))
    if len(edges) == 1:  # one incident energy: one panel
        edges = np.array([edges[0], edges[0]])
    fig, axes = _subplots(1, len(edges) - 1, figsize=(5 * (len(edges) - 1), 4.5), squeeze=False)
    for i, ax in enumerate(axes[0]):
        mr = (ref.energies >= edges[i]) & (ref.energies <= edges[i + 1])
        mg = (gen.energies >= edges[i]) & (gen.energies <= edges[i + 1])
        rr = ref.showers[mr].sum(1) / ref.energies[mr]
        rg = gen.showers[mg].sum(1) / gen.energies[mg]
        b = np.linspace(*np.percentile(np.concatenate([rr, rg]) if len(rg) else rr, [0.5, 99.5]), 40)
        ax.hist(rr, b, density=True, histtype="stepfilled", color="k", alpha=0.25, label="reference")
        ax.hist(rg, b, density=True, histtype="step", color="C1", lw=2, label="generated")
        ax.set_title(f"E_inc {edges[i]/1000:.1f}-{edges[i+1]/1000:.1f} GeV" if edges[i + 1] > edges[i]
                     else f"E_inc {edges[i]/1000:.1f} GeV", fontsize=12)
        ax.set_xlabel("E_tot/E_inc", fontsize=12)
    axes[0][0].legend(fontsize=10)
    figs["e_ratio_per_energy.png"] = _png(fig)
    # profiles
    fig, (a1, a2) = _subplots(1, 2, figsize=(12, 4.5))
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
    fig, axes = _subplots(2, len(layers), figsize=(3.2 * len(layers), 6.4), squeeze=False)
    for j, l in enumerate(layers):
        shape = (binning.n_alpha[l], binning.n_r(l))
        for i, (d, lab) in enumerate(((ref, "reference"), (gen, "generated"))):
            img = d.showers[:, binning.layer_slice(l)].mean(0).reshape(shape)
            axes[i][j].imshow(np.log10(img + 1e-3), aspect="auto", origin="lower", cmap="viridis")
            axes[i][j].set_title(f"{lab} layer {l}", fontsize=10)
            axes[i][j].set_xlabel("r bin", fontsize=9)
            axes[i][j].set_ylabel("alpha bin", fontsize=9)
    figs["average_showers.png"] = _png(fig)
    if "amplification" in metrics:
        figs["amplification.png"] = _amplification_figure(metrics["amplification"])
    return figs


@_styled
def _amplification_figure(a: dict) -> bytes:
    """Mean W1 (high-level features, in reference standard deviations) to the held-out reference versus N generated."""
    n = np.array(sorted(int(k) for k in a["w1_generated"]))
    w = np.array([a["w1_generated"][k] for k in sorted(a["w1_generated"], key=int)])
    fig, ax = _subplots(figsize=(7, 5))
    ax.plot(n, w, "o-", color="C1", label="N generated showers")
    ax.axhline(a["w1_train"], color="k", ls="--", label=f"the {a['n_train']} training showers")
    ax.set_xscale("log")
    ax.set_xlabel("N generated", fontsize=13)
    ax.set_ylabel("mean W1 to held-out reference [σ]", fontsize=13)
    ax.set_title("statistical amplification", fontsize=13)
    ax.legend(fontsize=11)
    return _png(fig)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def write_report(out_dir: str | Path, ref: ShowerDataset, gen: ShowerDataset, binning: Binning, metrics: dict,
                 title: str = "hepfastsim validation report", features: "tuple[Features, Features] | None" = None) -> Path:
    """Calorimeter report: report.html (self-contained), metrics.json and every PNG in out_dir; returns the HTML path."""
    groups = metrics.get("separation_power_groups", {})
    summary = [
        ("events (reference / generated)", f"{metrics['n_reference']} / {metrics['n_generated']}"),
        ("cell threshold (stored units), applied to both samples", f"{1e3 * metrics['threshold_MeV']:.4g} keV"),
        *_classifier_rows(metrics),
        ("FPD × 10³ (JetNet, CaloChallenge settings)", f"{1e3 * metrics['fpd']:.4g} ± {1e3 * metrics['fpd_err']:.2g}"),
        ("KPD × 10³", f"{1e3 * metrics['kpd']:.3g} ± {1e3 * metrics['kpd_err']:.2g}"),
        *[(f"separation power, mean over {g}", f"{v:.4g}") for g, v in groups.items()],
    ]
    if "ensemble" in metrics:
        summary.append(("ensemble 68 % band coverage of the reference (mean over high-level histograms)",
                        f"{100 * metrics['ensemble']['band_coverage_high_level']:.1f} %"))
    for k in ("prdc", "diversity", "multi_maxima_fraction", "interpolation"):
        if k in metrics:
            summary.append((k, ", ".join(f"{a}={_fmt(b)}" for a, b in metrics[k].items())))
    if "amplification" in metrics:
        a = metrics["amplification"]
        better = [int(k) for k, v in a["w1_generated"].items() if v < a["w1_train"]]
        summary.append(("amplification", f"W1 of the {a['n_train']} training showers {a['w1_train']:.4g}; generated samples "
                        f"closer to the held-out reference: N = {', '.join(map(str, better)) or 'none'}"))
    intro = (f"Binning: {binning.name} ({binning.n_voxels} voxels), evaluated as CaloChallenge dataset "
             f"{metrics.get('dataset', '?')}, classifier protocol '{metrics.get('protocol', '?')}'. "
             "AUC 0.5 = indistinguishable from the reference.")
    figs = make_figures(ref, gen, binning, metrics, features)
    return write_html(out_dir, title, intro, summary, figs, metrics, extra_html=_table_html(metrics, binning))


def _pm(v: float | None, e: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" + (f" ± {e:.2g}" if e is not None else "")


def _table_html(metrics: dict, binning: Binning) -> str:
    """Our row beside the published CaloChallenge rows of the same dataset (those were measured against Geant4)."""
    if "calochallenge_row" not in metrics:
        return ""
    cols = [("AUC low", "auc_low", "auc_low_std", 3), ("AUC high", "auc_high", "auc_high_std", 3),
            ("AUC CNN", "auc_cnn", "auc_cnn_std", 3),
            ("FPD × 10³", "fpd_x1e3", "fpd_x1e3_err", 2), ("KPD × 10³", "kpd_x1e3", "kpd_x1e3_err", 3),
            ("sep. E_tot/E_inc", "sep_E_total", None, 4), ("sep. cell E", "sep_cell", None, 4),
            ("ms/shower CPU, batch 1", "ms_cpu_1", None, 2), ("batch 100", "ms_cpu_100", None, 2),
            ("batch 10000", "ms_cpu_10000", None, 2)]
    ours = metrics["calochallenge_row"]
    head = "".join(f"<th>{html.escape(c[0])}</th>" for c in cols)
    lo = metrics["classifier_low"]
    note = (f"this evaluation (reference: the file given; {lo['runs']} classifier trainings, "
            f"{lo['n_per_sample'].get('val', '?')} val showers per sample)")
    rows = [f"<tr><th>{html.escape(note)}</th>" + "".join(
        f"<td>{_pm(ours.get(k), ours.get(e) if e else None, d)}</td>" for _, k, e, d in cols) + "</tr>"]
    try:
        published = CC.published_rows(binning)
    except (KeyError, FileNotFoundError):
        published = []
    for r in published:
        vals = [_pm(r.get(CC.TABLE_COLUMNS[k]), r.get(CC.TABLE_COLUMNS[e]) if e else None, d) for _, k, e, d in cols]
        rows.append(f"<tr><th>{html.escape(r['submission'])}</th>" + "".join(f"<td>{v}</td>" for v in vals) + "</tr>")
    return (f"<h2>CaloChallenge final table, dataset {html.escape(metrics.get('dataset', '?'))}</h2>"
            "<p>Published rows: CaloChallenge 2022 final results, each model scored against <b>Geant4</b> data of that "
            "dataset (the GEANT4 row: Geant4 against itself). Our row is scored against the reference file of this "
            f"report ({binning.name}); the numbers compare only where reference data and sample sizes agree.</p>"
            f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>")


def _classifier_rows(metrics: dict) -> list[tuple[str, str]]:
    rows = []
    for key, label in (("classifier_low", "low level"), ("classifier_high", "high level")):
        c = metrics[key]
        n = c["runs"]
        spread = f" ± {c['auc_std']:.3f}" if c.get("auc_std") is not None else ""
        jsd = f"{c['jsd']:.3f}" + (f" ± {c['jsd_std']:.3f}" if c.get("jsd_std") is not None else "")
        sizes = c.get("n_per_sample", {})
        rows.append((f"classifier AUC, {label} ({c.get('protocol', '')})",
                     f"{c['auc']:.3f}{spread} ({n} training{'s' if n != 1 else ''}"
                     + (f"; per sample {sizes.get('train')}/{sizes.get('test')}/{sizes.get('val')} train/test/val" if sizes else "")
                     + f"); JSD {jsd}"))
    return rows


def write_html(out_dir: str | Path, title: str, intro: str, summary: list[tuple[str, str]], figs: dict[str, bytes],
               metrics: dict, extra_html: str = "") -> Path:
    """The report page: summary table and embedded figures; PNGs and metrics.json beside it (atomic writes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in figs.items():
        _atomic_write(out / name, data)
    _atomic_write(out / "metrics.json", json.dumps(metrics, indent=2, default=float).encode())
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
<p>{html.escape(intro)}</p>
<table>{rows}</table>
{extra_html}
{imgs}
</body></html>
"""
    path = out / "report.html"
    _atomic_write(path, page.encode())
    return path


@_styled
def tpc_figures(ref: TPCDataset, gen: TPCDataset, metrics: dict) -> dict[str, bytes]:
    """Moment histograms, mean +- std profiles of every moment versus every parameter, average responses."""
    from hepfastsim.validation.tpc import MOMENT_NAMES, cluster_moments, profile_variables, trend

    figs: dict[str, bytes] = {}
    mr, mg = cluster_moments(ref.responses), cluster_moments(gen.responses)
    seps = metrics.get("separation_power", {})
    fig, pairs = _panel_grid(list(MOMENT_NAMES))
    for k, (name, (ax_top, ax_bot)) in enumerate(zip(MOMENT_NAMES, pairs)):
        a, b = mr[:, k][np.isfinite(mr[:, k])], mg[:, k][np.isfinite(mg[:, k])]
        _ratio_hist(ax_top, ax_bot, a, b, name, sep=seps.get(name))
    figs["tpc_moments.png"] = _png(fig)
    vr, vg = profile_variables(ref), profile_variables(gen)
    vars_ = [v for v in vr if np.ptp(vr[v]) > 1e-9]
    fig, axes = _subplots(len(MOMENT_NAMES) - 1, len(vars_), figsize=(4.2 * len(vars_), 3.4 * (len(MOMENT_NAMES) - 1)),
                             squeeze=False)
    for j, var in enumerate(vars_):
        edges = np.linspace(min(vr[var].min(), vg[var].min()), max(vr[var].max(), vg[var].max()), 20)
        x = 0.5 * (edges[1:] + edges[:-1])
        for m in range(len(MOMENT_NAMES) - 1):
            ax = axes[m][j]
            for v, mom, col, lab in ((vr, mr, "k", "reference"), (vg, mg, "C1", "generated")):
                mean, mean_e, std, _ = trend(v[var], mom[:, m], edges)
                ax.fill_between(x, mean - mean_e, mean + mean_e, color=col, alpha=0.5, label=lab)
                ax.plot(x, mean, "o", color=col, ms=2)  # visible also where only isolated bins are filled
                ax.plot(x, mean + std, color=col, ls="--", lw=1)
                ax.plot(x, mean - std, color=col, ls="--", lw=1)
            ax.set_xlabel(var, fontsize=10)
            ax.set_ylabel(MOMENT_NAMES[m], fontsize=10)
            ax.tick_params(labelsize=8)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"mean ± std profiles (band: mean ± error; dashed: mean ± std); chi2 = {metrics.get('chi2', float('nan')):.1f}")
    figs["tpc_profiles.png"] = _png(fig)
    fig, axes = _subplots(1, 2, figsize=(10, 4))
    for ax, d, lab in ((axes[0], ref, "reference"), (axes[1], gen, "generated")):
        im = ax.imshow(np.log10(1 + d.responses.mean(0)), aspect="auto", origin="lower", cmap="viridis")
        ax.set_title(f"{lab}: mean log10(1 + amplitude)", fontsize=11)
        ax.set_xlabel("time bin", fontsize=10)
        ax.set_ylabel("pad", fontsize=10)
        fig.colorbar(im, ax=ax)
    figs["tpc_average_response.png"] = _png(fig)
    return figs


def write_tpc_report(out_dir: str | Path, ref: TPCDataset, gen: TPCDataset, metrics: dict,
                     title: str = "hepfastsim TPC validation report") -> Path:
    """TPC report (cluster moments, profiles, chi2, classifier AUC) in out_dir; returns the HTML path."""
    summary = [("events (reference / generated)", f"{metrics['n_reference']} / {metrics['n_generated']}"),
               ("chi2 (mean ± std bands, study's figure of merit)", f"{metrics['chi2']:.1f} / {metrics['chi2_ndf']} band points"),
               *_classifier_rows(metrics),
               ("empty responses (ref / gen)", f"{metrics['empty_fraction']['reference']:.3f} / {metrics['empty_fraction']['generated']:.3f}")]
    summary += [(f"separation power {k}", f"{v:.4g}") for k, v in metrics["separation_power"].items()]
    intro = f"MPD TPC pad-row window {ref.shape[0]} pads x {ref.shape[1]} time bins, conditions {', '.join(ref.names)}."
    return write_html(out_dir, title, intro, summary, tpc_figures(ref, gen, metrics), metrics)


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
