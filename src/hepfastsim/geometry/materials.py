"""Materials table: elemental composition, density, mean excitation energy.

Derived quantities (radiation length X0 after Tsai, critical energy after the PDG
fits to Rossi's definition, Moliere radius) are computed, not typed in, so that a new
material needs only its composition. Lengths in mm, energies in MeV.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hepfastsim.errors import HepFastSimError

ALPHA = 1.0 / 137.035999
R_E_CM = 2.8179403262e-13
N_A = 6.02214076e23
E_S = 21.2052  # MeV, scale energy of the Moliere radius

# Z, A (g/mol)
ELEMENTS = {
    "H": (1, 1.008), "C": (6, 12.011), "O": (8, 15.999), "Si": (14, 28.0855), "Ar": (18, 39.948),
    "Fe": (26, 55.845), "Cu": (29, 63.546), "W": (74, 183.84), "Pb": (82, 207.2),
}


def coulomb_correction(z: float) -> float:
    """Davies-Bethe-Maximon Coulomb correction f(Z) (PDG Eq. 34.27)."""
    a2 = (ALPHA * z) ** 2
    return a2 * (1.0 / (1.0 + a2) + 0.20206 - 0.0369 * a2 + 0.0083 * a2**2 - 0.002 * a2**3)


# Tsai's (L_rad, L'_rad) of Z = 1..4 (PDG Table 34.2); above, the Thomas-Fermi formulae of l_rad
L_RAD_LIGHT = ((5.31, 6.144), (4.79, 5.621), (4.74, 5.805), (4.71, 5.924))


def l_rad(z: float) -> tuple[float, float]:
    """Tsai's L_rad and L'_rad (PDG Table 34.2; Thomas-Fermi formulae above Z=4)."""
    if z <= len(L_RAD_LIGHT):
        return L_RAD_LIGHT[int(z) - 1]
    return float(np.log(184.15 * z ** (-1 / 3))), float(np.log(1194.0 * z ** (-2 / 3)))


@dataclass(frozen=True)
class Material:
    """A homogeneous material: composition as {element: atoms per molecule}, density g/cm3, I in eV."""

    name: str
    composition: dict[str, float]
    density: float
    mean_excitation_eV: float
    gas: bool = False
    # Sternheimer-Berger-Seltzer (1984) density-effect parameters (C-bar, x0, x1, a, m, delta0) where tabulated;
    # without them the general Sternheimer-Peierls formulae are used
    sternheimer: tuple[float, float, float, float, float, float] | None = None

    @cached_property
    def elements(self) -> list[tuple[int, float, float]]:
        """[(Z, A, atoms per cm3)] for each element."""
        molar_mass = sum(ELEMENTS[e][1] * n for e, n in self.composition.items())
        molecules = self.density * N_A / molar_mass
        return [(ELEMENTS[e][0], ELEMENTS[e][1], molecules * n) for e, n in self.composition.items()]

    @cached_property
    def electron_density(self) -> float:
        """Electrons per cm3."""
        return sum(z * n for z, _, n in self.elements)

    @cached_property
    def x0_mm(self) -> float:
        """Radiation length in mm (Tsai, PDG Eq. 34.26)."""
        inv = 0.0
        for z, _, n in self.elements:
            lr, lp = l_rad(z)
            inv += 4 * ALPHA * R_E_CM**2 * n * (z * z * (lr - coulomb_correction(z)) + z * lp)
        return 10.0 / inv

    @cached_property
    def z_eff(self) -> float:
        """Electron-weighted mean Z (for the critical-energy fit)."""
        return sum(z * z * n for z, _, n in self.elements) / self.electron_density

    @cached_property
    def critical_energy(self) -> float:
        """Critical energy in MeV, PDG fits: 610/(Z+1.24) solids and liquids, 710/(Z+0.92) gases."""
        return 710.0 / (self.z_eff + 0.92) if self.gas else 610.0 / (self.z_eff + 1.24)

    @cached_property
    def moliere_radius_mm(self) -> float:
        return self.x0_mm * E_S / self.critical_energy

    @cached_property
    def sampling_element(self) -> tuple[int, float]:
        """(Z, atoms/cm3) of the element that dominates radiative processes (sets the screening in sampling)."""
        z, _, n = max(self.elements, key=lambda e: e[0] * (e[0] + 1) * e[2])
        return z, n


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in [
        Material("W", {"W": 1}, 19.30, 727.0, sternheimer=(5.4059, 0.2167, 3.4960, 0.15509, 2.8447, 0.14)),
        Material("Pb", {"Pb": 1}, 11.35, 823.0, sternheimer=(6.2018, 0.3776, 3.8073, 0.09359, 3.1608, 0.14)),
        Material("Fe", {"Fe": 1}, 7.874, 286.0, sternheimer=(4.2911, -0.0012, 3.1531, 0.14680, 2.9632, 0.12)),
        Material("Cu", {"Cu": 1}, 8.96, 322.0, sternheimer=(4.4190, -0.0254, 3.2792, 0.14339, 2.9044, 0.08)),
        Material("Si", {"Si": 1}, 2.329, 173.0, sternheimer=(4.4355, 0.2014, 2.8715, 0.14921, 3.2546, 0.14)),
        Material("PbWO4", {"Pb": 1, "W": 1, "O": 4}, 8.28, 600.7),
        Material("LAr", {"Ar": 1}, 1.396, 188.0),
        Material("Scintillator", {"C": 8, "H": 8}, 1.060, 68.7),
    ]
}


def get_material(name: str) -> Material:
    if name not in MATERIALS:
        raise HepFastSimError(f"unknown material {name!r}; known: {sorted(MATERIALS)}")
    return MATERIALS[name]
