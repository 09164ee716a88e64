"""Full-simulation data generation spread over processes or nodes with Dask.

The run's chunks (see ``FullSim.simulate_to_file``: chunk i has its own seed) are cut into
contiguous shards; each Dask task simulates one shard into ``OUT/shard_NNNN.h5`` on whichever
worker runs it. The shards in name order are exactly the file a single process would write,
and ``info`` / ``train`` / ``evaluate`` read the folder as one dataset. Without a scheduler
address a local cluster of ``workers`` processes is started; with ``scheduler`` (e.g.
``tcp://head:8786``, a ``dask scheduler`` started on the cluster) the tasks run on its workers,
which must see OUT (a shared file system).
"""

from __future__ import annotations

from pathlib import Path

from hepfastsim.errors import HepFastSimError


def _simulate_shard(detector_yaml: str | None, binning: str, path: str, n_events: int, energy_spec: str, particle: str,
                    theta: float, phi: float, seed: int, chunk: int, chunks: tuple[int, int], threads: int | None,
                    engine: str = "builtin", physics: str = "auto") -> dict:
    """One Dask task: build the simulation on the worker and write one shard (resumable)."""
    import numba

    from hepfastsim.fullsim import make_engine

    if threads:
        numba.set_num_threads(threads)  # local workers share the machine's cores
    from hepfastsim.geometry.detector import load_detector

    fs = make_engine(engine, load_detector(detector_yaml), binning, physics)
    p = Path(path)
    return fs.simulate_to_file(p, n_events, energy_spec, particle, theta=theta, phi=phi, seed=seed, chunk=chunk,
                               resume=p.exists(), progress=False, chunks=range(*chunks))


def shard_count(n_events: int, chunk: int, shards: int) -> int:
    """The shards a run really has: each holds whole chunks (their seeds are the single-process file's), so no
    more than the number of chunks."""
    return max(1, min(shards, (n_events + chunk - 1) // chunk))


def simulate_sharded(out: str | Path, n_events: int, energy_spec: str, particle: str = "e-", *, binning: str = "demo",
                     detector: str | Path | None = None, theta: float = 0.0, phi: float = 0.0, seed: int = 0,
                     chunk: int = 1000, shards: int = 2, workers: int | None = None, scheduler: str | None = None,
                     engine: str = "builtin", physics: str = "auto") -> dict:
    """Simulate n_events as `shards` shard files in the folder out, in parallel on a Dask cluster."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise HepFastSimError("distributed simulation needs Dask: pip install 'dask[distributed]'") from None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HepFastSimError(f"{out} exists and is not a folder (sharded output is a folder of shard_NNNN.h5)")
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = (n_events + chunk - 1) // chunk
    shards = shard_count(n_events, chunk, shards)
    bounds = [round(i * n_chunks / shards) for i in range(shards + 1)]
    import os

    n_local = workers or shards
    threads = None if scheduler else max(1, (os.cpu_count() or 1) // n_local)
    cluster = None if scheduler else LocalCluster(n_workers=n_local, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    try:
        with Client(scheduler or cluster) as client:
            futures = [client.submit(_simulate_shard, str(detector) if detector else None, str(binning),
                                     str(out / f"shard_{k:04d}.h5"), n_events, energy_spec, particle, theta, phi, seed,
                                     chunk, (bounds[k], bounds[k + 1]), threads, engine, physics, pure=False)
                       for k in range(shards)]
            stats = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
    return {"shards": shards, "events": sum(s["events"] for s in stats), "seconds": max(s["seconds"] for s in stats),
            "cpu_seconds": sum(s["seconds"] for s in stats), "simulated_GeV": sum(s["simulated_GeV"] for s in stats)}
