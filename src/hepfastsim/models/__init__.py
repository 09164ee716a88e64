"""Conditional generators behind one interface (fit / sample / save / load).

Families: library (shower library baseline), vae, gan (WGAN-GP), flow (two-stage
normalizing flow on zuko), fm (conditional flow matching). ``get_family(name)`` returns
the class; ``load_generator(path)`` any checkpoint.
"""

from hepfastsim.models.base import Generator, Samples, TaskSpec, get_family, load_generator, FAMILIES

__all__ = ["Generator", "Samples", "TaskSpec", "get_family", "load_generator", "FAMILIES"]
