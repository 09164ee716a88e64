"""Fault injection: bad files and bad values, as a careful user would try them, through the CLI.

Every case must end with exit code 2 and one line that names the problem, recognised as the user's input
(not the generic "please report this" of an unexpected exception), without a traceback, and without
creating, changing or deleting an output file. `pytest tests/test_faults.py -s` prints the reliability
table quoted in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from hepfastsim.cli import app
from hepfastsim.data.calo_io import ShowerDataset, write_showers

runner = CliRunner()
TABLE: dict[str, list[bool]] = {}


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_samples):
    """A valid reference file, a valid library checkpoint and an existing output file to protect."""
    d = tmp_path_factory.mktemp("faults")
    ref, _ = demo_samples
    good = write_showers(d / "good.h5", ref.subset(slice(0, 200)), attrs={"binning": "binning_demo"})
    r = runner.invoke(app, ["train", "--data", str(good), "--model", "library", "--out", str(d / "lib.pt"), "--quiet",
                            "--binning", "demo"])
    assert r.exit_code == 0, r.output
    (d / "keep.h5").write_bytes(b"the user's data")
    return d


def _h5(path: Path, **datasets) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            if isinstance(v, str) and v == "group":
                f.create_group(k)
            else:
                f[k] = v
    return path


def bad_shower_files(d: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    s = rng.exponential(1.0, (5, 576)).astype(np.float32)
    e = np.full((5, 1), 1e4)
    nan = s.copy()
    nan[2, 3] = np.nan
    neg = s.copy()
    neg[1, 0] = -1.0
    good = (d / "good.h5").read_bytes()
    cases = {
        "missing file": d / "nope.h5",
        "not HDF5": d / "text.h5",
        "truncated HDF5": d / "trunc.h5",
        "1-d showers": _h5(d / "s1.h5", incident_energies=e, showers=s[0]),
        "3-d showers": _h5(d / "s3.h5", incident_energies=e, showers=s.reshape(5, 24, 24)),
        "string showers": _h5(d / "str.h5", incident_energies=e, showers=np.array([b"a"] * 5)),
        "showers is a group": _h5(d / "grp.h5", incident_energies=e, showers="group"),
        "scalar energies": _h5(d / "sc.h5", incident_energies=np.float64(1e4), showers=s),
        "(N,2) energies": _h5(d / "e2.h5", incident_energies=np.ones((5, 2)), showers=s),
        "N mismatch": _h5(d / "nm.h5", incident_energies=np.full((4, 1), 1e4), showers=s),
        "no events": _h5(d / "zero.h5", incident_energies=np.zeros((0, 1)), showers=np.zeros((0, 576), np.float32)),
        "NaN voxel": _h5(d / "nan.h5", incident_energies=e, showers=nan),
        "negative voxel": _h5(d / "neg.h5", incident_energies=e, showers=neg),
        "negative energy": _h5(d / "nege.h5", incident_energies=-e, showers=s),
        "missing showers": _h5(d / "miss.h5", incident_energies=e),
        "wrong voxel count": _h5(d / "vox.h5", incident_energies=e, showers=s[:, :100]),
        "folder without shards": d / "emptydir",
    }
    (d / "text.h5").write_text("not an hdf5 file\n")
    (d / "trunc.h5").write_bytes(good[: len(good) // 3])
    (d / "emptydir").mkdir(exist_ok=True)
    return cases


def bad_checkpoints(d: Path) -> dict[str, Path]:
    good = (d / "lib.pt").read_bytes()

    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    cases = {
        "missing checkpoint": d / "none.pt",
        "garbage checkpoint": d / "garbage.pt",
        "truncated checkpoint": d / "trunc.pt",
        "pickle with code": d / "evil.pt",
        "gzip, not a checkpoint": d / "gz.pt",
    }
    (d / "garbage.pt").write_bytes(b"\x00\x01not a torch file" * 10)
    (d / "trunc.pt").write_bytes(good[: len(good) // 2])
    (d / "evil.pt").write_bytes(pickle.dumps(Payload()))
    (d / "gz.pt").write_bytes(gzip.compress(b"hello"))
    return cases


def _run_clean(args: list[str], protect: Path) -> tuple[bool, str]:
    before = protect.read_bytes()
    r = runner.invoke(app, args)
    out = r.output.strip()
    clean = (r.exit_code == 2 and len(out.splitlines()) == 1 and out.startswith("error:")
             and "Traceback" not in out and "please report" not in out and "payload ran" not in out
             and protect.read_bytes() == before)
    return clean, out


def _record(name: str, outcomes: dict[str, tuple[bool, str]]) -> None:
    TABLE[name] = [ok for ok, _ in outcomes.values()]
    bad = {k: v for k, (ok, v) in outcomes.items() if not ok}
    print(f"\nfault class {name!r}: {len(outcomes)} cases, {len(outcomes) - len(bad)} clean one-line errors")
    for k, v in bad.items():
        print(f"  NOT CLEAN {k}: {v}")
    assert not bad, list(bad)


def test_bad_shower_files(files):
    d = files
    keep = d / "keep.h5"
    outcomes = {}
    for name, path in bad_shower_files(d).items():
        for cmd in (["info", str(path)],
                    ["evaluate", "--reference", str(path), "--generated", str(d / "good.h5"), "--out", str(d / "rep_x"),
                     "--binning", "demo", "--protocol", "quick", "--runs", "1", "--epochs", "1", "--fast"],
                    ["train", "--data", str(path), "--model", "library", "--out", str(keep), "--binning", "demo"],
                    ["generate", "--model", str(d / "lib.pt"), "--like", str(path), "--out", str(keep)]):
            if cmd[0] == "info" and name in ("no events", "wrong voxel count"):
                continue  # facts about a well-formed file, which info reports (tested in test_defects)
            outcomes[f"{name} / {cmd[0]}"] = _run_clean(cmd, keep)
    _record("bad shower files (info, evaluate, train, generate)", outcomes)
    assert not (d / "rep_x" / "report.html").exists()


def test_bad_checkpoints(files):
    d = files
    keep = d / "keep.h5"
    outcomes = {}
    for name, path in bad_checkpoints(d).items():
        for cmd in (["generate", "--model", str(path), "--energies", "10000", "--n", "5", "--out", str(d / "g.h5")],
                    ["export", "--model", str(path), "--out", str(d / "m.onnx")],
                    ["benchmark", "--model", str(path), "--energies", "10000", "--repeats", "1"]):
            outcomes[f"{name} / {cmd[0]}"] = _run_clean(cmd, keep)
    _record("bad checkpoints (generate, export, benchmark)", outcomes)
    assert not (d / "g.h5").exists() and not (d / "m.onnx").exists()


def test_bad_values(files):
    d = files
    keep = d / "keep.h5"
    lib = str(d / "lib.pt")
    cases = {
        "unknown particle": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--particle", "muon-ish"],
        "energy above 1 TeV": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--energies", "2000000"],
        "negative energy": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--energies", "-5"],
        "NaN angle": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--theta-deg", "nan"],
        "zero chunk": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--chunk", "0"],
        "negative seed": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--seed", "-1"],
        "unknown binning": ["simulate", "--out", str(d / "s.h5"), "--n", "2", "--binning", "dataset-7"],
        "existing output, no --overwrite": ["simulate", "--out", str(keep), "--n", "2"],
        "negative batch size": ["generate", "--model", lib, "--energies", "10000", "--n", "5", "--batch-size", "-3",
                                "--out", str(d / "g.h5")],
        "epochs 0": ["train", "--data", str(d / "good.h5"), "--model", "vae", "--epochs", "0", "--out", str(d / "v.pt")],
        "epochs -1": ["train", "--data", str(d / "good.h5"), "--model", "vae", "--epochs", "-1", "--out", str(d / "v.pt")],
        "unknown family": ["train", "--data", str(d / "good.h5"), "--model", "diffusion9", "--out", str(d / "v.pt")],
        "unknown protocol": ["evaluate", "--reference", str(d / "good.h5"), "--generated", str(d / "good.h5"),
                             "--out", str(d / "rep_y"), "--protocol", "fast-ish"],
        "zero classifier runs": ["evaluate", "--reference", str(d / "good.h5"), "--generated", str(d / "good.h5"),
                                 "--out", str(d / "rep_y"), "--runs", "0"],
        "missing timing file": ["evaluate", "--reference", str(d / "good.h5"), "--generated", str(d / "good.h5"),
                                "--out", str(d / "rep_y"), "--timing", str(d / "none.json")],
    }
    outcomes = {name: _run_clean(cmd, keep) for name, cmd in cases.items()}
    _record("bad command-line values", outcomes)
    for p in ("s.h5", "g.h5", "v.pt"):
        assert not (d / p).exists(), p


def test_bad_config_and_digits(files):
    d = files
    keep = d / "keep.h5"
    (d / "bad.yaml").write_text("hidden: [1, 2\n")
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "unknown.yaml").write_text("hiddn: 32\n")
    (d / "type.yaml").write_text("hidden: lots\n")
    (d / "latin1.dat").write_bytes("params: 0.1 0.2\n1 2 3\n".encode() + b"\xff\xfe\n")
    (d / "nan.dat").write_text("params: nan 0.2\n1 2 3\n")
    (d / "huge.dat").write_text("params: 0.1 0.2\n1 2 1e300\n")
    train = ["train", "--data", str(d / "good.h5"), "--model", "vae", "--binning", "demo", "--out", str(d / "v.pt")]
    cases = {
        "YAML syntax error": train + ["--config", str(d / "bad.yaml")],
        "YAML not a mapping": train + ["--config", str(d / "list.yaml")],
        "unknown option": train + ["--config", str(d / "unknown.yaml")],
        "option of wrong type": train + ["--config", str(d / "type.yaml")],
        "digits not UTF-8": ["train", "--data", str(d / "latin1.dat"), "--task", "tpc", "--model", "fm", "--out",
                             str(d / "t.pt")],
        "digits NaN parameter": ["train", "--data", str(d / "nan.dat"), "--task", "tpc", "--model", "fm", "--out",
                                 str(d / "t.pt")],
        "digits beyond float32": ["train", "--data", str(d / "huge.dat"), "--task", "tpc", "--model", "fm", "--out",
                                  str(d / "t.pt")],
    }
    outcomes = {name: _run_clean(cmd, keep) for name, cmd in cases.items()}
    _record("bad configs and digits files", outcomes)
    assert not (d / "v.pt").exists() and not (d / "t.pt").exists()


def test_zz_reliability_table():
    """The table RESULTS quotes (runs after the classes above in file order)."""
    print("\n| fault class | cases | clean one-line error, exit 2, nothing written |")
    print("|---|---|---|")
    for name, oks in TABLE.items():
        print(f"| {name} | {len(oks)} | {sum(oks)} |")
    assert TABLE
