"""Write tests/data/golden_samples.npz from the code as it is (run only when a change of the outputs is intended):
    .venv/bin/python tests/make_golden.py"""

from pathlib import Path

import numpy as np

from golden_cases import CASES, run_case

out = {}
for name in CASES:
    for key, value in run_case(name).items():
        out[f"{name}/{key}"] = value
    print(name, "done")
np.savez_compressed(Path(__file__).parent / "data" / "golden_samples.npz", **out)
