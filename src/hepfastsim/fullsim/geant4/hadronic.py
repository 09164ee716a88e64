"""A data-free FTFP_BERT: Geant4's own hadronic physics with cross sections that read no data file.

Without the Geant4 data sets the stock FTFP_BERT aborts: its neutron inelastic, elastic and capture cross
sections (G4NeutronInelasticXS, G4NeutronElasticXS, G4NeutronCaptureXS) read G4PARTICLEXS. This list keeps
everything else as FTFP_BERT builds it and replaces only the neutron's cross sections:

* inelastic hadron-nucleus: ``G4HadronPhysicsFTFP_BERT``'s proton, pion, kaon and "others" builders (FTFP above
  3-4 GeV, Bertini cascade below, BGG and Glauber-Gribov cross sections); neutrons through
  ``G4HadronicBuilder::BuildFTFP_BERT({2112}, Bertini, "Glauber-Gribov")`` with ``G4BGGNucleonInelasticXS``;
* elastic: the stock ``G4HadronElasticPhysics`` with the neutron's cross section replaced by
  ``G4BGGNucleonElasticXS`` then ``G4ChipsNeutronElasticXS`` (a BGG set clears the list when it is added);
* decays, stopped negative hadrons and muons (``G4StoppingPhysics``), ions, gamma-/electro-/muon-nuclear
  (``G4EmExtraPhysics`` with the data-free photo-nuclear cross section), the 10 us neutron tracking cut.

Approximations against FTFP_BERT with its data: neutron cross sections below ~20 MeV from formulas
(Barashenkov) instead of evaluated data; no neutron capture (no data-free capture cross section: neutrons end at
the tracking cut); photon evaporation without level data emits continuum gammas only.

Geant4 11.4's ``G4BGGNucleonInelasticXS`` fills its static low-energy (< 14 MeV) factors for protons and
neutrons with the Coulomb factor of the first instance initialised: the neutron's cross section below 14 MeV
comes out 12 b on W and 2.0 b on Fe instead of Barashenkov's 2.44 b and 1.44 b. ``repair_bgg_low_energy``
rescales those factors after the physics tables are built so that each cross section is continuous at 14 MeV
with the Barashenkov value just above, which is how the factors are defined.

Objects are built through exported symbols with ctypes, as for the data-free EM list (``physics.py``).
"""

from __future__ import annotations

import ctypes
from types import ModuleType

from hepfastsim.fullsim.geant4.physics import P, _Builder, _Symbols, data_free_em_constructor

HADRON_INELASTIC, HADRON_ELASTIC = 121, 111  # G4HadronicProcessType
BGG_LOW_ENERGY_MEV = 14.0  # G4BGGNucleonInelasticXS: below this the low-energy factors are used

_FTFP = "_ZN24G4HadronPhysicsFTFP_BERT"
_BGG_INEL = "_ZN23G4BGGNucleonInelasticXS"
_BGG_EL = "_ZN21G4BGGNucleonElasticXS"


def _symbols(g4: ModuleType) -> tuple[_Symbols, _Builder]:
    sym = _Symbols(ctypes.CDLL(g4.__file__))
    return sym, _Builder(sym)


def _find_process(sym: _Symbols, subtype: int, particle: int) -> int:
    table = sym.fn("_ZN14G4ProcessTable15GetProcessTableEv", P)()
    proc = sym.fn("_ZNK14G4ProcessTable11FindProcessEiPK20G4ParticleDefinition", P, P, ctypes.c_int, P)(
        table, subtype, particle)
    if not proc:
        raise RuntimeError(f"Geant4 process of type {subtype} missing for the neutron")
    return proc


def register_data_free_hadronic(g4: ModuleType, keep: list) -> None:
    """Register FTFP_BERT's inelastic hadron physics with data-free neutron cross sections, and replace the
    neutron's elastic cross section of the (already constructed) G4HadronElasticPhysics. keep holds the
    builders' objects for the life of the run."""
    sym, b = _symbols(g4)
    ftfp = b.new(sym.fn(f"{_FTFP}C1Ei", None, P, ctypes.c_int), 0)
    for part in ("Proton", "Pion", "Kaon", "Others"):  # FTFP_BERT's CreateModels() without Neutron()
        sym.fn(f"{_FTFP}{len(part)}{part}Ev", None, P)(ftfp)
    build = sym.fn("_ZN17G4HadronicBuilder14BuildFTFP_BERTERKSt6vectorIiSaIiEEbRK8G4String", None, P, ctypes.c_bool, P)
    build(b.int_vector([2112]), True, b.string("Glauber-Gribov"))

    neutron = sym.fn("_ZN9G4Neutron10DefinitionEv", P)()
    add = sym.fn("_ZN17G4HadronicProcess10AddDataSetEP22G4VCrossSectionDataSet", None, P, P)
    inelastic, elastic = _find_process(sym, HADRON_INELASTIC, neutron), _find_process(sym, HADRON_ELASTIC, neutron)
    add(inelastic, b.new(sym.fn(f"{_BGG_INEL}C1EPK20G4ParticleDefinition", None, P, P), neutron))
    add(elastic, b.new(sym.fn(f"{_BGG_EL}C1EPK20G4ParticleDefinition", None, P, P), neutron))
    add(elastic, b.new(sym.fn("_ZN23G4ChipsNeutronElasticXSC1Ev", None, P)))
    keep.append(b)


def cross_section_per_atom(g4: ModuleType, particle: str, kind: str, energy_mev: float, element: str,
                           material: str) -> float:
    """Geant4's hadronic cross section (barn) of particle ('neutron', 'proton', 'pi+', ...) on one element of a
    (built) material at a kinetic energy, kind 'inelastic' or 'elastic': what the transport uses."""
    sym, b = _symbols(g4)
    definition = sym.fn("_ZN15G4ParticleTable16GetParticleTableEv", P)()
    find = sym.fn("_ZN15G4ParticleTable12FindParticleERK8G4String", P, P, P)
    part = find(definition, b.string(particle))
    store = sym.fn("_ZN22G4HadronicProcessStore8InstanceEv", P)()
    name = "Inelastic" if kind == "inelastic" else "Elastic"
    xs = sym.fn(f"_ZN22G4HadronicProcessStore{22 + len(name)}Get{name}CrossSectionPerAtomEPK20G4ParticleDefinitiondPK9G4ElementPK10G4Material",
                ctypes.c_double, P, P, ctypes.c_double, P, P)
    elm = sym.fn("_ZN9G4Element10GetElementERK8G4Stringb", P, P, ctypes.c_bool)(b.string(element), False)
    mat = sym.fn("_ZN10G4Material11GetMaterialERK8G4Stringb", P, P, ctypes.c_bool)(b.string(material), False)
    if not (part and elm and mat):
        raise ValueError(f"unknown particle, element or material: {particle}, {element}, {material}")
    return xs(store, part, energy_mev, elm, mat) / 1e-22  # Geant4 internal units: mm^2; 1 barn = 1e-22 mm^2


def repair_bgg_low_energy(g4: ModuleType, materials: dict[str, list[str]]) -> dict[str, float]:
    """Make the BGG nucleon inelastic cross sections continuous at 14 MeV (see the module docstring) for every
    element of the given {material: [element, ...]}; call after the physics tables are built (BeamOn(0)).
    Returns the factor applied per 'particle:element' (1 where nothing was wrong)."""
    lib = ctypes.CDLL(g4.__file__)
    fac = {"proton": (ctypes.c_double * 93).in_dll(lib, f"{_BGG_INEL}14theCoulombFacPE"),
           "neutron": (ctypes.c_double * 93).in_dll(lib, f"{_BGG_INEL}14theCoulombFacNE")}
    z_of = {el.GetName(): int(round(el.GetZ())) for el in g4.G4Element.GetElementTable()}
    applied: dict[str, float] = {}
    for material, elements in materials.items():
        for element in elements:
            z = z_of[element]
            if z < 2:
                continue
            for particle, table in fac.items():
                below = cross_section_per_atom(g4, particle, "inelastic", BGG_LOW_ENERGY_MEV, element, material)
                above = cross_section_per_atom(g4, particle, "inelastic", BGG_LOW_ENERGY_MEV * (1 + 1e-9), element,
                                               material)
                key = f"{particle}:{element}"
                if key not in applied and below > 0:
                    applied[key] = above / below
                    table[z] *= applied[key]
    return applied


def data_free_ftfp_bert(g4: ModuleType, neutron_time_limit_ns: float | None = None):
    """A modular physics list: data-free EM (with charged hadrons) + the data-free FTFP_BERT hadronics. Neutrons
    are killed after 10 us (Geant4's G4NeutronTrackingCut) or after neutron_time_limit_ns (the detector's hit
    time cut: a later neutron makes no hit that counts)."""

    class DataFreeHadronInelastic(g4.G4VPhysicsConstructor):
        def __init__(self):
            super().__init__("hepfastsim-data-free-hadron-inelastic")
            self.keep: list = []

        def ConstructParticle(self):
            pass  # G4DecayPhysics constructs every particle

        def ConstructProcess(self):
            register_data_free_hadronic(g4, self.keep)

    class DataFreeFTFPBERT(g4.G4VModularPhysicsList):
        def __init__(self):
            super().__init__()
            self.SetVerboseLevel(0)
            self.neutron_cut = g4.G4NeutronTrackingCut(0)
            if neutron_time_limit_ns is not None:
                self.neutron_cut.SetTimeLimit(neutron_time_limit_ns)  # Geant4 time unit: ns
            self.parts = [g4.G4DecayPhysics(), data_free_em_constructor(g4, charged=True), g4.G4EmExtraPhysics(),
                          g4.G4HadronElasticPhysics(), DataFreeHadronInelastic(), g4.G4StoppingPhysics(),
                          g4.G4IonPhysics(), self.neutron_cut]
            for part in self.parts:  # order matters: the elastic processes exist before their neutron XS is replaced
                self.RegisterPhysics(part)

    return DataFreeFTFPBERT()
