#pragma once
/// @file
/// Exceptions and the argument checks that raise them.
///
/// Two kinds of failure are distinguished:
///  - `latent::invalid_argument`: the caller passed something the function cannot accept
///    (wrong shape, non-finite value, K > N, a state out of range, a cycle, ...). The message
///    names the function, the argument, what was expected and what was given.
///  - `latent::numerical_error`: valid input ran into numerical trouble during a computation
///    (a covariance that will not factor, a non-finite objective). Solvers catch it, stop with
///    `fit_status::numerical_issue` and leave the model at its last good parameters.

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace latent {

/// Bad input. Derives from `std::invalid_argument`, so existing handlers still catch it.
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Numerical failure on valid input (e.g. a matrix that is not positive definite).
class numerical_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @name Argument checks for model authors
/// The checks latent's own models use at their API boundary, public so that a user's model
/// reports bad input the same way: each throws `invalid_argument` with "function: message",
/// the message naming the argument, what was expected and what was given.
/// @{


/// Concatenate streamable pieces into one string.
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

/// Throw `invalid_argument` with "function: message".
template <class... Parts>
[[noreturn]] void throw_invalid(std::string_view function, const Parts&... parts) {
  throw invalid_argument(concat(function, ": ", parts...));
}

/// Throw unless `condition` holds.
template <class... Parts>
void require(bool condition, std::string_view function, const Parts&... parts) {
  if (!condition) throw_invalid(function, parts...);
}

/// Throw unless every entry of `m` is finite; names the first offending entry.
template <class Derived>
void require_finite(const Eigen::DenseBase<Derived>& m, std::string_view function,
                    std::string_view name) {
  for (Eigen::Index j = 0; j < m.cols(); ++j)
    for (Eigen::Index i = 0; i < m.rows(); ++i)
      if (!std::isfinite(static_cast<double>(m(i, j))))
        throw_invalid(function, "argument '", name, "' must be finite, but entry (", i, ", ", j,
                      ") is ", static_cast<double>(m(i, j)));
}

/// Throw unless `m` is rows x cols.
template <class Derived>
void require_shape(const Eigen::EigenBase<Derived>& m, Eigen::Index rows, Eigen::Index cols,
                   std::string_view function, std::string_view name) {
  if (m.rows() != rows || m.cols() != cols)
    throw_invalid(function, "argument '", name, "' must be ", rows, " x ", cols, ", got ",
                  m.rows(), " x ", m.cols());
}

/// Throw unless `m` has `rows` rows.
template <class Derived>
void require_rows(const Eigen::EigenBase<Derived>& m, Eigen::Index rows, std::string_view function,
                  std::string_view name) {
  if (m.rows() != rows)
    throw_invalid(function, "argument '", name, "' must have ", rows, " rows, got ", m.rows());
}

/// Caps on the count options of the solvers and models (documented in each options table):
/// a count above its cap is not a budget but a mistake, typically a negative int converted to
/// an unsigned type (-1 becomes 18446744073709551615), and is rejected with `invalid_argument`
/// instead of running (nearly) forever or allocating without bound.
inline constexpr std::size_t max_iteration_count = 1'000'000'000;  ///< iterations, epochs, patience
inline constexpr std::size_t max_restart_count = 1'000'000;        ///< restarts
inline constexpr std::size_t max_sample_count = 1'000'000;         ///< Monte Carlo draws per observation

/// Throw unless `lo <= value <= hi` for the count option `name`. A value above 2^63 is said to
/// look like a negative number converted to an unsigned count.
inline void require_count(std::size_t value, std::size_t lo, std::size_t hi, std::string_view function,
                          std::string_view name) {
  if (value >= lo && value <= hi) return;
  const bool negative = value > (std::size_t{1} << 63);
  throw_invalid(function, "option '", name, "' must be in [", lo, ", ", hi, "], got ", value,
                negative ? " (a negative number converted to an unsigned count?)" : "");
}

/// @}

namespace detail {
// The first edition's spelling; model code may keep using it.
using latent::concat;
using latent::require;
using latent::require_count;
using latent::require_finite;
using latent::require_rows;
using latent::require_shape;
using latent::throw_invalid;
}  // namespace detail

}  // namespace latent
