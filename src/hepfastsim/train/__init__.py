"""The training engine: one loop (``Trainer``) and the small pieces it is made of, each usable and tested alone."""

from hepfastsim.train.engine import History, Trainer

__all__ = ["History", "Trainer"]
