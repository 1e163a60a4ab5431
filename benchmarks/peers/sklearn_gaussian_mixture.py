#!/usr/bin/python3
"""One EM iteration of scikit-learn's GaussianMixture on the problem of
bench_gaussian_mixture (N = 200000, d = 16, K = 8, clusters with random full
covariances), for each covariance type: median of 5 timed iterations after one
warm-up. Run with Debian's interpreter (/usr/bin/python3, python3-sklearn) and
libopenblas0-pthread installed, OPENBLAS_CORETYPE unset:

    /usr/bin/python3 benchmarks/peers/sklearn_gaussian_mixture.py
"""
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

N, D, K = 200_000, 16, 8


def mixture_data(rng):
    means = 3.0 * rng.standard_normal((K, D))
    x = rng.standard_normal((N, D))
    per = N // K
    for j in range(K):
        a = np.eye(D) + 0.3 * rng.standard_normal((D, D))
        x[j * per:(j + 1) * per] = x[j * per:(j + 1) * per] @ a.T + means[j]
    return x


def main():
    x = mixture_data(np.random.default_rng(42))
    for cov in ("full", "diag", "spherical", "tied"):
        gm = GaussianMixture(K, covariance_type=cov, max_iter=1, n_init=1, random_state=7)
        with warnings.catch_warnings():  # one iteration is not meant to converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(x)  # initializes the parameters (k-means) and runs one iteration
        times = []
        for _ in range(6):
            t0 = time.perf_counter()
            _, log_resp = gm._e_step(x)
            gm._m_step(x, log_resp)
            times.append(time.perf_counter() - t0)
        print(f"scikit-learn GaussianMixture, one EM iteration, {cov:9s}: "
              f"{1e3 * statistics.median(times[1:]):8.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
