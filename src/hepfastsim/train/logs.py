"""Per-epoch loss logs: a CSV file and TensorBoard event files."""

from __future__ import annotations

import csv
from pathlib import Path

from hepfastsim.errors import HepFastSimError


class CsvLog:
    """epoch, train_loss, val_loss, seconds per row; ``append`` continues an existing file (resumed training)."""

    def __init__(self, path: str | Path, append: bool = False):
        new = not append or not Path(path).exists()
        self.file = open(path, "w" if new else "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(["epoch", "train_loss", "val_loss", "seconds"])

    def write(self, epoch: int, train_loss: float, val_loss: float, seconds: float) -> None:
        self.writer.writerow([epoch, train_loss, val_loss, seconds])
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TensorBoardLog:
    """loss/train and loss/val per epoch in TensorBoard event files (the optional tensorboard package)."""

    def __init__(self, folder: str | Path):
        self.board = tensorboard_writer(folder)

    def write(self, epoch: int, train_loss: float, val_loss: float, seconds: float) -> None:
        self.board.add_scalar("loss/train", train_loss, epoch)
        self.board.add_scalar("loss/val", val_loss, epoch)
        self.board.flush()

    def close(self) -> None:
        self.board.close()


def tensorboard_writer(folder: str | Path):
    """A TensorBoard SummaryWriter on folder; the optional ``tensorboard`` package is needed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise HepFastSimError("TensorBoard logging needs the tensorboard package: pip install 'hepfastsim[tensorboard]'") from None
    return SummaryWriter(log_dir=str(folder))
