"""Run by tests/test_distributed.py under torchrun: trains a small fm model data-parallel on a toy task with a
strong conditional structure (so that learning shows in the loss) and writes, per rank, the trained weights;
rank 0 also writes the best validation loss and that of the same network untrained."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from hepfastsim.models import get_family
from hepfastsim.data.samples import Samples, TaskSpec

out = sys.argv[1]
rng = np.random.default_rng(0)
c = rng.uniform(1.0, 10.0, (1500, 1))
x = (c * np.linspace(0.5, 4.0, 8)[None, :] * (1.0 + 0.02 * rng.standard_normal((1500, 8)))).astype(np.float32)
spec = TaskSpec(task="toy", n_features=8, condition_names=("a",), geometry_id="toy", geometry_name="toy",
                scale_column=None, log_conditions=(False,), eps=1.0)
train, val = Samples(x[:1200], c[:1200]), Samples(x[1200:], c[1200:])
model = get_family("fm")(spec, hidden=64, layers=2, batch_size=100, lr=2e-3, patience=100, ema_decay=0.0, epochs=8)
model.fit(train, val)
torch.save({k: v.detach().cpu() for k, v in model.net_.state_dict().items()}, f"{out}/rank{model.rank}.pt")
if model.rank == 0:
    torch.distributed.destroy_process_group()
    xv = torch.from_numpy(model.x_tf_.forward(val.x, model._scale(val.c)))
    cv = torch.from_numpy(model.c_tf_.forward(val.c))
    model.world = 1
    model.setup()  # a fresh, untrained network of the same shape
    torch.manual_seed(0)
    with torch.no_grad():
        untrained = float(model.val_loss(model.net_, xv, cv))
    with open(f"{out}/losses.json", "w") as f:
        json.dump({"best_val": min(model.history_.val_loss), "untrained_val": untrained}, f)
