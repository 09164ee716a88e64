"""Command-line interface: hepfastsim simulate | train | generate | evaluate | benchmark | export | info | demo.

Every command takes --seed where randomness matters, refuses to overwrite outputs without
--overwrite and prints a single-line error for bad input (exit code 2).
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import wraps
from pathlib import Path
from typing import Optional

import numpy as np
import typer
import yaml
from typer.core import TyperGroup

from hepfastsim.data.samples import HOLDOUT_TOLERANCE
from hepfastsim.errors import HepFastSimError

class _OneLineUsageErrors(TyperGroup):
    """Bad option values (out of range, wrong type, unknown option) as one line and exit code 2, like every other
    input error, instead of click's usage box."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        except typer.TyperException as exc:  # typer's (vendored click's) usage and parameter errors
            msg = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            typer.echo(f"error: {' '.join(msg.split())}", err=True)
            sys.exit(2)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(cls=_OneLineUsageErrors, add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the exceptions an exception was raised from."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def friendly(fn):
    """One line and exit code 2 for what a user's input can cause: our own errors, file-system errors (missing,
    permission, disk full), and any library exception raised while reading a user's file; Ctrl-C exits 130
    without a traceback. HEPFASTSIM_DEBUG=1 shows the traceback of an unexpected exception."""

    @wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except HepFastSimError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130)
        except OSError as exc:
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
            raise typer.Exit(2)
        except Exception as exc:  # noqa: BLE001 - the last line of defence of a command-line tool
            if _caused_by_interrupt(exc):  # Ctrl-C inside compiled (numba) code arrives as a chained SystemError
                typer.echo("interrupted", err=True)
                raise typer.Exit(130)
            if os.environ.get("HEPFASTSIM_DEBUG"):
                raise
            typer.echo(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (if the input is "
                       "valid, please report this with the command; HEPFASTSIM_DEBUG=1 shows the traceback)", err=True)
            raise typer.Exit(2)

    return wrapper


def resolve_binning(binning: Optional[str], data_file: Optional[Path] = None):
    """Binning from --binning (XML path or 'demo'), else from the file's 'binning' attribute, else by voxel count."""
    from hepfastsim.data.calo_io import file_summary
    from hepfastsim.geometry.binning import BUILTIN, builtin_binning, builtin_name, get_binning

    if binning:
        return get_binning(binning)
    if data_file is not None:
        s = file_summary(data_file)
        name = builtin_name(str(s["attrs"].get("binning")))
        if name:
            return builtin_binning(name)
        for b in BUILTIN:
            cand = builtin_binning(b)
            if cand.n_voxels == s["voxels"]:
                return cand
    raise HepFastSimError("cannot tell the binning of the data: pass --binning XML")


@app.command()
@friendly
def info(file: Path, binning: Optional[str] = typer.Option(None, help="binning XML to check against")) -> None:
    """Summary of a data file: CaloChallenge HDF5 (events, voxels, energies, geometry) or TPC digits / HDF5."""
    if file.suffix in (".dat", ".txt"):
        from hepfastsim.data.tpc_io import read_tpc, split_indices

        t = read_tpc(file)
        typer.echo(f"file:      {file} (MPD TPC digits)")
        typer.echo(f"events:    {len(t)}  (fixed split: " + ", ".join(f"{k} {len(v)}" for k, v in split_indices(len(t)).items()) + ")")
        typer.echo(f"window:    pads {t.pad_range[0]}..{t.pad_range[1] - 1} x time bins {t.time_range[0]}..{t.time_range[1] - 1}"
                   + (" relative to int(pad_coordinate), int(drift_length)" if t.centred else ""))
        typer.echo(f"outside:   {100 * t.outside_fraction:.3f} % of the amplitude falls outside the window")
        for k, n in enumerate(t.names):
            typer.echo(f"param {n}: {t.params[:, k].min():.6g} - {t.params[:, k].max():.6g}")
        return
    if _is_pid_table(file):
        from hepfastsim.data.pid_io import SPECIES_NAMES, read_pid

        t = read_pid(file)
        typer.echo(f"file:      {file} (PID table)")
        typer.echo(f"tracks:    {len(t)}")
        if t.species is not None:
            typer.echo("species:   " + ", ".join(f"{n} {int((t.species == k).sum())}" for k, n in enumerate(SPECIES_NAMES)))
        if t.has_rich is not None:
            typer.echo(f"hasRich:   {100 * t.has_rich.mean():.1f} %")
        for k, n in enumerate(t.condition_names + t.response_names):
            col = t.conditions[:, k] if k < len(t.condition_names) else t.responses[:, k - len(t.condition_names)]
            typer.echo(f"column {n}: {col.min():.6g} - {col.max():.6g}")
        return
    from hepfastsim.data.calo_io import file_summary
    from hepfastsim.geometry.binning import BUILTIN, builtin_binning, get_binning

    from hepfastsim.data.calo_io import iter_showers

    s = file_summary(file)
    ratio_sum, ratio_sq, n = 0.0, 0.0, 0
    for part in iter_showers(file):  # validates every chunk: matching N, no NaN, no negative energies
        ratio = part.showers.sum(axis=1, dtype=np.float64) / part.energies
        ratio_sum += float(ratio.sum())
        ratio_sq += float((ratio**2).sum())
        n += len(part)
    typer.echo(f"file:      {file}")
    typer.echo(f"events:    {s['events']}")
    typer.echo(f"voxels:    {s['voxels']}")
    typer.echo(f"energy:    {s['energy_min_MeV']:.6g} - {s['energy_max_MeV']:.6g} MeV")
    if n:
        mean = ratio_sum / n
        rms = np.sqrt(max(ratio_sq / n - mean**2, 0.0))   # the response's spread: the energy resolution
        typer.echo(f"E_tot/E_inc: {mean:.4f} (mean; CaloChallenge datasets 2/3 hold about 1), "
                   f"relative rms {rms / mean:.4f}")
    if s["extras"]:
        typer.echo(f"extras:    {', '.join(s['extras'])}")
    cands = [get_binning(binning)] if binning else [builtin_binning(b) for b in BUILTIN]
    match = [b.name for b in cands if b.n_voxels == s["voxels"]]
    typer.echo(f"geometry:  {', '.join(match) if match else 'no known binning with this voxel count'}")
    for k, v in s["attrs"].items():
        typer.echo(f"attr {k}: {v}")


@app.command()
@friendly
def simulate(
    out: Path = typer.Option(..., help="output HDF5 (CaloChallenge format)"),
    n: int = typer.Option(1000, min=1, help="number of showers"),
    energies: str = typer.Option("log:1000:100000", help="MeV: 'E', 'E1,E2', 'uniform:LO:HI' or 'log:LO:HI'"),
    particle: str = typer.Option("e-", help="e-, e+ or gamma; with --engine geant4 also pi+, pi-, proton, neutron, kaon+, kaon-, mu-, mu+; with --policy a list (e-,pi+,proton) drawn per event"),
    binning: str = typer.Option("demo", help="readout: demo, ds1-photons, ds1-pions, ds2, ds3 or a CaloChallenge binning XML"),
    engine: str = typer.Option("builtin", help="builtin (numba EM Monte Carlo) or geant4 (geant4_pybind)"),
    physics: str = typer.Option("auto", help="geant4: auto (FTFP_BERT with data sets, else data-free-FTFP_BERT), FTFP_BERT, data-free-FTFP_BERT, data-free-em"),
    detector: Optional[Path] = typer.Option(None, help="detector YAML or a shipped one: calochallenge_ds2 (default, W/Si), atlas_barrel_ds1 (Pb/LAr + Fe/scintillator)"),
    theta_deg: float = typer.Option(0.0, min=0.0, max=89.9, help="incident polar angle, degrees"),
    phi_deg: float = typer.Option(0.0, min=-360.0, max=360.0, help="incident azimuth, degrees"),
    seed: int = typer.Option(0, min=0),
    chunk: int = typer.Option(1000, min=1, help="showers per written chunk"),
    resume: bool = typer.Option(False, help="continue an interrupted file"),
    policy: Optional[Path] = typer.Option(None, help="routing YAML: fast model or full simulation per particle/energy/angle"),
    shards: int = typer.Option(1, min=1, help="> 1: simulate in parallel with Dask into OUT/shard_NNNN.h5 (read as one dataset)"),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address (default: a local cluster of --shards processes)"),
    task: str = typer.Option("calo", help="calo (showers) or pid (tracks through the built-in RICH simulation)"),
    species: str = typer.Option("e,mu,pi,K,p", help="pid: particle species, in equal parts"),
    overwrite: bool = False,
    quiet: bool = False,
) -> None:
    """Run a detailed simulation (built-in or Geant4; or a fast/full mix by --policy) and write showers (CaloChallenge
    HDF5: stored energy = active deposit / the detector's sampling fraction); --task pid: RICH tracks with their DLLs
    (HDF5, CSV, Parquet or ROOT by the suffix of --out)."""
    from hepfastsim.fullsim import make_engine
    from hepfastsim.geometry.detector import load_detector

    _check_task(task)
    if task == "pid":
        from hepfastsim.fullsim.rich import simulate_to_table

        st = simulate_to_table(out, n, tuple(species.split(",")), seed, overwrite=overwrite)
        typer.echo(f"wrote {out}: {st['tracks']} tracks, {st['tracks'] / max(st['seconds'], 1e-9):.0f} tracks/s")
        return

    if shards > 1 or scheduler:
        from hepfastsim.fullsim.distributed import shard_count, simulate_sharded

        from hepfastsim.data.calo_io import SHARD_GLOB, particle_pdg
        from hepfastsim.fullsim.simulate import sample_energies

        sample_energies(energies, 1, np.random.default_rng(0))  # bad arguments fail before any shard is deleted
        particle_pdg(particle)
        had_shards = any(out.glob(SHARD_GLOB))   # nothing when out does not exist
        if had_shards and not (resume or overwrite):
            raise HepFastSimError(f"{out} already holds shards; pass --resume to continue them or --overwrite")
        if overwrite and not resume:
            for f in out.glob(SHARD_GLOB):
                f.unlink()
        if (runs := shard_count(n, chunk, shards)) < shards:
            cure = (f"the shards there fix the chunk size: --overwrite --chunk {-(-n // shards)} starts anew on all {shards}"
                    if resume and had_shards else f"--chunk {-(-n // shards)} uses all {shards}")
            typer.echo(f"note: a shard holds whole chunks of {chunk} showers, so {n} showers run in {runs} shard(s); "
                       f"{cure}", err=True)
        st = simulate_sharded(out, n, energies, particle, binning=binning, detector=detector, theta=np.radians(theta_deg),
                              phi=np.radians(phi_deg), seed=seed, chunk=chunk, shards=shards, scheduler=scheduler,
                              engine=engine, physics=physics)
        typer.echo(f"wrote {out}/: {st['events']} showers in {st['shards']} shards, {st['seconds']:.1f} s wall "
                   f"(slowest shard), {st['cpu_seconds']:.1f} s summed")
        return
    fs = make_engine(engine, load_detector(detector), binning, physics)
    if policy is not None:
        from hepfastsim.data.calo_io import write_showers
        from hepfastsim.fullsim.simulate import sample_energies
        from hepfastsim.routing import Policy, run_policy

        if out.exists() and not overwrite:
            raise HepFastSimError(f"{out} exists; pass --overwrite to replace it")
        e = sample_energies(energies, n, np.random.default_rng(seed))
        ds, st = run_policy(Policy.load(policy), fs, e, particle, theta=np.radians(theta_deg), phi=np.radians(phi_deg), seed=seed)
        write_showers(out, ds, overwrite=overwrite, attrs={"binning": fs.binning.name, "geometry_id": fs.binning.geometry_id,
                                                           "policy": policy.read_text()})
        typer.echo(f"wrote {out}: {st['full_events']} full + {st['fast_events']} fast showers in "
                   f"{st['full_seconds'] + st['fast_seconds']:.2f} s; the fast events would take "
                   f"{st['full_seconds_estimate_for_fast_events']:.2f} s in full: {st['seconds_saved']:.2f} s saved "
                   f"({100 * st['time_fraction_of_pure_full']:.1f} % of the pure full-simulation time)")
        return
    stats = fs.simulate_to_file(out, n, energies, particle, theta=np.radians(theta_deg), phi=np.radians(phi_deg),
                                seed=seed, chunk=chunk, resume=resume, overwrite=overwrite, progress=not quiet)
    ms = 1000 * stats["seconds"] / max(stats["events"], 1)
    typer.echo(f"wrote {out}: {stats['events']} showers, {ms:.2f} ms/shower, "
               f"{1000 * stats['seconds'] / max(stats['simulated_GeV'], 1e-9):.3f} ms/GeV (all cores)")


def _is_pid_table(path: Path) -> bool:
    """A PID table: CSV, Parquet or ROOT, or an HDF5 file with a DLLK column (not a CaloChallenge file)."""
    if path.suffix.lower() in (".csv", ".parquet", ".root"):
        return True
    if path.suffix.lower() in (".h5", ".hdf5") and path.is_file():
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return "DLLK" in f and "showers" not in f
        except OSError:
            return False
    return False


def _check_task(task: str) -> None:
    if task not in ("calo", "tpc", "pid"):
        raise HepFastSimError(f"unknown task {task!r}: calo, tpc or pid")


def _pid_data(path: Path, species: str, conditions: str, responses: str, tree: Optional[str]):
    """The tracks of one species with RICH information from a PID table, with the named columns."""
    from hepfastsim.data.pid_io import read_pid

    ds = read_pid(path, tuple(conditions.split(",")), tuple(responses.split(",")) if responses else (), tree=tree)
    return (ds.of_species(species) if ds.species is not None else ds).with_rich()


def _load_yaml(path: Optional[Path]) -> dict:
    if path is None:
        return {}
    if not path.exists():
        raise HepFastSimError(f"config not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise HepFastSimError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise HepFastSimError(f"{path} is not a UTF-8 text file") from None
    if not isinstance(cfg, dict):
        raise HepFastSimError(f"{path}: config must be a mapping of option: value")
    return cfg


@app.command()
@friendly
def train(
    data: Path = typer.Option(..., help="training data: CaloChallenge HDF5 (calo) or TPC digits .dat / HDF5 (tpc)"),
    model: str = typer.Option("fm", help="family: library, vae, gan, flow, fm, layer_fm (CaloChallenge-size readouts), ensemble"),
    out: Path = typer.Option(..., help="checkpoint to write"),
    config: Optional[Path] = typer.Option(None, help="YAML with model options (hidden, layers, lr, epochs, ...)"),
    binning: Optional[str] = None,
    task: str = typer.Option("calo", help="calo, tpc (trains on the fixed 'train' split, early-stops on 'val') or pid"),
    species: str = typer.Option("K", help="pid: the species to model (e, mu, pi, K, p)"),
    conditions: str = typer.Option("P,eta,nTracks,charge", help="pid: condition columns"),
    responses: str = typer.Option("DLLe,DLLmu,DLLK,DLLp", help="pid: response columns"),
    tree: Optional[str] = typer.Option(None, help="pid ROOT file: the TTree to read"),
    epochs: Optional[int] = typer.Option(None, min=1, help="epochs (default: the config's)"),
    val_fraction: float = typer.Option(0.15, min=0.0, max=0.9, help="calo: validation fraction for early stopping"),
    holdout_energy: Optional[float] = typer.Option(None, help=f"MeV: leave showers within {HOLDOUT_TOLERANCE * 100:g} % of this energy out of training (recorded in the checkpoint)"),
    seed: int = typer.Option(0, min=0),
    resume: bool = typer.Option(False, help="continue training from --out"),
    log_csv: Optional[Path] = typer.Option(None, help="loss log CSV"),
    tensorboard: Optional[Path] = typer.Option(None, help="folder for TensorBoard event files (neural families)"),
    slim: bool = typer.Option(False, help="write a checkpoint for sampling only (no optimiser state; cannot --resume)"),
    overwrite: bool = False,
    quiet: bool = False,
) -> None:
    """Train a conditional generator on full-simulation data; writes a checkpoint with everything needed to sample."""
    from hepfastsim.models import get_family
    from hepfastsim.models.options import split_calibration
    from hepfastsim.train import Trainer
    from hepfastsim.train.distributed import finish_process_group

    if out.exists() and not (overwrite or resume):
        raise HepFastSimError(f"{out} exists; pass --overwrite or --resume")
    cfg = _load_yaml(config)
    _check_task(task)
    if task == "tpc":
        from hepfastsim.data.tpc_io import read_tpc, select_split
        from hepfastsim.tasks import tpc_samples, tpc_spec

        ds = read_tpc(data)
        train_part = select_split(ds, "train")
        tr, va = tpc_samples(train_part), tpc_samples(select_split(ds, "val"))
        spec = tpc_spec(train_part)
    elif task == "pid":
        from hepfastsim.tasks import pid_samples, pid_spec, train_val_split

        ds = _pid_data(data, species, conditions, responses, tree)
        i_tr, i_va = train_val_split(len(ds), val_fraction, seed)
        tr, va = pid_samples(ds.subset(i_tr)), pid_samples(ds.subset(i_va))
        spec = pid_spec(ds, species)
    else:
        from hepfastsim.data.calo_io import StreamedShowers, read_energies
        from hepfastsim.data.samples import Samples
        from hepfastsim.tasks import calo_spec, train_val_split

        b = resolve_binning(binning, data)
        energies = read_energies(data)   # the showers stay on disk: training reads them in chunks
        events = np.arange(len(energies))
        if holdout_energy:
            from hepfastsim.data.samples import near_energy_mask

            events = events[~near_energy_mask(energies, holdout_energy)]
            if not quiet and os.environ.get("RANK", "0") == "0":   # torchrun: process 0 reports
                typer.echo(f"left out {len(energies) - len(events)} of {len(energies)} showers within "
                           f"{HOLDOUT_TOLERANCE * 100:g} % of {holdout_energy:g} MeV")
        i_tr, i_va = train_val_split(len(events), val_fraction, seed)
        tr, va = (Samples(StreamedShowers(data, events[i], b), energies[events[i]]) for i in (i_tr, i_va))
        spec = calo_spec(b)
    cfg, calibration = split_calibration(cfg)
    cfg = {**cfg, "seed": seed}
    if epochs and model == "ensemble":   # an ensemble's epochs are its members'
        cfg["options"] = {**cfg.get("options", {}), "epochs": epochs}
    elif epochs:
        cfg["epochs"] = epochs
    gen = get_family(model)(spec, **cfg)
    if task == "calo":
        from hepfastsim.data.calo_io import file_summary

        held_out = {"holdout_energy_MeV": holdout_energy} if holdout_energy else {}   # the gap it never saw
        gen.set_provenance({**file_summary(data)["attrs"], **held_out})  # particle, engine, physics, detector, ...
    t0 = time.time()
    # an ensemble is saved once at the end (no per-epoch checkpoint); it refuses --resume with a clear error
    trainer = Trainer(progress=not quiet, log_csv=log_csv, tensorboard=tensorboard, calibration=calibration,
                      resume=out if resume else None, checkpoint=None if model == "ensemble" else out)
    log = trainer.fit(gen, tr, va).history_
    rank = getattr(gen, "rank", 0)
    if rank == 0:  # torchrun: process 0 writes the checkpoint and reports
        gen.save(out, slim=slim)
    finish_process_group()
    if rank != 0:
        return
    typer.echo(f"trained {model} in {time.time() - t0:.1f} s ({len(log.epochs)} epochs, best {log.best_epoch}); wrote {out}")


GENERATE_PIECE_BYTES = 512 * 2**20   # generated showers held in memory at once before they are written


def _generate_showers(sampler, gen, cond: np.ndarray, out: Path, batch_size: int, seed: int, attrs: dict,
                      overwrite: bool, members: bool) -> float:
    """Generate showers for the condition rows and stream them into a CaloChallenge file, piece by piece (at most
    ``GENERATE_PIECE_BYTES`` of float32 showers in memory: dataset 3 is 162 kB per shower); the first piece is
    generated with ``seed`` (a run that fits in one piece gives what one ``sample`` call gives), piece k > 0 with
    a seed derived from (seed, k). Written to a temporary file renamed at the end. Returns the sampling seconds."""
    from hepfastsim.data.calo_io import ShowerDataset, ShowerWriter
    from hepfastsim.fileio import atomic_output

    rows = max(batch_size, GENERATE_PIECE_BYTES // (4 * gen.spec.n_features))
    seconds = 0.0
    with atomic_output(out, overwrite) as tmp:
        with ShowerWriter(tmp, gen.spec.n_features, attrs=attrs, extras=("member",) if members and hasattr(
                gen, "last_members") else ()) as w:
            for k, a in enumerate(range(0, len(cond), rows)):
                piece_seed = seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
                t0 = time.perf_counter()
                x = sampler.sample(cond[a:a + rows], batch_size=batch_size, seed=piece_seed)
                seconds += time.perf_counter() - t0
                extras = {"member": gen.last_members} if w.extras else {}
                w.append(ShowerDataset(cond[a:a + rows, 0], x, extras))
    return seconds


@app.command()
@friendly
def generate(
    model: Path = typer.Option(..., help="checkpoint, or a shipped model: ds2, demo"),
    out: Path = typer.Option(..., help="output HDF5"),
    energies: Optional[str] = typer.Option(None, help="MeV spec as in simulate"),
    like: Optional[Path] = typer.Option(None, help="take the conditions of this file (incident energies; TPC track parameters)"),
    split: str = typer.Option("all", help="TPC --like file: all, train, val or test part of the fixed split"),
    per_event: int = typer.Option(1, min=1, help="responses per condition row of --like"),
    n: int = typer.Option(10000, min=1),
    batch_size: int = typer.Option(10000, min=1),
    backend: str = typer.Option("torch", help="torch or onnxruntime"),
    onnx: Optional[Path] = typer.Option(None, help="ONNX file for --backend onnxruntime (default: model with .onnx)"),
    seed: int = typer.Option(0, min=0),
    extrapolate: bool = typer.Option(False, help="allow conditions outside the model's training domain (recorded in the output)"),
    overwrite: bool = False,
) -> None:
    """Generate responses with a trained model and write them (CaloChallenge HDF5 for calo models). Conditions
    outside the model's training domain are refused unless --extrapolate."""
    from hepfastsim.data.calo_io import file_summary
    from hepfastsim.fullsim.simulate import sample_energies
    from hepfastsim.models import load_generator

    gen = load_generator(model)
    if out.exists() and not overwrite:
        raise HepFastSimError(f"{out} exists; pass --overwrite to replace it")
    if gen.spec.task == "tpc":
        from hepfastsim.data.tpc_io import read_tpc, select_split

        if like is None:
            raise HepFastSimError("a TPC model takes its track parameters from a file: give --like DIGITS.dat (and --split)")
        ref = select_split(read_tpc(like), split)
        gen.check_geometry(ref.geometry_id, str(like))
        cond = np.repeat(ref.params, per_event, axis=0)
    elif gen.spec.task == "pid":
        from hepfastsim.tasks import pid_species

        if like is None:
            raise HepFastSimError("a PID model takes its track conditions from a table: give --like TRACKS")
        species = pid_species(gen.spec)
        cond = np.repeat(_pid_data(like, species, ",".join(gen.spec.condition_names), "", None).conditions,
                         per_event, axis=0)
    elif like is not None:
        s = file_summary(like)
        if s["voxels"] != gen.spec.n_features:
            raise HepFastSimError(f"{like} has {s['voxels']} voxels but the model generates {gen.spec.n_features}")
        if "geometry_id" in s["attrs"]:
            gen.check_geometry(s["attrs"]["geometry_id"], s["attrs"].get("binning", ""))
        cond = np.repeat(s["energies_MeV"], per_event).reshape(-1, 1)
    elif energies is not None:
        cond = sample_energies(energies, n, np.random.default_rng(seed)).reshape(-1, 1)
    else:
        raise HepFastSimError("give --energies or --like")
    gen.extrapolate = extrapolate
    bad = gen.outside_domain(cond)
    outside = int(np.logical_or.reduce(list(bad.values())).sum()) if bad else 0
    sampler = gen
    if backend == "onnxruntime":
        from hepfastsim.bench.export import OnnxSampler

        sampler = OnnxSampler(gen, onnx or model.with_suffix(".onnx"))
    elif backend != "torch":
        raise HepFastSimError(f"unknown backend {backend!r}: torch or onnxruntime")
    attrs = {"generator": f"hepfastsim.{gen.family}", "geometry_id": gen.spec.geometry_id,
             "model_domain": json.dumps({"conditions": gen.domain_, "training_data": gen.provenance_}),
             "extrapolated_rows": outside}
    if gen.spec.task == "calo":
        dt = _generate_showers(sampler, gen, cond, out, batch_size, seed, attrs={
            **attrs, "binning": gen.spec.geometry_name}, overwrite=overwrite, members=backend == "torch")
        typer.echo(f"wrote {out}: {len(cond)} responses in {dt:.2f} s ({1000 * dt / len(cond):.4f} ms each, {backend})")
        return
    t0 = time.perf_counter()
    x = sampler.sample(cond, batch_size=batch_size, seed=seed)
    dt = time.perf_counter() - t0
    if gen.spec.task == "pid":
        from hepfastsim.data.pid_io import PIDDataset, SPECIES_NAMES, write_pid
        from hepfastsim.tasks import pid_response_names

        write_pid(out, PIDDataset(cond, x, gen.spec.condition_names, pid_response_names(gen.spec),
                                  np.full(len(x), SPECIES_NAMES.index(species)), np.ones(len(x), bool)),
                  overwrite=overwrite)
    elif gen.spec.task == "tpc":
        from hepfastsim.data.tpc_io import TPCDataset, write_digits, write_tpc_h5

        d = TPCDataset(x.reshape(len(x), *gen.spec.shape), cond, ref.names, ref.pad_range, ref.time_range, ref.centred)
        if out.suffix == ".dat":
            write_digits(out, d, threshold=gen.spec.threshold, overwrite=overwrite)
        else:
            write_tpc_h5(out, d, overwrite=overwrite, attrs=attrs)
    typer.echo(f"wrote {out}: {len(x)} responses in {dt:.2f} s ({1000 * dt / len(x):.4f} ms each, {backend})")


@app.command()
@friendly
def evaluate(
    reference: Path = typer.Option(..., help="reference: HDF5 (full simulation) or TPC digits .dat"),
    generated: Path = typer.Option(..., help="generated HDF5"),
    out: Path = typer.Option(..., help="report folder"),
    binning: Optional[str] = None,
    task: str = typer.Option("calo", help="calo, tpc or pid"),
    species: str = typer.Option("K", help="pid: the species compared"),
    split: str = typer.Option("all", help="TPC reference: all, train, val or test part of the fixed split"),
    protocol: str = typer.Option("calochallenge", help="classifier protocol: calochallenge (evaluate.py's DNN, "
                                 "50 epochs) or quick (smaller and shorter; not comparable with the published table)"),
    runs: int = typer.Option(3, min=1, max=100, help="classifier trainings (mean and std of AUC)"),
    epochs: Optional[int] = typer.Option(None, min=1, max=10_000, help="override the protocol's classifier epochs"),
    max_events: Optional[int] = typer.Option(None, min=1, help="compare the first N events of each sample (TPC: a stated sample size)"),
    fast: bool = typer.Option(False, help="skip PRDC and the diversity checks"),
    cnn: bool = typer.Option(False, help="add the CNN classifier column (datasets 2/3 and the demo readout; minutes "
                             "per training on dataset 2 on 2 CPU cores)"),
    timing: Optional[Path] = typer.Option(None, help="`benchmark --out` JSON: fills the table's ms-per-shower columns"),
    train: Optional[Path] = typer.Option(None, help="the training sample: adds the statistical amplification study"),
    holdout_energy: Optional[float] = typer.Option(None, help="MeV left out of training: adds metrics at that energy"),
    seed: int = typer.Option(0, min=0),
    overwrite: bool = False,
) -> None:
    """Compare generated responses with a reference: metrics.json + report.html with figures."""
    _check_task(task)
    if (out / "report.html").exists() and not overwrite:
        raise HepFastSimError(f"{out} already holds a report; pass --overwrite to replace it")
    if task == "tpc":
        from hepfastsim.data.tpc_io import read_tpc, select_split, split_indices
        from hepfastsim.validation.report import write_tpc_report
        from hepfastsim.validation.tpc import evaluate_tpc

        full = read_tpc(reference)
        ref_t, gen_t = select_split(full, split), read_tpc(generated)
        if max_events is not None:   # a stated sample size: the first N events of both
            ref_t, gen_t = (d.subset(slice(0, max_events)) for d in (ref_t, gen_t))
        m = evaluate_tpc(ref_t, gen_t, classifier_runs=runs, classifier_epochs=epochs or 30, seed=seed,
                         protocol="quick" if protocol == "calochallenge" else protocol)
        m["split"] = {"reference": split, "sizes": {k: len(v) for k, v in split_indices(len(full)).items()},
                      "max_events": max_events}
        path = write_tpc_report(out, ref_t, gen_t, m)
        typer.echo(f"chi2 {m['chi2']:.1f} ({m['chi2_ndf']} band points)  AUC low {m['classifier_low']['auc']:.3f}  "
                   f"high {m['classifier_high']['auc']:.3f}")
        typer.echo(f"report: {path}")
        return
    if task == "pid":
        from hepfastsim.data.pid_io import PID_CONDITIONS, PID_RESPONSES
        from hepfastsim.validation.pid import evaluate_pid, write_pid_report

        ref_p, gen_p = (_pid_data(f, species, ",".join(PID_CONDITIONS), ",".join(PID_RESPONSES), None)
                        for f in (reference, generated))
        m = evaluate_pid(ref_p.conditions, ref_p.responses, gen_p.conditions, gen_p.responses, PID_CONDITIONS, runs=runs,
                         epochs=epochs or 30, seed=seed)
        path = write_pid_report(out, m, title=f"{species}: {generated.name} vs {reference.name}")
        c = m["classifier"]
        typer.echo(f"efficiency chi2 {m['efficiency_chi2']:.1f} ({m['efficiency_bins']} bins)  AUC {c['auc']:.3f}"
                   + (f"±{c['auc_std']:.3f}" if c["auc_std"] is not None else " (1 run)"))
        typer.echo(f"report: {path}")
        return
    from hepfastsim.data.calo_io import read_showers
    from hepfastsim.validation.classifier import get_protocol
    from hepfastsim.validation.evaluate import evaluate as run_eval
    from hepfastsim.validation.evaluate import sample_features, timing_row
    from hepfastsim.validation.report import write_report

    get_protocol(protocol)
    b = resolve_binning(binning, reference)
    if cnn:   # before the samples are read
        from hepfastsim.validation.classifier import require_regular_grid

        require_regular_grid(b)
    timing_ms = timing_row(timing) if timing is not None else None
    ref = read_showers(reference, binning=b, max_events=max_events)
    gen = read_showers(generated, binning=b, max_events=max_events)
    feats = sample_features(ref, gen, b)
    m = run_eval(ref, gen, b, protocol=protocol, classifier_runs=runs, classifier_epochs=epochs, seed=seed, fast=fast,
                 features=feats, timing_ms=timing_ms, cnn=cnn)
    if holdout_energy:
        from hepfastsim.validation.evaluate import interpolation

        m["interpolation"] = interpolation(ref, gen, b, holdout_energy, seed=seed, protocol=protocol,
                                           classifier_runs=runs, classifier_epochs=epochs)
    if train is not None:
        from hepfastsim.validation.evaluate import amplification

        m["amplification"] = amplification(read_showers(train, binning=b, max_events=max_events), ref, gen, b, seed=seed)
    path = write_report(out, ref, gen, b, m, features=feats)
    lo, hi = m["classifier_low"], m["classifier_high"]
    spread = (lambda c: f"±{c['auc_std']:.3f}" if c["auc_std"] is not None else " (1 run)")
    typer.echo(f"AUC low {lo['auc']:.3f}{spread(lo)}  high {hi['auc']:.3f}{spread(hi)}  "
               f"FPD×1e3 {1e3 * m['fpd']:.4g}±{1e3 * m['fpd_err']:.2g}  KPD×1e3 {1e3 * m['kpd']:.3g}±{1e3 * m['kpd_err']:.2g}"
               + (f"  CNN {m['classifier_cnn']['auc']:.3f}{spread(m['classifier_cnn'])}" if "classifier_cnn" in m else ""))
    typer.echo(f"report: {path}")


@app.command()
@friendly
def benchmark(
    model: Path = typer.Option(..., help="checkpoint, or a shipped model: ds2, demo"),
    fullsim: bool = typer.Option(False, help="also time the built-in full simulation at the same energies"),
    energies: str = typer.Option("1000,10000,100000", help="MeV, comma separated"),
    repeats: int = typer.Option(5, min=1),
    onnx: Optional[Path] = typer.Option(None, help="also time this ONNX export with onnxruntime"),
    like: Optional[Path] = typer.Option(None, help="TPC model: take the track parameters of this digits file"),
    out: Optional[Path] = typer.Option(None, help="write the results as JSON"),
) -> None:
    """ms per response at batch 1, 100, 10000 (median after warm-up); with --fullsim the speed-up ratios."""
    from hepfastsim.bench.timing import time_fullsim, time_generator
    from hepfastsim.models import load_generator

    gen = load_generator(model)
    if gen.spec.task == "tpc":
        from hepfastsim.data.tpc_io import read_tpc

        if like is None:
            raise HepFastSimError("a TPC model is timed on real track parameters: give --like DIGITS.dat")
        conds = {"tpc": read_tpc(like).params}
    else:
        conds = {float(e): float(e) for e in energies.split(",")}
    es = [k for k in conds if k != "tpc"]
    res = {"model": str(model), "family": gen.family, "per_energy": {}}
    for key, c in conds.items():
        res["per_energy"][key] = time_generator(gen, c, repeats=repeats)
        if onnx:
            from hepfastsim.bench.export import OnnxSampler

            s = OnnxSampler(gen, onnx)
            res["per_energy"][key]["onnxruntime"] = time_generator(gen, c, repeats=repeats,
                                                                   backend=lambda c, b: s.sample(c, batch_size=b, seed=0))
    if fullsim and es:
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
    model: Path = typer.Option(..., help="checkpoint, or a shipped model: ds2, demo"),
    format: str = typer.Option("onnx", help="onnx"),
    out: Optional[Path] = None,
    int8: bool = typer.Option(False, help="also write a dynamically INT8-quantised copy (*.int8.onnx)"),
    overwrite: bool = False,
) -> None:
    """Export the network (with the fixed-step sampler for fm) to ONNX for onnxruntime / C++ frameworks."""
    from hepfastsim.bench.export import export_onnx, quantize
    from hepfastsim.models import load_generator

    if format != "onnx":
        raise HepFastSimError(f"unknown export format {format!r}; supported: onnx")
    gen = load_generator(model)
    target = out or model.with_suffix(".onnx")
    for p in (target, target.with_suffix(".int8.onnx")) if int8 else (target,):
        if p.exists() and not overwrite:
            raise HepFastSimError(f"{p} exists; pass --overwrite to replace it")
    path = export_onnx(gen, target)
    typer.echo(f"wrote {path}")
    if int8:
        q = quantize(path, path.with_suffix(".int8.onnx"))
        typer.echo(f"wrote {q}")


@app.command()
@friendly
def demo(
    out: Path = typer.Option(Path("demo_output"), help="work folder (simulated data is cached there)"),
    model: str = typer.Option("fm", help="model family to train"),
    epochs: int = typer.Option(300, min=1, max=100_000, help="training budget in epochs (early stopping may end it sooner)"),
    minutes: Optional[float] = typer.Option(None, min=0.01, max=10_000,
                                            help="wall-clock cap on the training as well (a quick look; epochs are what compare)"),
    n_train: int = typer.Option(6000, min=100),
    n_test: int = typer.Option(2000, min=100),
    classifier_epochs: Optional[int] = typer.Option(None, min=1, max=10_000,
                                                    help="override the CaloChallenge classifier's 50 epochs (quick look)"),
    n_ds2: int = typer.Option(300, min=0, help="dataset-2 showers to check the shipped ds2 model on (0: skip)"),
    seed: int = typer.Option(0, min=0),
) -> None:
    """End to end on the built-in simulation: simulate (cached), train, generate, evaluate, benchmark; then the
    shipped dataset-2 model against fresh dataset-2 showers."""
    from hepfastsim.demo import run_demo

    run_demo(out, model=model, epochs=epochs, minutes=minutes, n_train=n_train, n_test=n_test, seed=seed,
             classifier_epochs=classifier_epochs, n_ds2=n_ds2)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
