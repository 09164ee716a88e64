"""ONNX export of every neural family and an onnxruntime sampler.

The exported graph maps (standardised conditions, latent noise) -> preprocessed responses;
for flow matching it contains the fixed-step ODE sampler. Pre- and post-processing are
numpy (the same ``ResponseTransform`` as PyTorch), so PyTorch and onnxruntime agree given the
same latent inputs. ``quantize`` applies onnxruntime's dynamic INT8 quantisation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError
from hepfastsim.models.base import Generator, TorchGenerator


class _Wrapped(torch.nn.Module):
    """conditions + latent -> preprocessed response, for tracing."""

    def __init__(self, model: TorchGenerator):
        super().__init__()
        self.model = model
        self.net = model.ema.module

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        fam = self.model.family
        if fam == "fm":
            from hepfastsim.models.flow_matching import integrate

            return integrate(self.net, z, c, int(self.model.config["steps"]))
        if fam == "vae":
            return self.net.dec(torch.cat([z, c], 1))
        if fam == "gan":
            return self.net.gen(torch.cat([z, c], 1))
        raise HepFastSimError(f"ONNX export is not available for family {fam!r}")


def latent_dim(model: TorchGenerator) -> int:
    return model.spec.n_features if model.family == "fm" else int(model.config["latent"])


def torch_from_latent(model: TorchGenerator, conditions: np.ndarray, z: np.ndarray) -> np.ndarray:
    """PyTorch output for given latent inputs (physical units), for parity checks."""
    c = model._check_conditions(conditions)
    with torch.no_grad():
        u = _Wrapped(model)(torch.from_numpy(model.c_tf.forward(c)), torch.from_numpy(z.astype(np.float32))).numpy()
    return model.x_tf.inverse(u, model._scale(c))


def export_onnx(model: Generator, path: str | Path, opset: int = 17) -> Path:
    """Write model.onnx with inputs 'conditions' (B, C) standardised and 'latent' (B, Z); output 'response'."""
    if not isinstance(model, TorchGenerator) or model.family not in ("fm", "vae", "gan"):
        raise HepFastSimError(f"ONNX export supports families fm, vae, gan; got {model.family!r}")
    path = Path(path)
    wrapped = _Wrapped(model).eval()
    c = torch.zeros(2, len(model.spec.condition_names))
    z = torch.zeros(2, latent_dim(model))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent if path.parent.exists() else None)
    os.close(fd)
    try:
        torch.onnx.export(wrapped, (c, z), tmp, input_names=["conditions", "latent"], output_names=["response"],
                          dynamic_axes={"conditions": {0: "batch"}, "latent": {0: "batch"}, "response": {0: "batch"}},
                          opset_version=opset, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def quantize(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic INT8 quantisation of the weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(onnx_path), str(out_path), weight_type=QuantType.QInt8)
    return Path(out_path)


class OnnxSampler:
    """Samples like ``Generator.sample`` but runs the network in onnxruntime."""

    def __init__(self, model: TorchGenerator, onnx_path: str | Path, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.model = model
        self.zdim = latent_dim(model)

    def run_latent(self, conditions: np.ndarray, z: np.ndarray) -> np.ndarray:
        c = self.model._check_conditions(conditions)
        u = self.session.run(["response"], {"conditions": self.model.c_tf.forward(c), "latent": z.astype(np.float32)})[0]
        return self.model.x_tf.inverse(u, self.model._scale(c))

    def sample(self, conditions: np.ndarray, *, batch_size: int = 10_000, seed: int | None = None) -> np.ndarray:
        c = np.asarray(conditions, np.float64).reshape(len(conditions), -1)
        rng = np.random.default_rng(seed)
        out = []
        for i in range(0, len(c), batch_size):
            cb = c[i:i + batch_size]
            out.append(self.run_latent(cb, rng.standard_normal((len(cb), self.zdim)).astype(np.float32)))
        return np.concatenate(out)
