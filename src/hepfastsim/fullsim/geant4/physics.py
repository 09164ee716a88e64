"""A data-free electromagnetic physics list made of Geant4's own models.

geant4_pybind binds Geant4's physics constructors but none of the process and model classes. The ones needed
here are exported symbols of the extension module, so they are constructed and registered through ``ctypes``
(no compiler, no headers): objects are allocated with malloc (Geant4 owns and deletes them), ``G4String``
arguments are built as std::string objects with their characters in the small-string buffer.

The list, for e-, e+ and gamma (everything reads no data file):

* photo-effect ``G4PEEffectFluoModel`` (Sandia parametrisation), Compton ``G4KleinNishinaCompton``,
  conversion ``G4PairProductionRelModel`` at all energies (two instances: below and above 80 GeV);
* e+-: ``G4eMultipleScattering`` with ``G4UrbanMscModel`` at all energies, ionisation ``G4eIonisation``
  (Moller/Bhabha, Urban fluctuations), bremsstrahlung ``G4eBremsstrahlungRelModel`` at all energies (two
  instances: below and above 1 GeV), e+ annihilation ``G4eplusAnnihilation`` (``G4eeToTwoGammaModel``).

Compared with G4EmStandardPhysics (option 0) this lacks Seltzer-Berger bremsstrahlung below 1 GeV (the
relativistic model is used down to the cut), the Livermore photo-effect (Sandia parametrisation instead),
Rayleigh scattering, WentzelVI + single Coulomb scattering above 100 MeV (Urban instead) and fluorescence.
"""

from __future__ import annotations

import ctypes
from types import ModuleType

P = ctypes.c_void_p
OBJECT_BYTES = 8192  # above sizeof of every process and model used here (G4VEnergyLossProcess ~1 kB)
F_ELECTROMAGNETIC = 2  # G4ProcessType::fElectromagnetic

_SYMBOLS = {
    "gamma": "_ZN7G4Gamma10DefinitionEv",
    "electron": "_ZN10G4Electron10DefinitionEv",
    "positron": "_ZN10G4Positron10DefinitionEv",
    "helper": "_ZN19G4PhysicsListHelper20GetPhysicsListHelperEv",
    "register": "_ZN19G4PhysicsListHelper15RegisterProcessEP10G4VProcessP20G4ParticleDefinition",
    "em_set": "_ZN12G4VEmProcess10SetEmModelEP10G4VEmModeli",
    "eloss_set": "_ZN20G4VEnergyLossProcess10SetEmModelEP10G4VEmModeli",
    "msc_set": "_ZN21G4VMultipleScattering10SetEmModelEP11G4VMscModeli",
    "phot": "_ZN21G4PhotoElectricEffectC1ERK8G4String13G4ProcessType",
    "compt": "_ZN19G4ComptonScatteringC1ERK8G4String13G4ProcessType",
    "conv": "_ZN17G4GammaConversionC1ERK8G4String13G4ProcessType",
    "msc": "_ZN21G4eMultipleScatteringC1ERK8G4String",
    "eIoni": "_ZN13G4eIonisationC1ERK8G4String",
    "eBrem": "_ZN17G4eBremsstrahlungC1ERK8G4String",
    "annihil": "_ZN19G4eplusAnnihilationC1ERK8G4String",
    "PEEffectFluo": "_ZN19G4PEEffectFluoModelC1ERK8G4String",
    "KleinNishina": "_ZN21G4KleinNishinaComptonC1EPK20G4ParticleDefinitionRK8G4String",
    "PairRel": "_ZN24G4PairProductionRelModelC1EPK20G4ParticleDefinitionRK8G4String",
    "UrbanMsc": "_ZN15G4UrbanMscModelC1ERK8G4String",
    "eBremRel": "_ZN25G4eBremsstrahlungRelModelC1EPK20G4ParticleDefinitionRK8G4String",
}


class _Symbols:
    """Typed ctypes handles on the extension module's exported functions."""

    def __init__(self, lib: ctypes.CDLL):
        def f(key: str, restype, *args):
            fn = getattr(lib, _SYMBOLS[key])
            fn.restype, fn.argtypes = restype, list(args)
            return fn

        self.definition = {k: f(k, P) for k in ("gamma", "electron", "positron")}
        self.helper = f("helper", P)
        self.register = f("register", ctypes.c_bool, P, P, P)
        self.em_set = f("em_set", None, P, P, ctypes.c_int)
        self.eloss_set = f("eloss_set", None, P, P, ctypes.c_int)
        self.msc_set = f("msc_set", None, P, P, ctypes.c_int)
        self.typed_process = {k: f(k, None, P, P, ctypes.c_int) for k in ("phot", "compt", "conv")}
        self.process = {k: f(k, None, P, P) for k in ("msc", "eIoni", "eBrem", "annihil")}
        self.named_model = {k: f(k, None, P, P) for k in ("PEEffectFluo", "UrbanMsc")}
        self.particle_model = {k: f(k, None, P, P, P) for k in ("KleinNishina", "PairRel", "eBremRel")}
        libc = ctypes.CDLL(None)
        self.malloc = libc.malloc
        self.malloc.restype, self.malloc.argtypes = P, [ctypes.c_size_t]
        self.lib = lib

    def fn(self, symbol: str, restype, *args):
        """Any other exported function by its mangled name, typed."""
        fn = getattr(self.lib, symbol)
        fn.restype, fn.argtypes = restype, list(args)
        return fn


class _Builder:
    """Allocates and constructs Geant4 objects through the symbols; keeps the G4String buffers alive."""

    def __init__(self, sym: _Symbols):
        self.sym = sym
        self._strings: list = []

    def string(self, text: str) -> int:
        """Address of a std::string (libstdc++ ABI: pointer, size, 16-byte local buffer or capacity) holding text.
        Names of up to 15 characters sit in the local buffer, longer ones in a buffer kept alive here (Geant4
        only reads these arguments and copies them)."""
        raw = text.encode()
        mem = ctypes.create_string_buffer(32)
        self._strings.append(mem)
        addr = ctypes.addressof(mem)
        if len(raw) <= 15:
            ctypes.memmove(addr + 16, raw, len(raw))
            ctypes.c_void_p.from_address(addr).value = addr + 16
        else:
            chars = ctypes.create_string_buffer(raw, len(raw) + 1)
            self._strings.append(chars)
            ctypes.c_void_p.from_address(addr).value = ctypes.addressof(chars)
            ctypes.c_size_t.from_address(addr + 16).value = len(raw)
        ctypes.c_size_t.from_address(addr + 8).value = len(raw)
        return addr

    def int_vector(self, values: list[int]) -> int:
        """Address of a std::vector<int> (begin, end, end of storage) over values, kept alive here."""
        arr = (ctypes.c_int * len(values))(*values)
        begin = ctypes.addressof(arr)
        vec = (ctypes.c_void_p * 3)(begin, begin + 4 * len(values), begin + 4 * len(values))
        self._strings += [arr, vec]
        return ctypes.addressof(vec)

    def new(self, ctor, *args) -> int:
        obj = self.sym.malloc(OBJECT_BYTES)
        ctypes.memset(obj, 0, OBJECT_BYTES)
        ctor(obj, *args)
        return obj

    def process(self, kind: str, name: str) -> int:
        if kind in self.sym.typed_process:
            return self.new(self.sym.typed_process[kind], self.string(name), F_ELECTROMAGNETIC)
        return self.new(self.sym.process[kind], self.string(name))

    def model(self, kind: str, name: str) -> int:
        if kind in self.sym.named_model:
            return self.new(self.sym.named_model[kind], self.string(name))
        return self.new(self.sym.particle_model[kind], None, self.string(name))


def register_data_free_em(g4: ModuleType, charged: bool = False) -> None:
    """Register the data-free EM processes for gamma, e-, e+ (call from a physics constructor's
    ConstructProcess, after the particles exist); with charged, also those of muons, charged hadrons and ions
    as G4EmStandardPhysics builds them (G4hMultipleScattering 'ionmsc' + G4ionIonisation for GenericIon,
    then G4EmBuilder::ConstructCharged: msc, ionisation, bremsstrahlung and pair production, WentzelVI msc)."""
    sym = _Symbols(ctypes.CDLL(g4.__file__))
    b = _Builder(sym)
    gamma, electron, positron = (sym.definition[k]() for k in ("gamma", "electron", "positron"))
    helper = sym.helper()

    phot = b.process("phot", "phot")
    sym.em_set(phot, b.model("PEEffectFluo", "PhotoElectric"), 0)
    compt = b.process("compt", "compt")
    sym.em_set(compt, b.model("KleinNishina", "Klein-Nishina"), 0)
    conv = b.process("conv", "conv")
    for index in (0, 1):  # G4GammaConversion puts model 0 below 80 GeV, model 1 above
        sym.em_set(conv, b.model("PairRel", "BetheHeitlerLPM"), index)
    for proc in (phot, compt, conv):
        sym.register(helper, proc, gamma)

    for particle in (electron, positron):
        msc = b.process("msc", "msc")
        sym.msc_set(msc, b.model("UrbanMsc", "UrbanMsc"), 0)
        brem = b.process("eBrem", "eBrem")
        for index in (0, 1):  # G4eBremsstrahlung puts model 0 below 1 GeV (Seltzer-Berger by default), 1 above
            sym.eloss_set(brem, b.model("eBremRel", "eBremLPM"), index)
        for proc in (msc, b.process("eIoni", "eIoni"), brem):
            sym.register(helper, proc, particle)
    sym.register(helper, b.process("annihil", "annihil"), positron)
    if charged:
        ion = sym.fn("_ZN12G4GenericIon10DefinitionEv", P)()
        hmsc = b.new(sym.fn("_ZN21G4hMultipleScatteringC1ERK8G4String", None, P, P), b.string("ionmsc"))
        ioni = b.new(sym.fn("_ZN15G4ionIonisationC1ERK8G4String", None, P, P), b.string("ionIoni"))
        sym.register(helper, hmsc, ion)
        sym.register(helper, ioni, ion)
        sym.fn("_ZN11G4EmBuilder16ConstructChargedEP21G4hMultipleScatteringP17G4NuclearStoppingb", None, P, P,
               ctypes.c_bool)(hmsc, None, True)


def data_free_em_constructor(g4: ModuleType, charged: bool = False):
    """A G4VPhysicsConstructor (Python subclass) that builds the data-free EM list (for e-, e+, gamma; with
    charged also for muons, hadrons and ions)."""

    class DataFreeEm(g4.G4VPhysicsConstructor):
        def __init__(self):
            super().__init__("hepfastsim-data-free-em")

        def ConstructParticle(self):
            for p in (g4.G4Gamma.Gamma, g4.G4Electron.Electron, g4.G4Positron.Positron, g4.G4Proton.Proton,
                      g4.G4GenericIon.GenericIon):
                p()

        def ConstructProcess(self):
            register_data_free_em(g4, charged)

    return DataFreeEm()
