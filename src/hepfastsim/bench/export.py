"""ONNX export of every neural family and an onnxruntime sampler.

The exported graph maps (standardised conditions, latent noise) -> preprocessed responses;
for flow matching it contains the fixed-step ODE sampler. Pre- and post-processing are
numpy (the same ``ResponseTransform`` as PyTorch), so PyTorch and onnxruntime agree given the
same latent inputs. ``quantize`` applies onnxruntime's dynamic INT8 quantisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hepfastsim.errors import HepFastSimError
from hepfastsim.fileio import atomic_output
from hepfastsim.models.base import Generator, TorchGenerator


class _Wrapped(torch.nn.Module):
    """(standardised conditions, latent) -> preprocessed response: the family's ``decode``, for tracing."""

    def __init__(self, model: TorchGenerator):
        super().__init__()
        self.model = model
        self.net = model.ema.module

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.net, c, z)


def torch_from_latent(model: TorchGenerator, conditions: np.ndarray, z: np.ndarray) -> np.ndarray:
    """PyTorch output for given latent inputs (physical units), for parity checks."""
    c = model._check_conditions(conditions)
    with torch.no_grad():
        u = _Wrapped(model)(torch.from_numpy(model.c_tf.forward(c)), torch.from_numpy(z.astype(np.float32))).numpy()
    return model.x_tf.inverse(u, model._scale(c))


def export_onnx(model: Generator, path: str | Path, opset: int = 17) -> Path:
    """Write model.onnx with inputs 'conditions' (B, C) standardised and 'latent' (B, Z); output 'response'."""
    if not isinstance(model, TorchGenerator) or type(model).decode is TorchGenerator.decode:
        raise HepFastSimError(f"ONNX export needs a family with a latent decoder (fm, vae, gan); got {model.family!r}")
    path = Path(path)
    wrapped = _Wrapped(model).eval()
    c = torch.zeros(2, model.c_tf.n_out)
    z = torch.zeros(2, model.latent_dim())
    with atomic_output(path) as tmp:
        torch.onnx.export(wrapped, (c, z), str(tmp), input_names=["conditions", "latent"], output_names=["response"],
                          dynamic_axes={"conditions": {0: "batch"}, "latent": {0: "batch"}, "response": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    return path


def quantize(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Dynamic INT8 quantisation of the weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_output(out_path) as tmp:
        quantize_dynamic(str(onnx_path), str(tmp), weight_type=QuantType.QInt8)
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
        self.zdim = model.latent_dim()

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
