"""Mixing fast and full simulation by a YAML policy."""

from hepfastsim.routing.policy import Policy, run_policy

__all__ = ["Policy", "run_policy"]
