#pragma once
/// @file
/// The upper tail of the chi-square distribution, P(X > x) for X ~ chi^2(df), through the
/// regularized incomplete gamma function Q(df/2, x/2): a power series for P when x < a + 1,
/// a continued fraction (modified Lentz) for Q otherwise, each to about 1e-15 relative, so the
/// tail is accurate even when it is tiny (no 1 - P cancellation on the continued-fraction side).

#include <latent/core/error.hpp>

#include <cmath>
#include <limits>
#include <string_view>

namespace latent {

/// The regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a), a > 0,
/// x >= 0 (Q(a, 0) = 1).
/// @throws invalid_argument unless a is finite and > 0 and x is not NaN and >= 0.
inline double regularized_upper_gamma(double a, double x) {
  constexpr std::string_view fn = "regularized_upper_gamma";
  detail::require(std::isfinite(a) && a > 0.0, fn, "argument 'a' must be finite and > 0, got ", a);
  detail::require(x >= 0.0, fn, "argument 'x' must be >= 0, got ", x);
  if (x == 0.0) return 1.0;
  if (std::isinf(x)) return 0.0;
  constexpr double eps = 1e-16, tiny = 1e-300;
  constexpr int max_terms = 100000;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {  // P(a, x) = x^a e^-x / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n))
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < max_terms && std::abs(term) > eps * std::abs(sum); ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  // Q(a, x) = x^a e^-x / Gamma(a) * 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...)))
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < max_terms; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < eps) break;
  }
  return std::exp(log_prefix) * h;
}

/// P(X > x) for X ~ chi^2(df): R's `pchisq(x, df, lower.tail = FALSE)`. 1 for x <= 0.
/// @throws invalid_argument unless df is finite and > 0 and x is not NaN.
inline double chi_square_upper_tail(double x, double df) {
  constexpr std::string_view fn = "chi_square_upper_tail";
  detail::require(std::isfinite(df) && df > 0.0, fn, "argument 'df' must be finite and > 0, got ", df);
  detail::require(!std::isnan(x), fn, "argument 'x' must not be NaN");
  return x <= 0.0 ? 1.0 : regularized_upper_gamma(0.5 * df, 0.5 * x);
}

}  // namespace latent
