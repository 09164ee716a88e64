"""Conditional generators behind one interface (fit / sample / save / load).

Families: library (shower library baseline), binned (binned resampling, the PID baseline), vae,
gan (WGAN-GP), flow (two-stage normalizing flow on zuko), fm (conditional flow matching), layer_fm (layer-wise
flow matching for CaloChallenge-size readouts: energy model + one shape model shared by the layers), ensemble;
shipped pretrained models by name (models/pretrained: ``ds2``, ``demo``).
``get_family(name)`` returns the class; ``load_generator(path)`` any checkpoint; their options are in
``models/options.py``; training is ``hepfastsim.train``.
"""

from hepfastsim.models.base import Generator, Samples, TaskSpec, get_family, load_generator, FAMILIES

__all__ = ["Generator", "Samples", "TaskSpec", "get_family", "load_generator", "FAMILIES"]
