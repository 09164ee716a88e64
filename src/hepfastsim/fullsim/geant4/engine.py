"""The Geant4 engine: the same detectors, binnings, energy convention and files as the built-in simulation.

One Geant4 per process (Geant4's run manager is a process-wide singleton, serial mode); parallel runs go through
the Dask shards like the built-in engine, one Geant4 per worker process. The stack is built as slabs of NIST
materials, 2 m x 2 m transversely; the energy deposited in each sensitive slab is scored step by step (middle of
the step) and binned into the readout voxels around the incident axis by the built-in engine's own scorer.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from hepfastsim.errors import HepFastSimError
from hepfastsim.fullsim.simulate import Engine
from hepfastsim.fullsim.transport import N_RADIAL_DIAG, deposit_hits
from hepfastsim.geometry.binning import Binning
from hepfastsim.geometry.detector import Detector

NIST = {"W": "G4_W", "Pb": "G4_Pb", "Fe": "G4_Fe", "Cu": "G4_Cu", "Si": "G4_Si", "PbWO4": "G4_PbWO4",
        "LAr": "G4_lAr", "Scintillator": "G4_PLASTIC_SC_VINYLTOLUENE"}
GUN_NAMES = {11: "e-", -11: "e+", 22: "gamma", 211: "pi+", -211: "pi-", 2212: "proton", 2112: "neutron",
             321: "kaon+", -321: "kaon-", 13: "mu-", -13: "mu+"}
EM_PARTICLES = (11, -11, 22)
PRODUCTION_CUT_MM = 0.7  # Geant4's default range cut
HALF_WIDTH_MM = 1000.0

_SESSION: dict = {}  # the process's one Geant4: run manager, user classes, detector key, physics


@contextmanager
def _quiet(enabled: bool = True) -> Iterator[None]:
    """Silence what Geant4 prints to standard output (banner, physics tables) at the file-descriptor level."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


class _Hits:
    """Per-event buffer of scored steps: deposit (MeV), x, y, z (mm, z from the front face), sensitive index."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.e: list[float] = []
        self.x: list[float] = []
        self.y: list[float] = []
        self.z: list[float] = []
        self.k: list[int] = []


def birks_visible(deposit: float, non_ionising: float, length_mm: float, charge: float, kb_mm_per_mev: float) -> float:
    """Visible energy (MeV) of one step in an organic scintillator by Birks' law: the ionising deposit
    / (1 + kB dE/dx), dE/dx = ionising deposit / step length, for charged steps of non-zero length; the non-ionising
    part (nuclear recoils) counts as fully quenched. Neutral or zero-length steps (local deposits) are kept."""
    if length_mm <= 0.0 or charge == 0.0:
        return deposit
    ionising = deposit - non_ionising
    return ionising / (1.0 + kb_mm_per_mev * ionising / length_mm)


def _build_user_classes(g4, detector: Detector, hits: _Hits, events: dict):
    """Detector construction, sensitive detector and primary generator as Python subclasses of Geant4's."""
    depth = detector.depth_mm
    z0 = -0.5 * depth  # the front face in world coordinates

    birks = [detector.birks_mm_per_mev if l.material == "Scintillator" else 0.0 for l in detector.sensitive_layers]
    time_cut = detector.time_cut_ns

    class ActiveHits(g4.G4VSensitiveDetector):
        def ProcessHits(self, step, history):
            e = step.GetTotalEnergyDeposit()
            if e > 0.0:
                a = step.GetPreStepPoint()
                if time_cut is not None and a.GetGlobalTime() > time_cut:  # ns
                    return True
                k = a.GetTouchable().GetCopyNumber()
                if birks[k] > 0.0:
                    e = birks_visible(e, step.GetNonIonizingEnergyDeposit(), step.GetStepLength(),
                                      step.GetTrack().GetDefinition().GetPDGCharge(), birks[k])
                pa, pb = a.GetPosition(), step.GetPostStepPoint().GetPosition()
                hits.e.append(e)
                hits.x.append(0.5 * (pa.x + pb.x))
                hits.y.append(0.5 * (pa.y + pb.y))
                hits.z.append(0.5 * (pa.z + pb.z) - z0)
                hits.k.append(k)
            return True

    class Stack(g4.G4VUserDetectorConstruction):
        def Construct(self):
            nist = g4.G4NistManager.Instance()
            self.keep = []
            world_box = g4.G4Box("world", HALF_WIDTH_MM + 10, HALF_WIDTH_MM + 10, 0.5 * depth + 10)
            world = g4.G4LogicalVolume(world_box, nist.FindOrBuildMaterial("G4_Galactic"), "world")
            self.world = g4.G4PVPlacement(None, g4.G4ThreeVector(), world, "world", None, False, 0)
            self.sensitive = {}
            logical = {}
            z, k = z0, 0
            for i, layer in enumerate(detector.layers):
                key = (layer.material, layer.thickness_mm, layer.sensitive)
                if key not in logical:
                    box = g4.G4Box(f"b{i}", HALF_WIDTH_MM, HALF_WIDTH_MM, 0.5 * layer.thickness_mm)
                    logical[key] = g4.G4LogicalVolume(box, nist.FindOrBuildMaterial(NIST[layer.material]), f"l{i}")
                    self.keep.append(box)
                copy = k if layer.sensitive else i
                self.keep.append(g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, z + 0.5 * layer.thickness_mm),
                                                  logical[key], f"p{i}", world, False, copy))
                if layer.sensitive:
                    self.sensitive[key] = logical[key]
                    k += 1
                z += layer.thickness_mm
            self.keep += [world_box, world, *logical.values()]
            return self.world

        def ConstructSDandField(self):
            self.sd = ActiveHits("hepfastsim_active")
            g4.G4SDManager.GetSDMpointer().AddNewDetector(self.sd)
            for lv in self.sensitive.values():
                lv.SetSensitiveDetector(self.sd)

    class Gun(g4.G4VUserPrimaryGeneratorAction):
        def __init__(self):
            super().__init__()
            self.gun = g4.G4ParticleGun(1)

        def GeneratePrimaries(self, event):
            i = event.GetEventID()
            events["current"] = i
            g4.HepRandom.setTheSeed(int(events["seeds"][i]))
            th, ph = events["theta"][i], events["phi"][i]
            self.gun.SetParticleDefinition(g4.G4ParticleTable.GetParticleTable().FindParticle(events["name"]))
            self.gun.SetParticleEnergy(float(events["energies"][i]))
            x, y = events["entry_xy"]
            self.gun.SetParticlePosition(g4.G4ThreeVector(x, y, z0 - 1e-3))
            self.gun.SetParticleMomentumDirection(g4.G4ThreeVector(np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph),
                                                                   np.cos(th)))
            self.gun.GeneratePrimaryVertex(event)

    class EndOfEvent(g4.G4UserEventAction):
        def EndOfEventAction(self, event):
            events["score"](event.GetEventID())

    class PrimaryEnd(g4.G4UserTrackingAction):
        """The process that ended the primary, and the depth (mm from the front face) where it interacted
        inelastically."""

        def PostUserTrackingAction(self, track):
            if track.GetTrackID() == 1:
                proc = track.GetStep().GetPostStepPoint().GetProcessDefinedStep()
                name = proc.GetProcessName() if proc is not None else ""
                events["end_process"][events["current"]] = name
                if name.endswith("Inelastic"):
                    events["first_interaction"][events["current"]] = track.GetPosition().z - z0

    return Stack(), Gun(), EndOfEvent(), PrimaryEnd()


PHYSICS = ("auto", "FTFP_BERT", "data-free-FTFP_BERT", "data-free-em")


def _physics_list(g4, physics: str, detector: Detector):
    """FTFP_BERT (needs the data sets), the data-free FTFP_BERT (hadronic.py) or a modular list holding only the
    data-free EM constructor."""
    if physics == "FTFP_BERT":
        return g4.FTFP_BERT(0)
    if physics == "data-free-FTFP_BERT":
        from hepfastsim.fullsim.geant4.hadronic import data_free_ftfp_bert

        return data_free_ftfp_bert(g4, detector.time_cut_ns)
    from hepfastsim.fullsim.geant4.physics import data_free_em_constructor

    class DataFreeList(g4.G4VModularPhysicsList):
        def __init__(self):
            super().__init__()
            self.SetVerboseLevel(0)
            self.em = data_free_em_constructor(g4)
            self.RegisterPhysics(self.em)

    return DataFreeList()


class Geant4Sim(Engine):
    """Geant4 on a planar stack with a CaloChallenge readout (``simulate --engine geant4``).

    physics: 'auto' (FTFP_BERT when the data sets are installed, else the data-free FTFP_BERT), 'FTFP_BERT',
    'data-free-FTFP_BERT' (every particle, no data sets) or 'data-free-em' (e-, e+, gamma only; starts faster).
    Energies MeV, lengths mm; production_cut_mm: the range cut of every particle in every material (Geant4's default
    0.7 mm), converted by Geant4 into an energy per material (``energy_cuts``)."""

    name = "geant4"

    def __init__(self, detector: Detector | None = None, binning: Binning | str | Path = "demo", physics: str = "auto",
                 quiet: bool = True, production_cut_mm: float = PRODUCTION_CUT_MM):
        super().__init__(detector, binning)
        if not (np.isfinite(production_cut_mm) and production_cut_mm > 0):
            raise HepFastSimError(f"the production cut must be a positive length in mm, got {production_cut_mm}")
        self.production_cut_mm = float(production_cut_mm)
        from hepfastsim.fullsim.geant4.setup import have_datasets, import_geant4

        if physics not in PHYSICS:
            raise HepFastSimError(f"unknown Geant4 physics {physics!r}: {', '.join(PHYSICS)}")
        if physics == "FTFP_BERT" and not have_datasets():
            raise HepFastSimError("FTFP_BERT needs the Geant4 data sets (set GEANT4_DATA_DIR); use --physics "
                                  "data-free-FTFP_BERT")
        if physics == "auto":
            physics = "FTFP_BERT" if have_datasets() else "data-free-FTFP_BERT"
        self.physics = physics
        self.particles = dict.fromkeys(EM_PARTICLES if physics == "data-free-em" else GUN_NAMES)
        self.quiet = quiet
        unknown = {l.material for l in self.detector.layers} - set(NIST)
        if unknown:
            raise HepFastSimError(f"no Geant4 (NIST) material for {sorted(unknown)}; known: {sorted(NIST)}")
        self.g4 = import_geant4()
        self._start()

    def _start(self) -> None:
        key = (self.detector, self.physics, self.production_cut_mm)
        if _SESSION:
            if _SESSION["key"] != key:
                raise HepFastSimError("one Geant4 geometry, physics list and production cut per process: start another "
                                      "process (e.g. --shards) for another detector")
            self.bgg_repair = _SESSION["bgg_repair"]
            return
        g4 = self.g4
        hits, events = _Hits(), {}
        with _quiet(self.quiet):
            rm = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
            physics = _physics_list(g4, self.physics, self.detector)
            rm.SetUserInitialization(physics)  # Geant4 wants the physics list before any user action exists
            stack, gun, end, primary = _build_user_classes(g4, self.detector, hits, events)
            rm.SetUserInitialization(stack)
            for action in (gun, end, primary):
                rm.SetUserAction(action)
            ui = g4.G4UImanager.GetUIpointer()
            for cmd in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0",
                        "/process/em/verbose 0", "/process/had/verbose 0", f"/run/setCut {self.production_cut_mm} mm"):
                ui.ApplyCommand(cmd)
            g4.G4EmParameters.Instance().SetVerbose(0)
            if self.physics == "data-free-FTFP_BERT":
                ui.ApplyCommand("/physics_lists/em/UseGammaNuclearXS false")  # G4GammaNuclearXS reads data
            rm.Initialize()
            self.bgg_repair: dict[str, float] = {}  # factor applied per 'particle:element' (data-free list)
            if self.physics == "data-free-FTFP_BERT":
                from hepfastsim.fullsim.geant4.hadronic import repair_bgg_low_energy

                rm.BeamOn(0)  # builds the physics tables, so that the BGG factors exist
                materials = {NIST[m]: [e.GetName() for e in g4.G4Material.GetMaterial(NIST[m]).GetElementVector()]
                             for m in {l.material for l in self.detector.layers}}
                self.bgg_repair = repair_bgg_low_energy(g4, materials)
        _SESSION.update(key=key, rm=rm, user=(stack, gun, end, primary, physics), hits=hits, events=events,
                        bgg_repair=self.bgg_repair)

    def attrs(self) -> dict:
        return super().attrs() | {"physics": self.physics, "geant4_version": self.g4.G4Version.strip("$ ").replace("Name: ", ""),
                                  "production_cut_mm": self.production_cut_mm}

    def energy_cuts(self) -> dict[str, tuple[float, float]]:
        """{material: (e- cut, gamma cut)} in MeV: Geant4's conversion of the range cut in each layer material (the
        built-in engine's default ``Cuts`` apply the same conversion from a shipped table)."""
        g4 = self.g4
        with _quiet(self.quiet):
            _SESSION["rm"].BeamOn(0)   # the conversion needs the physics tables (built by the first run)
        calc = g4.G4EmCalculator()
        out = {}
        for m in sorted({l.material for l in self.detector.layers}):
            mat = g4.G4Material.GetMaterial(NIST[m])
            out[m] = tuple(float(calc.ComputeEnergyCutFromRangeCut(self.production_cut_mm, p, mat))
                           for p in (g4.G4Electron.Electron(), g4.G4Gamma.Gamma()))
        return out

    def _simulate(self, energies, pdg, theta, phi, entry_xy, seed):
        n = len(energies)
        b = self.binning
        r_edges, n_r, n_a, offs, r_max = b.flat_tables()
        out_vox = np.zeros((n, b.n_voxels))
        si_layer = np.zeros((n, self.detector.n_sensitive))
        radial = np.zeros((n, N_RADIAL_DIAG))
        totals = np.full((n, 5), np.nan)  # only the sensitive energy is scored (absorbers unscored: cheaper)
        totals[:, 4] = 0.0
        hits: _Hits = _SESSION["hits"]
        ro_map = self.ro_map
        x0, y0 = entry_xy

        def score(i: int) -> None:
            tx, ty = np.tan(theta[i]) * np.cos(phi[i]), np.tan(theta[i]) * np.sin(phi[i])
            totals[i, 3] = deposit_hits(np.asarray(hits.e), np.asarray(hits.x), np.asarray(hits.y), np.asarray(hits.z),
                                        np.asarray(hits.k, dtype=np.int64), ro_map, x0, y0, tx, ty,
                                        r_edges, n_r, n_a, offs, r_max, out_vox[i], si_layer[i], radial[i])
            hits.clear()

        seeds = (np.uint64(seed) * np.uint64(1_000_003) + np.arange(n, dtype=np.uint64)) % np.uint64(2**31 - 2) + 1  # CLHEP: > 0
        self.first_interaction_mm = np.full(n, np.nan)  # NaN: the primary left or stopped without interacting
        self.primary_end_process = [""] * n  # e.g. 'pi+Inelastic', 'hBertiniCaptureAtRest', 'Transportation'
        _SESSION["events"].update(seeds=seeds, theta=theta, phi=phi, energies=energies, name=GUN_NAMES[pdg],
                                  entry_xy=entry_xy, score=score, first_interaction=self.first_interaction_mm,
                                  end_process=self.primary_end_process)
        hits.clear()
        with _quiet(self.quiet):
            _SESSION["rm"].BeamOn(n)
        return out_vox, si_layer, radial, totals
