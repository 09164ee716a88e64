"""ONNX export of every family and an onnxruntime sampler.

The exported graph maps (standardised conditions, latent noise) -> the response in physical units (MeV,
float32): the family's decoder (for flow matching the fixed-step ODE sampler), the calibration and the inverse
preprocessing are all in the graph, so a C++ framework only standardises the conditions (constants in the
file's metadata) and draws the latent noise. For the binned shower library the graph holds the bank of
showers and the bin lookup. Export traces a CPU copy of the model, whatever device it was loaded on.
``quantize`` applies onnxruntime's dynamic INT8 quantisation.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from hepfastsim.fileio import atomic_output
from hepfastsim.models.base import Generator


def torch_from_latent(model: Generator, conditions: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The PyTorch responses (MeV) for given latent inputs, for parity checks: the family's decoder and calibration
    in PyTorch followed by the numpy inverse preprocessing that ``Generator.sample`` applies (the library: its
    graph, which is its PyTorch sampler)."""
    c = model._check_conditions(conditions)
    graph = _cpu_graph(model)
    ct, zt = torch.from_numpy(model.c_tf_.forward(c)), torch.from_numpy(z.astype(np.float32))
    with torch.no_grad():
        if not hasattr(graph, "preprocessed"):
            return graph(ct, zt).numpy()
        return model.x_tf_.inverse(graph.preprocessed(ct, zt).numpy(), model._scale(c))


def _cpu_graph(model: Generator) -> torch.nn.Module:
    """The model's exportable graph on the CPU (a copy when the model lives on a GPU), in eval mode."""
    graph = model.onnx_graph().eval()   # refuses families without one
    if any(t.device.type != "cpu" for t in [*graph.parameters(), *graph.buffers()]):
        graph = copy.deepcopy(graph).cpu()
    return graph


def export_onnx(model: Generator, path: str | Path, opset: int = 17) -> Path:
    """Write model.onnx with inputs 'conditions' (B, C) standardised and 'latent' (B, Z); output 'response'."""
    graph = _cpu_graph(model)   # refuses families without one, before anything is written
    path = Path(path)
    c = torch.zeros(2, model.c_tf_.n_out)
    z = torch.zeros(2, model.latent_dim())
    with atomic_output(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)   # zuko's fixed-size loops trace correctly
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(graph, (c, z), str(tmp), input_names=["conditions", "latent"], output_names=["response"],
                          dynamic_axes={"conditions": {0: "batch"}, "latent": {0: "batch"}, "response": {0: "batch"}},
                          opset_version=opset, dynamo=False)
        _add_metadata(tmp, model)
    return path


def _add_metadata(path: Path, model: Generator) -> None:
    """Store what a C++ framework needs beside the graph in the ONNX file's metadata ("hepfastsim", JSON):
    family, geometry, condition names, the condition standardisation (input) and the response preprocessing
    constants (the inverse maps the output to MeV; identity for the library, whose graph outputs MeV)."""
    import onnx

    proto = onnx.load(str(path))
    meta = {"family": model.family, "geometry_id": model.spec.geometry_id, "geometry_name": model.spec.geometry_name,
            "conditions": list(model.spec.condition_names), "latent_dim": model.latent_dim(),
            "condition_transform": model.c_tf_.state(), "response_transform": model.x_tf_.state(),
            "output": "MeV"}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "hepfastsim", json.dumps(meta, default=lambda v: v.tolist())  # numpy arrays and scalars
    onnx.save(proto, str(path))


def quantize(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic INT8 quantisation of the weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_output(out_path) as tmp:
        quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8)
    return Path(out_path)


class OnnxSampler:
    """Samples like ``Generator.sample`` but runs the network in onnxruntime."""

    def __init__(self, model: Generator, onnx_path: str | Path, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.model = model
        self.zdim = model.latent_dim()

    def run_latent(self, conditions: np.ndarray, z: np.ndarray) -> np.ndarray:
        c = self.model._check_conditions(conditions)
        return self.session.run(["response"], {"conditions": self.model.c_tf_.forward(c), "latent": z.astype(np.float32)})[0]

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = np.asarray(conditions, np.float64).reshape(len(conditions), -1)
        rng = np.random.default_rng(seed)
        out = []
        for i in range(0, len(c), batch_size):
            cb = c[i:i + batch_size]
            out.append(self.run_latent(cb, rng.standard_normal((len(cb), self.zdim)).astype(np.float32)))
        return np.concatenate(out)
