#!/usr/bin/python3
"""One EM iteration of scikit-learn's FactorAnalysis on the problem of
bench_factor_analysis's BM_EMIteration (N = 100000, d = 50, k = 10, data
x = Lambda z + mu + Psi^{1/2} e with Lambda and mu standard normal and the
uniquenesses evenly spaced in [0.2, 1.0]), for both of its SVD methods.

FactorAnalysis has no public E-step/M-step, and each fit() also centres the data
and computes its variances once. So one iteration is timed as the difference of
two fits from the same start, with 11 and with 1 iterations, divided by 10
(tol=0 so that neither stops early; the script checks n_iter_). Median of 5
such differences after one warm-up. Run with Debian's interpreter
(/usr/bin/python3, python3-sklearn) and libopenblas0-pthread installed,
OPENBLAS_CORETYPE unset:

    /usr/bin/python3 benchmarks/peers/sklearn_factor_analysis.py
"""
import statistics
import time
import warnings

import numpy as np
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

N, D, K = 100_000, 50, 10


def fa_data(rng):
    loadings = rng.standard_normal((D, K))
    mean = rng.standard_normal(D)
    psi = np.linspace(0.2, 1.0, D)
    z = rng.standard_normal((N, K))
    return z @ loadings.T + mean + rng.standard_normal((N, D)) * np.sqrt(psi)


def timed_fit(x, method, iterations):
    fa = FactorAnalysis(K, svd_method=method, max_iter=iterations, tol=0.0, random_state=7)
    with warnings.catch_warnings():  # a fixed number of iterations is not meant to converge
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        fa.fit(x)
        elapsed = time.perf_counter() - t0
    assert fa.n_iter_ == iterations, (fa.n_iter_, iterations)
    return elapsed


def main():
    x = fa_data(np.random.default_rng(42))
    for method in ("randomized", "lapack"):
        per_iteration = []
        for rep in range(6):
            t11 = timed_fit(x, method, 11)
            t1 = timed_fit(x, method, 1)
            if rep > 0:  # the first round is a warm-up
                per_iteration.append((t11 - t1) / 10.0)
        print(f"scikit-learn FactorAnalysis, one EM iteration, svd_method={method:10s}: "
              f"{1e3 * statistics.median(per_iteration):8.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
