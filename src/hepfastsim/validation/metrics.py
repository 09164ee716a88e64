"""Quality metrics of generated showers against a reference, with the field's definitions.

* separation power (triangular discrimination) of a histogram pair (CaloChallenge);
* FPD and KPD (JetNet definitions): Frechet distance extrapolated to infinite sample size,
  and the unbiased MMD^2 with the degree-4 polynomial kernel, median over batches with a 68 % half-range error;
* precision, recall, density, coverage (Naeem et al. 2020) with k nearest neighbours (the ``prdc`` package);
* diversity (SSIM between shower pairs), support size (birthday paradox), W1 distances.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import wasserstein_distance

from hepfastsim.errors import HepFastSimError


def _sp_bins(ref: np.ndarray, bins: np.ndarray | int) -> np.ndarray:
    """Histogram edges: given, or n equal bins between the 0.1 and 99.9 percentiles of the reference."""
    if not isinstance(bins, int):
        return np.asarray(bins)
    lo, hi = np.nanpercentile(ref, [0.1, 99.9]) if len(ref) else (0.0, 1.0)
    return np.linspace(lo, max(hi, lo + 1e-9), bins + 1)


def separation_power(ref: np.ndarray, gen: np.ndarray, bins: np.ndarray | int = 50) -> float:
    """Triangular discrimination 1/2 sum (h_r - h_g)^2 / (h_r + h_g) of normalised histograms (0 = identical, 1 = disjoint)."""
    ref, gen = np.asarray(ref).ravel(), np.asarray(gen).ravel()
    bins = _sp_bins(ref, bins)
    h_r, _ = np.histogram(ref, bins)
    h_g, _ = np.histogram(gen, bins)
    h_r = h_r / max(h_r.sum(), 1)
    h_g = h_g / max(h_g.sum(), 1)
    s = h_r + h_g
    m = s > 0
    return float(0.5 * np.sum((h_r[m] - h_g[m]) ** 2 / s[m]))


def separation_power_error(ref: np.ndarray, gen: np.ndarray, bins: np.ndarray | int = 50, n_boot: int = 20,
                           seed: int = 0) -> tuple[float, float, float]:
    """Separation power, its bootstrap standard deviation, and its statistical floor.

    The floor is the value expected for two finite samples of one distribution, n_occupied (1/N_r + 1/N_g) / 4,
    since the triangular discrimination is positive even for identical parents: a generated sample is
    consistent with the reference when value - floor is within a few errors of zero.
    """
    ref, gen = np.asarray(ref).ravel(), np.asarray(gen).ravel()
    bins = _sp_bins(ref, bins)
    rng = np.random.default_rng(seed)
    val = separation_power(ref, gen, bins)
    boots = [separation_power(rng.choice(ref, len(ref)), rng.choice(gen, len(gen)), bins) for _ in range(n_boot)]
    occupied = np.count_nonzero(np.histogram(np.concatenate([ref, gen]), bins)[0])
    floor = occupied * (1 / max(len(ref), 1) + 1 / max(len(gen), 1)) / 4
    return val, float(np.std(boots)), float(floor)


# ---------------------------------------------------------------- FPD / KPD
# The definitions of JetNet's evaluation.gen_metrics (Kansal et al., arXiv:2211.10295), with CaloChallenge's
# settings: features divided by the reference's max |x| per feature, batches drawn with replacement.
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance of two Gaussians: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))."""
    with warnings.catch_warnings():   # a singular product (an empty layer's constant feature) is handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(np.real(covmean)))


def normalise_by_reference(ref: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets divided by the reference's max |x| per feature (features that are all 0 kept)."""
    maxes = np.max(np.abs(ref), axis=0).astype(np.float64)
    maxes[maxes == 0] = 1.0
    return ref / maxes, gen / maxes


def standardise_pair(ref: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both feature sets by the reference mean and std (for the k-NN coverage metrics)."""
    mu, sd = ref.mean(0), ref.std(0) + 1e-12
    return (ref - mu) / sd, (gen - mu) / sd


def fpd(ref: np.ndarray, gen: np.ndarray, *, min_samples: int = 10_000, max_samples: int = 50_000,
        num_batches: int = 20, num_points: int = 10, seed: int = 42) -> tuple[float, float]:
    """Frechet physics distance and its error: the Frechet distance of batches of N showers (drawn with
    replacement) at num_points sizes evenly spaced in 1/N between 1/min_samples and 1/max_samples, averaged over
    num_batches, fitted linearly in 1/N with intercept and slope >= 0; the intercept (N -> infinity) and its fit
    error. Defaults: CaloChallenge's call of JetNet's fpd."""
    x, y = normalise_by_reference(np.asarray(ref, np.float64), np.asarray(gen, np.float64))
    sizes = (1.0 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype(np.int64)
    rng = np.random.default_rng(seed)
    vals = []
    for n in sizes:
        fds = []
        for _ in range(num_batches):
            a, b = x[rng.choice(len(x), size=n)], y[rng.choice(len(y), size=n)]
            fds.append(frechet_distance(a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)),
                                        b.mean(0), np.atleast_2d(np.cov(b, rowvar=False))))
        vals.append(np.mean(fds))
    params, cov = curve_fit(lambda inv_n, intercept, slope: intercept + slope * inv_n, 1.0 / sizes, vals,
                            bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(np.diag(cov)[0]))


def _kernel_sum(a: np.ndarray, b: np.ndarray, degree: int, block: int = 2000) -> float:
    """Sum over all pairs of the polynomial kernel (a.b / d + 1)^degree, in row blocks (memory)."""
    d = a.shape[1]
    return float(sum((((a[i:i + block] @ b.T) / d + 1.0) ** degree).sum() for i in range(0, len(a), block)))


def mmd_poly_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 4) -> float:
    """Unbiased quadratic-time MMD^2 with the polynomial kernel of the given degree (gamma = 1/d)."""
    m, n, d = len(x), len(y), x.shape[1]
    diag_x = float(((np.einsum("ij,ij->i", x, x) / d + 1.0) ** degree).sum())
    diag_y = float(((np.einsum("ij,ij->i", y, y) / d + 1.0) ** degree).sum())
    return ((_kernel_sum(x, x, degree) - diag_x) / (m * (m - 1)) + (_kernel_sum(y, y, degree) - diag_y) / (n * (n - 1))
            - 2.0 * _kernel_sum(x, y, degree) / (m * n))


def kpd(ref: np.ndarray, gen: np.ndarray, *, num_batches: int = 10, batch_size: int = 10_000,
        seed: int = 42) -> tuple[float, float]:
    """Kernel physics distance: the median over num_batches batches (drawn with replacement) of the unbiased MMD^2
    with the degree-4 polynomial kernel, error = half the 16.275-83.725 % range. Defaults: CaloChallenge's call of
    JetNet's kpd."""
    x, y = normalise_by_reference(np.asarray(ref, np.float64), np.asarray(gen, np.float64))
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        vals.append(mmd_poly_unbiased(x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)]))
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return float(np.median(vals)), float((hi - lo) / 2)


# ---------------------------------------------------------------- coverage metrics
def prdc(ref: np.ndarray, gen: np.ndarray, k: int = 5, max_n: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020) with k-NN balls, by the ``prdc`` package that
    CaloChallenge calls, on at most max_n rows of each sample (its distance matrices are max_n^2)."""
    import contextlib
    import io

    from prdc import compute_prdc

    rng = np.random.default_rng(seed)
    ref = np.asarray(ref)[np.sort(rng.permutation(len(ref))[:max_n])]
    gen = np.asarray(gen)[np.sort(rng.permutation(len(gen))[:max_n])]
    if min(len(ref), len(gen)) <= k:
        raise HepFastSimError(f"prdc needs more than k={k} showers per sample")
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints the sample sizes
        out = compute_prdc(real_features=ref, fake_features=gen, nearest_k=k)
    return {key: float(v) for key, v in out.items()}


def prdc_inputs(showers: np.ndarray, threshold: float, index: np.ndarray) -> np.ndarray:
    """CaloChallenge's PRDC input: log10 of the thresholded voxel energies, empty voxels set to 0.1 MeV."""
    x = np.asarray(showers[np.sort(index)], dtype=np.float32)
    x = np.where(x < threshold, 0.0, x)
    return np.log10(np.where(x == 0.0, 0.1, x))


# ---------------------------------------------------------------- diversity, support
def ssim_pairs(showers: np.ndarray, n_pairs: int = 500, seed: int = 0) -> np.ndarray:
    """Global SSIM between random pairs of showers (log-scaled, normalised). High mean SSIM = low diversity.
    Only the paired rows are read (a dataset-3 sample is not copied)."""
    rng = np.random.default_rng(seed)
    n = len(showers)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n

    def scaled(idx: np.ndarray) -> np.ndarray:
        x = np.log1p(np.asarray(showers[idx], dtype=np.float64) / 1e-3)
        return x / (x.max(axis=1, keepdims=True) + 1e-12)

    a, b = scaled(i), scaled(j)
    c1, c2 = 0.01**2, 0.03**2
    ma, mb = a.mean(1), b.mean(1)
    va, vb = a.var(1), b.var(1)
    cov = ((a - ma[:, None]) * (b - mb[:, None])).mean(1)
    return (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))


def support_size(showers: np.ndarray, threshold: float = 0.999, batch_sizes=(8, 16, 32, 64, 128, 256, 512),
                 trials: int = 20, seed: int = 0) -> dict:
    """Birthday-paradox support estimate: smallest batch size s with >= 50 % chance of a near-duplicate pair
    (cosine similarity of voxel vectors above threshold); support ~ s^2. Returns s, s^2 and the duplicate rate per s."""
    rng = np.random.default_rng(seed)
    x = np.asarray(showers, dtype=np.float64)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    rates = {}
    s_found = None
    for s in batch_sizes:
        if s > len(x):
            break
        hits = 0
        for _ in range(trials):
            b = x[rng.choice(len(x), s, replace=False)]
            sim = b @ b.T
            np.fill_diagonal(sim, -1)
            hits += bool((sim > threshold).any())
        rates[int(s)] = hits / trials
        if s_found is None and hits / trials >= 0.5:
            s_found = int(s)
    return {"batch_size_50pct": s_found, "support_estimate": (s_found**2 if s_found else None), "duplicate_rate": rates}


def w1(ref: np.ndarray, gen: np.ndarray) -> float:
    """1-D Wasserstein distance between two samples."""
    return float(wasserstein_distance(np.ravel(ref), np.ravel(gen)))
