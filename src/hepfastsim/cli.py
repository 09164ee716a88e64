"""Command-line interface: hepfastsim simulate | train | generate | evaluate | benchmark | export | info | demo.

Every command takes --seed where randomness matters, refuses to overwrite outputs without
--overwrite and prints a single-line error for bad input (exit code 2).
"""

from __future__ import annotations

import json
import sys
import time
from functools import wraps
from pathlib import Path
from typing import Optional

import numpy as np
import typer
import yaml

from hepfastsim.errors import HepFastSimError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


def friendly(fn):
    """Turn HepFastSimError into a one-line message and exit code 2."""

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except HepFastSimError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)

    return wrapper


def resolve_binning(binning: Optional[str], data_file: Optional[Path] = None):
    """Binning from --binning (XML path or 'demo'), else from the file's 'binning' attribute, else by voxel count."""
    from hepfastsim.data.calo_io import file_summary
    from hepfastsim.geometry.binning import BUILTIN, builtin_binning, get_binning

    if binning:
        return get_binning(binning)
    if data_file is not None:
        s = file_summary(data_file)
        name = s["attrs"].get("binning")
        if name in BUILTIN:
            return builtin_binning(name)
        for b in BUILTIN:
            cand = builtin_binning(b)
            if cand.n_voxels == s["voxels"]:
                return cand
    raise HepFastSimError("cannot tell the binning of the data: pass --binning XML")


@app.command()
@friendly
def info(file: Path, binning: Optional[str] = typer.Option(None, help="binning XML to check against")) -> None:
    """Summary of a CaloChallenge HDF5 file: events, voxels, energy range, matching geometry."""
    from hepfastsim.data.calo_io import file_summary
    from hepfastsim.geometry.binning import BUILTIN, builtin_binning, get_binning, load_binning

    s = file_summary(file)
    typer.echo(f"file:      {file}")
    typer.echo(f"events:    {s['events']}")
    typer.echo(f"voxels:    {s['voxels']}")
    typer.echo(f"energy:    {s['energy_min_MeV']:.6g} - {s['energy_max_MeV']:.6g} MeV")
    if s["extras"]:
        typer.echo(f"extras:    {', '.join(s['extras'])}")
    cands = [get_binning(binning)] if binning else [builtin_binning(b) for b in BUILTIN]
    # in a source checkout, also try the CaloChallenge XMLs of the shared/ folder beside it
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "calochallenge"
    if not binning and shared.exists():
        cands += [load_binning(p) for p in sorted(shared.glob("*.xml"))]
    match = [b.name for b in cands if b.n_voxels == s["voxels"]]
    typer.echo(f"geometry:  {', '.join(match) if match else 'no known binning with this voxel count'}")
    for k, v in s["attrs"].items():
        typer.echo(f"attr {k}: {v}")


@app.command()
@friendly
def simulate(
    out: Path = typer.Option(..., help="output HDF5 (CaloChallenge format)"),
    n: int = typer.Option(1000, help="number of showers"),
    energies: str = typer.Option("log:1000:100000", help="MeV: 'E', 'E1,E2', 'uniform:LO:HI' or 'log:LO:HI'"),
    particle: str = typer.Option("e-", help="e-, e+ or gamma"),
    binning: str = typer.Option("demo", help="readout: 'demo' or a CaloChallenge binning XML"),
    detector: Optional[Path] = typer.Option(None, help="detector YAML (default: CaloChallenge dataset-2 W/Si stack)"),
    theta_deg: float = typer.Option(0.0, help="incident polar angle, degrees"),
    phi_deg: float = typer.Option(0.0, help="incident azimuth, degrees"),
    seed: int = 0,
    chunk: int = typer.Option(1000, help="showers per written chunk"),
    resume: bool = typer.Option(False, help="continue an interrupted file"),
    overwrite: bool = False,
    quiet: bool = False,
) -> None:
    """Run the built-in detailed simulation and write showers (CaloChallenge HDF5)."""
    from hepfastsim.fullsim import FullSim
    from hepfastsim.geometry.detector import load_detector

    fs = FullSim(load_detector(detector), binning)
    stats = fs.simulate_to_file(out, n, energies, particle, theta=np.radians(theta_deg), phi=np.radians(phi_deg),
                                seed=seed, chunk=chunk, resume=resume, overwrite=overwrite, progress=not quiet)
    ms = 1000 * stats["seconds"] / max(stats["events"], 1)
    typer.echo(f"wrote {out}: {stats['events']} showers, {ms:.2f} ms/shower, "
               f"{1000 * stats['seconds'] / max(stats['simulated_GeV'], 1e-9):.3f} ms/GeV (all cores)")


def _require_calo(task: str) -> None:
    """Only the calorimeter task exists so far; say so instead of failing deep inside."""
    if task != "calo":
        raise HepFastSimError(f"task {task!r} is not available yet (only 'calo'); the TPC task is planned")


def _load_yaml(path: Optional[Path]) -> dict:
    if path is None:
        return {}
    if not path.exists():
        raise HepFastSimError(f"config not found: {path}")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise HepFastSimError(f"{path}: config must be a mapping of option: value")
    return cfg


@app.command()
@friendly
def train(
    data: Path = typer.Option(..., help="training HDF5"),
    model: str = typer.Option("fm", help="family: library, vae, gan, flow, fm"),
    out: Path = typer.Option(..., help="checkpoint to write"),
    config: Optional[Path] = typer.Option(None, help="YAML with model options (hidden, layers, lr, epochs, ...)"),
    binning: Optional[str] = None,
    task: str = typer.Option("calo", help="calo (tpc planned)"),
    epochs: Optional[int] = None,
    val_fraction: float = 0.15,
    holdout_energy: Optional[float] = typer.Option(None, help="MeV: leave showers within 5 % of this energy out of training"),
    seed: int = 0,
    resume: bool = typer.Option(False, help="continue training from --out"),
    log_csv: Optional[Path] = typer.Option(None, help="loss log CSV"),
    overwrite: bool = False,
    quiet: bool = False,
) -> None:
    """Train a conditional generator on full-simulation data; writes a checkpoint with everything needed to sample."""
    from hepfastsim.models import get_family

    if out.exists() and not (overwrite or resume):
        raise HepFastSimError(f"{out} exists; pass --overwrite or --resume")
    cfg = _load_yaml(config)
    _require_calo(task)
    from hepfastsim.data.calo_io import read_showers
    from hepfastsim.tasks import calo_samples, calo_spec, train_val_split

    b = resolve_binning(binning, data)
    ds = read_showers(data, binning=b)
    if holdout_energy:
        keep = np.abs(ds.energies / holdout_energy - 1) > 0.05
        ds = ds.subset(keep)
    i_tr, i_va = train_val_split(len(ds), val_fraction, seed)
    tr, va = calo_samples(ds.subset(i_tr)), calo_samples(ds.subset(i_va))
    gen = get_family(model)(calo_spec(b), **cfg)
    t0 = time.time()
    log = gen.fit(tr, va, epochs=epochs, seed=seed, progress=not quiet, log_csv=log_csv,
                  resume=out if resume else None, checkpoint=out)
    gen.save(out)
    typer.echo(f"trained {model} in {time.time() - t0:.1f} s ({len(log.epochs)} epochs, best {log.best_epoch}); wrote {out}")


@app.command()
@friendly
def generate(
    model: Path = typer.Option(..., help="checkpoint"),
    out: Path = typer.Option(..., help="output HDF5"),
    energies: Optional[str] = typer.Option(None, help="MeV spec as in simulate"),
    like: Optional[Path] = typer.Option(None, help="take the conditions of this file (same incident energies)"),
    n: int = 10000,
    batch_size: int = 10000,
    backend: str = typer.Option("torch", help="torch or onnxruntime"),
    onnx: Optional[Path] = typer.Option(None, help="ONNX file for --backend onnxruntime (default: model with .onnx)"),
    seed: int = 0,
    overwrite: bool = False,
) -> None:
    """Generate responses with a trained model and write them (CaloChallenge HDF5 for calo models)."""
    from hepfastsim.data.calo_io import ShowerDataset, file_summary, write_showers
    from hepfastsim.fullsim.simulate import sample_energies
    from hepfastsim.models import load_generator

    gen = load_generator(model)
    if out.exists() and not overwrite:
        raise HepFastSimError(f"{out} exists; pass --overwrite to replace it")
    _require_calo(gen.spec.task)
    if like is not None:
        s = file_summary(like)
        if s["voxels"] != gen.spec.n_features:
            raise HepFastSimError(f"{like} has {s['voxels']} voxels but the model generates {gen.spec.n_features}")
        if "geometry_id" in s["attrs"]:
            gen.check_geometry(s["attrs"]["geometry_id"], s["attrs"].get("binning", ""))
        e = s["energies_MeV"]
    elif energies is not None:
        e = sample_energies(energies, n, np.random.default_rng(seed))
    else:
        raise HepFastSimError("give --energies or --like")
    sampler = gen
    if backend == "onnxruntime":
        from hepfastsim.bench.export import OnnxSampler

        sampler = OnnxSampler(gen, onnx or model.with_suffix(".onnx"))
    elif backend != "torch":
        raise HepFastSimError(f"unknown backend {backend!r}: torch or onnxruntime")
    t0 = time.perf_counter()
    x = sampler.sample(e.reshape(-1, 1), batch_size=batch_size, seed=seed)
    dt = time.perf_counter() - t0
    write_showers(out, ShowerDataset(e, x), overwrite=overwrite,
                  attrs={"generator": f"hepfastsim.{gen.family}", "binning": gen.spec.geometry_name,
                         "geometry_id": gen.spec.geometry_id})
    typer.echo(f"wrote {out}: {len(e)} showers in {dt:.2f} s ({1000 * dt / len(e):.3f} ms/shower, {backend})")


@app.command()
@friendly
def evaluate(
    reference: Path = typer.Option(..., help="reference HDF5 (full simulation)"),
    generated: Path = typer.Option(..., help="generated HDF5"),
    out: Path = typer.Option(..., help="report folder"),
    binning: Optional[str] = None,
    task: str = typer.Option("calo", help="calo (tpc planned)"),
    runs: int = typer.Option(1, help="classifier trainings (mean and std of AUC)"),
    epochs: int = 30,
    max_events: Optional[int] = None,
    fast: bool = typer.Option(False, help="skip diversity, support and coverage checks"),
    seed: int = 0,
) -> None:
    """Compare generated responses with a reference: metrics.json + report.html with figures."""
    _require_calo(task)
    from hepfastsim.data.calo_io import read_showers
    from hepfastsim.validation.evaluate import evaluate as run_eval
    from hepfastsim.validation.report import write_report

    b = resolve_binning(binning, reference)
    ref = read_showers(reference, binning=b, max_events=max_events)
    gen = read_showers(generated, binning=b, max_events=max_events)
    m = run_eval(ref, gen, b, classifier_runs=runs, classifier_epochs=epochs, seed=seed, fast=fast)
    path = write_report(out, ref, gen, b, m)
    typer.echo(f"AUC low {m['classifier_low']['auc']:.3f}  high {m['classifier_high']['auc']:.3f}  "
               f"FPD {m['fpd']:.4g}±{m['fpd_err']:.2g}  KPD {m['kpd']:.3g}±{m['kpd_err']:.2g}")
    typer.echo(f"report: {path}")


@app.command()
@friendly
def benchmark(
    model: Path = typer.Option(..., help="checkpoint"),
    fullsim: bool = typer.Option(False, help="also time the built-in full simulation at the same energies"),
    energies: str = typer.Option("1000,10000,100000", help="MeV, comma separated"),
    repeats: int = 5,
    onnx: Optional[Path] = typer.Option(None, help="also time this ONNX export with onnxruntime"),
    out: Optional[Path] = typer.Option(None, help="write the results as JSON"),
) -> None:
    """ms per shower at batch 1, 100, 10000 (median after warm-up); with --fullsim the speed-up ratios."""
    from hepfastsim.bench.timing import time_fullsim, time_generator
    from hepfastsim.models import load_generator

    gen = load_generator(model)
    es = [float(e) for e in energies.split(",")]
    res = {"model": str(model), "family": gen.family, "per_energy": {}}
    for e in es:
        res["per_energy"][e] = time_generator(gen, e, repeats=repeats)
        if onnx:
            from hepfastsim.bench.export import OnnxSampler

            s = OnnxSampler(gen, onnx)
            res["per_energy"][e]["onnxruntime"] = time_generator(gen, e, repeats=repeats,
                                                                 backend=lambda c, b: s.sample(c.reshape(-1, 1), batch_size=b, seed=0))
    if fullsim and gen.spec.task == "calo":
        from hepfastsim.fullsim import FullSim
        from hepfastsim.geometry.binning import BUILTIN, builtin_binning

        fs = FullSim(binning=builtin_binning(gen.spec.geometry_name) if gen.spec.geometry_name in BUILTIN else "demo")
        full = time_fullsim(fs, es)
        res["fullsim_ms_per_shower"] = full
        res["speedup_batch10000"] = {e: full[e] / res["per_energy"][e]["ms_per_shower"][10000] for e in es}
    text = json.dumps(res, indent=2, default=float)
    typer.echo(text)
    if out:
        out.write_text(text)


@app.command()
@friendly
def export(
    model: Path = typer.Option(..., help="checkpoint"),
    format: str = typer.Option("onnx", help="onnx"),
    out: Optional[Path] = None,
    int8: bool = typer.Option(False, help="also write a dynamically INT8-quantised copy (*.int8.onnx)"),
) -> None:
    """Export the network (with the fixed-step sampler for fm) to ONNX for onnxruntime / C++ frameworks."""
    from hepfastsim.bench.export import export_onnx, quantize
    from hepfastsim.models import load_generator

    if format != "onnx":
        raise HepFastSimError(f"unknown export format {format!r}; supported: onnx")
    gen = load_generator(model)
    path = export_onnx(gen, out or model.with_suffix(".onnx"))
    typer.echo(f"wrote {path}")
    if int8:
        q = quantize(path, path.with_suffix(".int8.onnx"))
        typer.echo(f"wrote {q}")


@app.command()
@friendly
def demo(
    out: Path = typer.Option(Path("demo_output"), help="work folder (simulated data is cached there)"),
    model: str = typer.Option("fm", help="model family to train"),
    minutes: float = typer.Option(6.0, help="training time budget"),
    n_train: int = 30000,
    n_test: int = 10000,
    seed: int = 0,
) -> None:
    """End to end on the built-in simulation: simulate (cached), train, generate, evaluate, benchmark."""
    from hepfastsim.demo import run_demo

    run_demo(out, model=model, minutes=minutes, n_train=n_train, n_test=n_test, seed=seed)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
