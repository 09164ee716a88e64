"""Pretrained models shipped with the package, usable by name: ``hepfastsim generate --model ds2 ...``.

Each entry is a slim checkpoint (sampling weights only, no optimiser state) written by the command in
benchmarks/RESULTS.md (sections "Dataset 2 over two decades: layer-wise flow matching and the shipped model" and
"`make demo` from a fresh clone, and the shipped demo-readout model"); ``make pretrained-ds2`` and
``make pretrained-demo`` reproduce them.
"""

from __future__ import annotations

from pathlib import Path

from hepfastsim.errors import HepFastSimError

HERE = Path(__file__).parent
SHIPPED = {
    "ds2": "ds2_layer_fm.pt",   # layer_fm, CaloChallenge dataset 2, e- 1-100 GeV, built-in simulation
    "demo": "demo_fm.pt",       # fm, the demo readout (9 layers x 64 voxels), e- 1-20 GeV, built-in simulation
}


def resolve_model(path: str | Path) -> Path:
    """A checkpoint path, or the file of a shipped model named like ``ds2`` (an existing file always wins)."""
    p = Path(path)
    if p.exists() or str(path) not in SHIPPED:
        return p
    shipped = HERE / SHIPPED[str(path)]
    if not shipped.exists():
        raise HepFastSimError(f"shipped model {str(path)!r} is not in this installation ({shipped} missing)")
    return shipped
