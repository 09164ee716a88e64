"""Conditional flow matching (CaloDREAM / CaloDiffusion lineage).

A network v(x_t, t, c) learns the velocity of the straight path x_t = (1-t) z + t x from
Gaussian noise z to data x (rectified flow / OT-CFM); sampling integrates dx/dt = v from
t = 0 to 1 with a fixed number of midpoint steps (``steps``).

With ``distill_epochs > 0`` a one-pass student network is then trained to reproduce the
sampler's deterministic noise -> response map (knowledge distillation of a rectified flow,
Liu et al. 2022): sampling costs one network call instead of 2 x steps, which is what the
fastest use cases need. ``sampler: ode`` keeps sampling with the ODE.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import torch
from tqdm import tqdm

from hepfastsim.errors import HepFastSimError
from hepfastsim.data.samples import Samples
from hepfastsim.models.neural import TorchGenerator, mlp


class _Velocity(torch.nn.Module):
    def __init__(self, d: int, nc: int, hidden: int, layers: int, n_freq: int = 8):
        super().__init__()
        self.register_buffer("freq", torch.pi * 2.0 ** torch.arange(n_freq).float())
        self.net = mlp(d + nc + 2 * n_freq, d, hidden, layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        tf = t[:, None] * self.freq[None, :]
        return self.net(torch.cat([x, c, torch.sin(tf), torch.cos(tf)], 1))


def integrate(net: _Velocity, z: torch.Tensor, c: torch.Tensor, steps: int) -> torch.Tensor:
    """Midpoint-rule ODE solve from noise z (t=0) to data (t=1); a plain function so ONNX export can trace it."""
    x = z
    h = 1.0 / steps
    for i in range(steps):
        t = torch.zeros_like(x[:, 0]) + i * h  # batch size stays dynamic in a traced (ONNX) graph
        k1 = net(x, t, c)
        x = x + h * net(x + 0.5 * h * k1, t + 0.5 * h, c)
    return x


class _FM(torch.nn.Module):
    def __init__(self, d: int, nc: int, hidden: int, layers: int, student: tuple[int, int] | None):
        super().__init__()
        self.velocity = _Velocity(d, nc, hidden, layers)
        self.student = mlp(d + nc, d, student[0], student[1]) if student else None


class FlowMatching(TorchGenerator):
    family: ClassVar[str] = "fm"

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        student = (int(self.config["student_hidden"]), int(self.config["student_layers"])) if self.config["distill_epochs"] else None
        return _FM(n_features, n_cond, int(self.config["hidden"]), int(self.config["layers"]), student)

    @staticmethod
    def _path_point(x, gen):
        """A random point x_t of the straight noise -> data path, its time t and the target velocity x - z."""
        z = torch.randn(x.shape, generator=gen, device=x.device)
        t = torch.rand(len(x), generator=gen, device=x.device)
        return (1 - t[:, None]) * z + t[:, None] * x, t, x - z

    def loss(self, net, x, c, gen=None):
        xt, t, target = self._path_point(x, gen)
        return ((net.velocity(xt, t, c) - target) ** 2).mean()

    def function_output(self, net, x, c, gen):
        """The velocity field on a random path point (cheap: one network call instead of an ODE solve)."""
        xt, t, _ = self._path_point(x, gen)
        return net.velocity(xt, t, c)

    def latent_dim(self) -> int:
        return self.x_tf_.n_out

    def _use_student(self, net) -> bool:
        mode = self.config["sampler"]
        if mode == "student" and net.student is None:
            raise HepFastSimError("this fm model has no distilled student (train with distill_epochs > 0)")
        return net.student is not None and mode != "ode"

    def decode(self, net, c, z):
        """Noise z -> response: the fixed-step ODE solve, or its distilled one-pass student; deterministic either
        way, so the ONNX export contains the whole sampler."""
        if self._use_student(net):
            return net.student(torch.cat([z, c], 1))
        return integrate(net.velocity, z, c, int(self.config["steps"]))

    def finish(self, train: Samples, seed: int, progress: bool) -> None:
        if int(self.config["distill_epochs"]) > 0:
            self.distill(train, seed=seed, progress=progress)

    def distill(self, train: Samples, seed: int = 0, progress: bool = True) -> float:
        """Train the student on (noise, ODE solution) pairs of the EMA teacher at the training conditions;
        returns the final mean squared error in preprocessed units."""
        t0 = time.perf_counter()
        teacher = self.ema_.module
        student = teacher.student
        g = torch.Generator(device=self.device)
        g.manual_seed(seed)
        ct = torch.from_numpy(self.c_tf_.forward(train.c)).to(self.device)
        n = int(self.config["distill_pairs"])
        c = ct[torch.randint(len(ct), (n,), generator=g, device=self.device)]
        z = torch.randn(n, self.latent_dim(), generator=g, device=self.device)
        with torch.no_grad():
            x = torch.cat([integrate(teacher.velocity, z[i:i + 10_000], c[i:i + 10_000], int(self.config["steps"]))
                           for i in range(0, n, 10_000)])
        opt = torch.optim.Adam(student.parameters(), lr=float(self.config["lr"]))
        epochs = int(self.config["distill_epochs"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        bs = int(self.config["batch_size"])
        limit = float(self.config.get("distill_time_s") or 0)
        mse = float("nan")
        student.train()
        for _ in tqdm(range(epochs), desc="distill fm", disable=not progress, unit="epoch"):
            perm = torch.randperm(n, generator=g, device=self.device)
            losses = []
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                opt.zero_grad()
                loss = ((student(torch.cat([z[idx], c[idx]], 1)) - x[idx]) ** 2).mean()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            sched.step()
            mse = float(np.mean(losses))
            if limit and time.perf_counter() - t0 > limit:
                break
        student.eval()
        self.net_.student.load_state_dict(student.state_dict())
        self.history_.seconds += time.perf_counter() - t0
        return mse
