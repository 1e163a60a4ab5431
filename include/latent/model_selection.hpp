#pragma once
/// @file
/// Choosing a Gaussian mixture: the mclust-style table of information criteria over a range
/// of component counts K and the covariance types, and the best fit.
///
/// Sign convention (the library's, as `gaussian_mixture::bic` and scikit-learn): every
/// criterion is a penalized deviance, **lower is better**:
///
///     BIC = -2 log L + p log n
///     AIC = -2 log L + 2 p
///     ICL = BIC - 2 sum_n w_n log r_{n, c(n)}      (c(n) = the most probable component of x_n)
///
/// with L the likelihood of the fitted mixture (without the reg_covar penalty EM maximizes),
/// p its number of free parameters (`gaussian_mixture::num_free_parameters`) and n the total
/// observation weight (N for unweighted data). mclust reports BIC and ICL with the opposite
/// sign (2 log L - p log n, larger is better): its numbers are the negatives of ours. ICL is
/// BIC plus twice the entropy of the hard classification (Biernacki, Celeux and Govaert, 2000),
/// defined as mclust defines it.
///
/// mclust's models that correspond: full = VVV, diagonal = VVI, spherical = VII, tied = EEE.
///
/// Each cell is fitted by `em` with `em.restarts` k-means++ starts drawn from an engine seeded
/// by (seed, K, covariance type): the table is a function of the data and the seed alone, and
/// a cell does not change when the range of K or the list of types around it does. A cell
/// whose fit fails (every restart ended in `fit_status::numerical_issue`, a start could not be
/// formed, or the data are too few for that K and type) is left missing with the reason; it
/// never stops the others.

#include <latent/core/error.hpp>
#include <latent/core/fit_result.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/model.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/solvers/em.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// Which information criterion chooses the model (all: lower is better).
enum class information_criterion { bic, aic, icl };

/// The criterion's name ("BIC", "AIC", "ICL").
constexpr std::string_view to_string(information_criterion c) {
  switch (c) {
    case information_criterion::bic: return "BIC";
    case information_criterion::aic: return "AIC";
    case information_criterion::icl: return "ICL";
  }
  return "unknown";
}

/// Options of `select_gaussian_mixture`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `components` | the values of K, the table's rows (positive, distinct) | 1, ..., 9 |
/// | `covariances` | the covariance types, the table's columns (distinct) | full, diagonal, spherical, tied |
/// | `criterion` | the criterion that chooses the model | BIC |
/// | `seed` | seeds every cell's engine (with K and the type) | 1 |
/// | `em` | the EM options of every cell; `restarts` starts per cell | 10 restarts, else `em_options{}` |
/// | `mixture` | the mixture options of every cell (reg_covar, ...) | `gaussian_mixture_options{}` |
struct mixture_selection_options {
  std::vector<Eigen::Index> components{1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<covariance_type> covariances{covariance_type::full, covariance_type::diagonal,
                                           covariance_type::spherical, covariance_type::tied};
  information_criterion criterion = information_criterion::bic;
  std::uint64_t seed = 1;
  em_options em{.restarts = 10};
  gaussian_mixture_options mixture{};
};

/// One cell of the table: the fit of K components with one covariance type.
struct mixture_selection_cell {
  Eigen::Index components = 0;
  covariance_type covariance = covariance_type::full;
  bool fitted = false;  ///< false: a missing cell (see `message`); the numbers below are NaN
  double log_likelihood = std::numeric_limits<double>::quiet_NaN();
  double bic = std::numeric_limits<double>::quiet_NaN();
  double aic = std::numeric_limits<double>::quiet_NaN();
  double icl = std::numeric_limits<double>::quiet_NaN();
  Eigen::Index free_parameters = 0;
  fit_status status = fit_status::max_iterations;  ///< of the best restart
  std::size_t iterations = 0;                      ///< M-steps of all restarts
  std::string message;                             ///< why the cell is missing

  /// The value of criterion `c` (NaN if missing).
  double value(information_criterion c) const {
    switch (c) {
      case information_criterion::bic: return bic;
      case information_criterion::aic: return aic;
      case information_criterion::icl: return icl;
    }
    return std::numeric_limits<double>::quiet_NaN();
  }
};

/// The table and the chosen model.
template <Scalar S>
struct basic_mixture_selection {
  std::vector<Eigen::Index> components;       ///< the rows
  std::vector<covariance_type> covariances;   ///< the columns
  information_criterion criterion = information_criterion::bic;
  std::vector<mixture_selection_cell> cells;  ///< row by row: cell(i, j) = cells[i * columns + j]
  std::optional<std::size_t> best;            ///< index of the chosen cell; empty if every cell is missing
  std::optional<basic_gaussian_mixture<S>> model;  ///< the chosen cell's fitted mixture

  const mixture_selection_cell& cell(std::size_t row, std::size_t column) const {
    return cells.at(row * covariances.size() + column);
  }
  /// The chosen cell. @throws invalid_argument if every cell is missing.
  const mixture_selection_cell& chosen() const {
    detail::require(best.has_value(), "mixture_selection::chosen", "every cell of the table is missing");
    return cells[*best];
  }
};
using mixture_selection = basic_mixture_selection<double>;

namespace detail {
/// -2 sum_n w_n log max_k r_nk: what ICL adds to BIC (>= 0).
template <Scalar S>
double classification_entropy_term(const basic_gaussian_mixture<S>& gmm, const basic_observations<S>& x) {
  const Eigen::MatrixXd r = gmm.responsibilities(x.x()).template cast<double>();
  const Eigen::RowVectorXd log_max = r.colwise().maxCoeff().array().log().matrix();
  const double sum = x.weighted() ? log_max.dot(x.weights().template cast<double>().transpose()) : log_max.sum();
  return -2.0 * sum;
}
}  // namespace detail

/// Fit a Gaussian mixture for every K in `options.components` and every type in
/// `options.covariances`, fill the table of BIC, AIC and ICL (lower is better; see the file's
/// comment), and choose the cell with the lowest `options.criterion` (ties: the first in table
/// order). `progress(cell, mixture)` is called after each cell, in table order, with the cell
/// and its fitted mixture (for a missing cell: the mixture as the failure left it, possibly
/// without parameters), e.g. to report on a long run or to keep every fit; it may be omitted.
///
/// @param x        the data, d x N (observations are columns), optionally weighted
/// @throws invalid_argument if `x` has no observations or a non-finite entry, if a list of the
///         options is empty, a K is not positive or repeated, a type is repeated, or the EM or
///         mixture options are invalid. Data too few for one cell (K > N, N <= d for full
///         covariance) make that cell missing, not an error.
template <Scalar S, class Progress>
basic_mixture_selection<S> select_gaussian_mixture(const basic_observations<S>& x,
                                                   const mixture_selection_options& options,
                                                   Progress&& progress) {
  constexpr std::string_view fn = "select_gaussian_mixture";
  require(x.size() > 0, fn, "argument 'x' has no observations");
  require_finite(x.x(), fn, "x");
  require(!options.components.empty(), fn, "option 'components' is empty");
  require(!options.covariances.empty(), fn, "option 'covariances' is empty");
  for (std::size_t i = 0; i < options.components.size(); ++i) {
    require(options.components[i] > 0, fn, "option 'components' must hold positive counts, got ",
            options.components[i]);
    for (std::size_t j = 0; j < i; ++j)
      require(options.components[j] != options.components[i], fn, "option 'components' repeats K = ",
              options.components[i]);
  }
  for (std::size_t i = 0; i < options.covariances.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      require(options.covariances[j] != options.covariances[i], fn, "option 'covariances' repeats '",
              to_string(options.covariances[i]), "'");
  require_count(options.em.restarts, 1, max_restart_count, fn, "em.restarts");
  // The options of the mixture and of EM are checked here once, so that a mistake in them is
  // an error and not a table of missing cells.
  { basic_gaussian_mixture<S> check(1, covariance_type::full, options.mixture); }
  detail::validate_em_loop_options(detail::loop_options(options.em), fn);

  basic_mixture_selection<S> out;
  out.components = options.components;
  out.covariances = options.covariances;
  out.criterion = options.criterion;
  double best_value = std::numeric_limits<double>::infinity();
  const double log_n = std::log(static_cast<double>(x.total_weight()));
  for (const Eigen::Index k : options.components) {
    for (std::size_t t = 0; t < options.covariances.size(); ++t) {
      const covariance_type type = options.covariances[t];
      mixture_selection_cell c;
      c.components = k;
      c.covariance = type;
      // The engine depends on the seed, K and the type (not on the cell's position).
      std::seed_seq seq{options.seed, static_cast<std::uint64_t>(k), static_cast<std::uint64_t>(type)};
      std::mt19937_64 rng(seq);
      basic_gaussian_mixture<S> gmm(k, type, options.mixture);
      try {
        const auto fit = em(gmm, x, rng, options.em);
        c.status = fit.status;
        c.iterations = fit.total_iterations;
        if (fit.status == fit_status::numerical_issue) {
          c.message = fit.message;
        } else {
          c.log_likelihood = gmm.log_likelihood(x);
          c.free_parameters = gmm.num_free_parameters();
          const double p = static_cast<double>(c.free_parameters);
          c.bic = -2.0 * c.log_likelihood + p * log_n;
          c.aic = -2.0 * c.log_likelihood + 2.0 * p;
          c.icl = c.bic + detail::classification_entropy_term(gmm, x);
          c.fitted = std::isfinite(c.bic) && std::isfinite(c.icl);
          if (!c.fitted) c.message = concat("the fitted log-likelihood is ", c.log_likelihood);
        }
      } catch (const numerical_error& e) {
        c.message = e.what();
      } catch (const invalid_argument& e) {
        // The data were checked above; what remains is a K or type the data cannot support.
        c.message = e.what();
      }
      if (!c.fitted) {
        c.log_likelihood = c.bic = c.aic = c.icl = std::numeric_limits<double>::quiet_NaN();
      } else if (c.value(options.criterion) < best_value) {
        best_value = c.value(options.criterion);
        out.best = out.cells.size();
        out.model = std::move(gmm);
      }
      out.cells.push_back(std::move(c));
      progress(out.cells.back(), out.best == out.cells.size() - 1 ? *out.model : gmm);
    }
  }
  return out;
}

/// `select_gaussian_mixture` without a progress report.
template <Scalar S>
basic_mixture_selection<S> select_gaussian_mixture(const basic_observations<S>& x,
                                                   const mixture_selection_options& options = {}) {
  return select_gaussian_mixture(x, options, [](const mixture_selection_cell&, const basic_gaussian_mixture<S>&) {});
}

/// The table of criterion `c` as text: a header line naming the criterion and its sign, then
/// one line per K with one column per covariance type ("NA" for a missing cell), the chosen
/// cell (by the selection's own criterion) marked with '*'.
template <Scalar S>
std::string format_selection_table(const basic_mixture_selection<S>& sel, information_criterion c) {
  std::string out = concat(to_string(c), " = ",
                           c == information_criterion::aic ? "-2 log L + 2 p"
                           : c == information_criterion::bic ? "-2 log L + p log n"
                                                             : "BIC - 2 sum log max_k r_nk",
                           " (lower is better; mclust reports the negative)\n");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%4s", "K");
  out += buf;
  for (const auto type : sel.covariances) {
    std::snprintf(buf, sizeof buf, " %13s", std::string(to_string(type)).c_str());
    out += buf;
  }
  out += '\n';
  for (std::size_t i = 0; i < sel.components.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%4ld", static_cast<long>(sel.components[i]));
    out += buf;
    for (std::size_t j = 0; j < sel.covariances.size(); ++j) {
      const auto& cell = sel.cell(i, j);
      const bool chosen = sel.best && *sel.best == i * sel.covariances.size() + j;
      if (cell.fitted)
        std::snprintf(buf, sizeof buf, " %12.3f%c", cell.value(c), chosen ? '*' : ' ');
      else
        std::snprintf(buf, sizeof buf, " %12s ", "NA");
      out += buf;
    }
    out += '\n';
  }
  return out;
}

}  // namespace latent
