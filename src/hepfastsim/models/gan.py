"""Conditional WGAN-GP with an auxiliary energy regression in the critic (CaloGAN / 3DGAN lineage).

The critic outputs a Wasserstein score and a regression of the (standardised) conditions;
the generator is penalised when the critic's regression of its samples misses the requested
conditions. Gradient penalty lambda = 10, n_critic critic steps per generator step.
``surrogate: sparsity`` adds the metric-prioritised term of ``models/surrogate.py`` to the
generator loss (weight ``surrogate_weight``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from hepfastsim.models.neural import TorchGenerator, mlp


class _GAN(torch.nn.Module):
    def __init__(self, d: int, nc: int, latent: int, hidden: int, layers: int):
        super().__init__()
        self.gen = mlp(latent + nc, d, hidden, layers, act=lambda: torch.nn.LeakyReLU(0.2))
        self.critic = mlp(d + nc, 1 + nc, hidden, layers, act=lambda: torch.nn.LeakyReLU(0.2))


class GAN(TorchGenerator):
    family: ClassVar[str] = "gan"
    surrogate = None

    def prepare(self, train, seed):
        if self.config.get("surrogate"):
            from hepfastsim.models.surrogate import fit_surrogate

            self.surrogate = fit_surrogate(self, train, self.config["surrogate"], seed=seed)

    def build(self, n_features: int, n_cond: int) -> torch.nn.Module:
        return _GAN(n_features, n_cond, int(self.config["latent"]), int(self.config["hidden"]), int(self.config["layers"]))

    def make_optimizers(self):
        lr = self.config["lr"]
        return {"gen": torch.optim.Adam(self.net_.gen.parameters(), lr=lr, betas=(0.5, 0.9)),
                "critic": torch.optim.Adam(self.net_.critic.parameters(), lr=lr, betas=(0.5, 0.9))}

    def decode(self, net, c, z):
        return net.gen(torch.cat([z, c], 1))

    def train_step(self, x, c, step):
        net, nc = self.net_, c.shape[1]
        fake = self.generate(net, c, None).detach()
        out_r = net.critic(torch.cat([x, c], 1))
        out_f = net.critic(torch.cat([fake, c], 1))
        a = torch.rand(len(x), 1, device=x.device)
        inter = (a * x + (1 - a) * fake).requires_grad_(True)
        score_i = net.critic(torch.cat([inter, c], 1))[:, 0]
        grad = torch.autograd.grad(score_i.sum(), inter, create_graph=True)[0]
        gp = ((grad.norm(dim=1) - 1) ** 2).mean()
        aux = ((out_r[:, 1:1 + nc] - c) ** 2).mean()
        loss_c = out_f[:, 0].mean() - out_r[:, 0].mean() + self.config["gp_lambda"] * gp + self.config["aux_weight"] * aux
        self.optimizers_["critic"].zero_grad()
        loss_c.backward()
        self.optimizer_step("critic", net.critic.parameters())
        if step % int(self.config["n_critic"]) == 0:
            fake = self.generate(net, c, None)
            out = net.critic(torch.cat([fake, c], 1))
            loss_g = -out[:, 0].mean() + self.config["aux_weight"] * ((out[:, 1:1 + nc] - c) ** 2).mean()
            if self.surrogate is not None:
                loss_g = loss_g + float(self.config["surrogate_weight"]) * self.surrogate.penalty(fake, x, c)
            loss_g = loss_g + self.penalty(net, x, c, step)
            self.optimizers_["gen"].zero_grad()
            loss_g.backward()
            self.optimizer_step("gen", net.gen.parameters())
        return loss_c.item()

    @torch.no_grad()
    def val_loss(self, net, x, c):
        """Moment mismatch of generated vs validation responses (the critic loss is not a quality measure)."""
        g = torch.Generator(device=c.device)
        g.manual_seed(0)
        fake = self.generate(net, c, g)
        return float((fake.mean(0) - x.mean(0)).abs().mean() + (fake.std(0) - x.std(0)).abs().mean()
                     + (fake.mean(1) - x.mean(1)).abs().mean())
