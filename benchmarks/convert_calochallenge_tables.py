"""Convert the CaloChallenge final-results tables (pandas HDF files) into the JSON the package ships.

A maintainer's tool, run once: the published rows (CaloChallenge 2022 final results, measured on Geant4 data) are
public, and the package carries their scalar columns in validation/data/ so that every report shows them without
these HDF files; a user's clone never needs them. --source is the folder of calochallenge_results_ds*.hdf (the
CaloChallenge final-results tables). Needs pandas and PyTables, which the package itself does not depend on:

    .venv/bin/pip install pandas tables && .venv/bin/python benchmarks/convert_calochallenge_tables.py --source DIR
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "hepfastsim" / "validation" / "data" / "calochallenge_results.json"
DATASETS = {"ds1-photons": "ds1_photons", "ds1-pions": "ds1_pions", "ds2": "ds2", "ds3": "ds3"}


def scalar(v):
    """A float, or None for NaN and anything that is not a number (per-layer arrays, matrices)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else round(f, 6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, required=True, help="folder of calochallenge_results_ds*.hdf")
    src = ap.parse_args().source
    out = {"source": "CaloChallenge 2022 final results (arXiv:2410.21611), reference data Geant4", "datasets": {}}
    for name, stem in DATASETS.items():
        df = pd.read_hdf(src / f"calochallenge_results_{stem}.hdf")
        rows = []
        for _, row in df.iterrows():
            rec = {"submission": str(row["submission name"]).strip()}
            for col in df.columns[1:]:
                val = scalar(row[col])
                if val is not None:
                    rec[col] = val
            rows.append(rec)
        out["datasets"][name] = rows
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT} ({sum(len(r) for r in out['datasets'].values())} rows)")


if __name__ == "__main__":
    main()
