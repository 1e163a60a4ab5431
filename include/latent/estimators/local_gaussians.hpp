#pragma once
/// @file
/// Per-observation diagonal-Gaussian variational parameters optimized to convergence: the q*
/// of the gap decomposition (Cremer, Li and Duvenaud 2018), for any `AmortizedObjective`.
///
/// For each observation x_n separately, maximize over q = N(m, diag e^{2 rho}) (m, rho in R^k)
///
///   L[q] = E_{eps ~ N(0, I)}[log p(x_n, m + e^rho (.) eps)] + sum_j rho_j + k/2 (1 + log 2 pi),
///
/// starting from the encoder's q(z | x_n) (or given Gaussians).
///
/// **Method: sample-average approximation with a randomized cubature, then L-BFGS.** The
/// expectation is replaced by an average over S fixed points eps_1..eps_S per observation
/// (common random numbers: the same points at every iterate), which makes the objective a
/// smooth deterministic function of (m, rho) with the exact gradient
///
///   dL/dm = (1/S) sum_s g_s,   dL/drho = e^rho (.) (1/S) sum_s g_s (.) eps_s + 1,
///   g_s = grad_z log p(x_n, z) at z = m + e^rho (.) eps_s (the objective's `log_joint`),
///
/// so that a quasi-Newton method converges to its maximizer (a stochastic optimizer on fresh
/// noise would only hover around it). The points are drawn as S/2 antithetic pairs +-e_i and
/// the e_i whitened (S/2 >= k: multiplied by the inverse Cholesky factor of their second
/// moment; S/2 < k: each coordinate scaled to unit second moment), so that their empirical
/// mean is exactly 0 and their second moment exactly I: a randomly rotated spherical cubature
/// rule of degree 3 (for S = 2k, +-sqrt(k) times an orthonormal basis, the rule of
/// Arasaratnam and Haykin's cubature Kalman filter). The average is then EXACT for every
/// log p(x_n, z) quadratic in z (Gaussian posteriors, e.g. the linear VAE), and its error is
/// of third order in the scale of q otherwise. Whatever the quality of the approximation, the
/// result is a member of the family: its ELBO evaluated with fresh noise (as the gap
/// decomposition does) is an unbiased estimate of a lower bound on the family's optimum.
///
/// L-BFGS (Nocedal and Wright 2006, Algorithm 7.4; `memory` pairs, initial scaling
/// s^T y / y^T y, the first step scaled to move no coordinate by more than 1) with a
/// backtracking Armijo line search (sufficient-increase constant 1e-4, step halved, at most
/// 50 halvings). All observations of a group are iterated together: each round evaluates
/// every observation that needs a new point in ONE `log_joint` call with gradient (the
/// decoder runs as block products), while each observation follows its own iterates and
/// stops on its own criterion. An observation stops as
///  - converged: the largest entry of the gradient is <= `gradient_tolerance`, or an accepted
///    step raised L by <= `value_tolerance` max(1, |L|);
///  - stalled: 50 halvings of the step found no increase (the limit of the precision the
///    objective computes in, e.g. float);
///  - max_evaluations: `max_evaluations` evaluations of its objective were spent.
/// In every case the best point found is returned (the iterates only ever increase L).

#include <latent/core/amortized.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/scalar.hpp>
#include <latent/estimators/per_observation.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <string_view>
#include <vector>

namespace latent {

/// Options of `fit_local_gaussians`.
struct local_gaussian_options {
  /// S, the fixed cubature points per observation (even); 0 means 2 max(k, 16).
  std::size_t num_samples = 0;
  /// Evaluations of each observation's objective (and gradient), line-search trials included.
  std::size_t max_evaluations = 1000;
  /// Converged when the largest entry of the gradient with respect to (m, log s) is at most this.
  double gradient_tolerance = 1e-6;
  /// Or when an accepted step raised the objective by at most this times max(1, |L|).
  double value_tolerance = 1e-12;
  /// L-BFGS memory: the number of (step, gradient change) pairs kept.
  std::size_t memory = 8;
  /// At most about this many latent points per `log_joint` call: observations per group =
  /// max(1, columns_per_call / S). Never changes the draws.
  Eigen::Index columns_per_call = 8192;
  /// Threads over groups of observations; 0 means the OpenMP default. Identical results for
  /// every thread count.
  int threads = 0;
};

/// How one observation's optimization ended (see the file comment).
enum class local_fit_status { converged, stalled, max_evaluations };

/// A name for a status.
constexpr std::string_view to_string(local_fit_status s) {
  switch (s) {
    case local_fit_status::converged: return "converged";
    case local_fit_status::stalled: return "stalled";
    case local_fit_status::max_evaluations: return "max_evaluations";
  }
  return "unknown";
}

/// The optimized Gaussians and how each optimization went.
struct local_gaussians_result {
  std::vector<Eigen::Index> indices;  ///< the observations, in the order given
  diagonal_gaussians q;               ///< q*_n: k x n means and log-scales, column j for indices[j]
  /// The cubature (sample-average) objective at q*_n. Biased (its points were chosen to fit
  /// them): evaluate q* with fresh noise (`estimate_elbo`) for an unbiased L[q*].
  vector_t<double> objective;
  vector_t<double> start_objective;  ///< the same objective at the starting point
  vector_t<double> gradient_norm;    ///< largest |entry| of its gradient at q*_n
  std::vector<local_fit_status> status;  ///< per observation
  std::vector<std::size_t> evaluations;  ///< objective evaluations per observation
  std::size_t num_converged = 0, num_stalled = 0, num_max_evaluations = 0;  ///< status counts
};

namespace detail {

/// The fixed points of one observation: S/2 draws from its stream, whitened, and their
/// negatives (see the file comment). k x S.
template <class Stream>
matrix_t<double> cubature_points(Stream& stream, Eigen::Index k, Eigen::Index s) {
  const Eigen::Index h = s / 2;
  matrix_t<double> e(k, h);
  for (Eigen::Index j = 0; j < h; ++j)
    for (Eigen::Index i = 0; i < k; ++i) e(i, j) = stream();
  bool whitened = false;
  if (h >= k) {
    const Eigen::LLT<matrix_t<double>> llt(e * e.transpose() / static_cast<double>(h));
    if (llt.info() == Eigen::Success && (llt.matrixLLT().diagonal().array() > 0.0).all()) {
      e = llt.matrixL().solve(e);
      whitened = true;
    }
  }
  if (!whitened)  // fewer pairs than dimensions (or a singular draw): unit second moment per coordinate
    for (Eigen::Index i = 0; i < k; ++i) e.row(i) /= std::sqrt(e.row(i).squaredNorm() / static_cast<double>(h));
  matrix_t<double> points(k, 2 * h);
  points << e, -e;
  return points;
}

/// One observation's L-BFGS state, minimizing phi = -L over x = (m, rho) (T = double).
template <Scalar T>
struct lbfgs_observation {
  vector_t<T> x, grad, direction, trial;
  T phi = 0.0, step = 1.0, slope = 0.0, start = 0.0;
  std::deque<vector_t<T>> s_hist, y_hist;
  std::size_t evaluations = 0, halvings = 0;
  bool started = false, done = false;
  local_fit_status status = local_fit_status::max_evaluations;

  /// The quasi-Newton direction from the current gradient (two-loop recursion), and step 1.
  void new_direction() {
    vector_t<T> q = grad;
    const std::size_t m = s_hist.size();
    std::vector<T> alpha(m), rho(m);
    for (std::size_t i = m; i-- > 0;) {
      rho[i] = 1.0 / y_hist[i].dot(s_hist[i]);
      alpha[i] = rho[i] * s_hist[i].dot(q);
      q -= alpha[i] * y_hist[i];
    }
    const T gamma = m > 0 ? s_hist.back().dot(y_hist.back()) / y_hist.back().squaredNorm()
                          : T(1) / std::max(T(1), grad.template lpNorm<Eigen::Infinity>());
    q *= gamma;
    for (std::size_t i = 0; i < m; ++i) q += s_hist[i] * (alpha[i] - rho[i] * y_hist[i].dot(q));
    direction = -q;
    slope = grad.dot(direction);
    if (!(slope < T(0))) {  // not a descent direction (rounding): restart from steepest descent
      s_hist.clear();
      y_hist.clear();
      direction = -grad / std::max(T(1), grad.template lpNorm<Eigen::Infinity>());
      slope = grad.dot(direction);
    }
    step = 1;
    halvings = 0;
  }
};

/// Optimize the observations [begin, end) of `indices` from `start`, writing into `out`.
template <AmortizedObjective F>
void fit_group(const F& f, const objective_vector_t<F>& params, minibatch indices, Eigen::Index begin,
               Eigen::Index end, const diagonal_gaussians& start, std::uint64_t seed,
               const local_gaussian_options& opts, Eigen::Index s_count, local_gaussians_result& out) {
  using S = objective_scalar_t<F>;
  constexpr double armijo = 1e-4;
  constexpr std::size_t max_halvings = 50;
  const Eigen::Index k = f.latent_dim(), b = end - begin;
  const double entropy_constant = 0.5 * static_cast<double>(k) * (1.0 + log_two_pi);
  const minibatch group = indices.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(b));
  std::vector<observation_stream> streams = group_streams(group, seed, stream_purpose::optimization);
  std::vector<matrix_t<double>> points;
  std::vector<lbfgs_observation<double>> obs(static_cast<std::size_t>(b));
  std::vector<Eigen::Index> pending;
  for (Eigen::Index j = 0; j < b; ++j) {
    points.push_back(cubature_points(streams[static_cast<std::size_t>(j)], k, s_count));
    lbfgs_observation<double>& o = obs[static_cast<std::size_t>(j)];
    o.trial.resize(2 * k);
    o.trial << start.mean.col(begin + j), start.log_scale.col(begin + j);
    pending.push_back(j);
  }
  std::vector<Eigen::Index> batch;
  matrix_t<S> z, dz;
  vector_t<double> values;
  while (!pending.empty()) {
    // One log_joint call for every observation that needs a point: column r |A| + a.
    const Eigen::Index a_count = static_cast<Eigen::Index>(pending.size());
    batch.clear();
    for (const Eigen::Index j : pending) batch.push_back(group[static_cast<std::size_t>(j)]);
    z.resize(k, a_count * s_count);
    for (Eigen::Index a = 0; a < a_count; ++a) {
      const lbfgs_observation<double>& o = obs[static_cast<std::size_t>(pending[static_cast<std::size_t>(a)])];
      const matrix_t<double>& e = points[static_cast<std::size_t>(pending[static_cast<std::size_t>(a)])];
      const vector_t<double> scale = o.trial.tail(k).array().exp().matrix();
      for (Eigen::Index r = 0; r < s_count; ++r)
        z.col(r * a_count + a) = (o.trial.head(k) + scale.cwiseProduct(e.col(r))).template cast<S>();
    }
    f.log_joint(params, minibatch(batch), z, values, &dz);
    require(values.size() == z.cols() && dz.rows() == k && dz.cols() == z.cols(), "fit_local_gaussians",
            "the objective's log_joint returned ", values.size(), " values and a ", dz.rows(), " x ", dz.cols(),
            " gradient for ", k, " x ", z.cols(), " latent points");
    std::vector<Eigen::Index> next;
    for (Eigen::Index a = 0; a < a_count; ++a) {
      const Eigen::Index j = pending[static_cast<std::size_t>(a)];
      lbfgs_observation<double>& o = obs[static_cast<std::size_t>(j)];
      const matrix_t<double>& e = points[static_cast<std::size_t>(j)];
      // The cubature objective and its gradient at the trial point, negated (phi = -L).
      double value = 0.0;
      vector_t<double> gm = vector_t<double>::Zero(k), gr = vector_t<double>::Zero(k);
      for (Eigen::Index r = 0; r < s_count; ++r) {
        const Eigen::Index c = r * a_count + a;
        value += values(c);
        const vector_t<double> g = dz.col(c).template cast<double>();
        gm += g;
        gr += g.cwiseProduct(e.col(r));
      }
      const double inv = 1.0 / static_cast<double>(s_count);
      const double phi = -(value * inv + o.trial.tail(k).sum() + entropy_constant);
      vector_t<double> grad(2 * k);
      grad << -gm * inv, -(o.trial.tail(k).array().exp() * gr.array() * inv + 1.0).matrix();
      ++o.evaluations;
      const bool finite = std::isfinite(phi) && grad.allFinite();
      if (!o.started) {
        if (!finite)
          throw numerical_error(concat("fit_local_gaussians: the objective is not finite at the starting point of "
                                       "observation ",
                                       group[static_cast<std::size_t>(j)]));
        o.x = o.trial;
        o.phi = o.start = phi;
        o.grad = grad;
        o.started = true;
        if (o.grad.lpNorm<Eigen::Infinity>() <= opts.gradient_tolerance) {
          o.done = true;
          o.status = local_fit_status::converged;
        } else {
          o.new_direction();
        }
      } else if (finite && phi <= o.phi + armijo * o.step * o.slope) {
        vector_t<double> s = o.trial - o.x, y = grad - o.grad;
        const double gain = o.phi - phi;
        o.x = o.trial;
        o.phi = phi;
        o.grad = grad;
        // Keep the pair only with positive curvature, so the inverse Hessian stays positive definite.
        if (s.dot(y) > 1e-12 * s.norm() * y.norm()) {
          o.s_hist.push_back(std::move(s));
          o.y_hist.push_back(std::move(y));
          if (o.s_hist.size() > opts.memory) {
            o.s_hist.pop_front();
            o.y_hist.pop_front();
          }
        }
        if (o.grad.lpNorm<Eigen::Infinity>() <= opts.gradient_tolerance ||
            gain <= opts.value_tolerance * std::max(1.0, std::abs(phi))) {
          o.done = true;
          o.status = local_fit_status::converged;
        } else {
          o.new_direction();
        }
      } else if (++o.halvings > max_halvings) {
        o.done = true;
        o.status = local_fit_status::stalled;
      } else {
        o.step *= 0.5;
      }
      if (!o.done && o.evaluations >= opts.max_evaluations) {
        o.done = true;
        o.status = local_fit_status::max_evaluations;
      }
      if (!o.done) {
        o.trial = o.x + o.step * o.direction;
        next.push_back(j);
      }
    }
    pending.swap(next);
  }
  for (Eigen::Index j = 0; j < b; ++j) {
    const lbfgs_observation<double>& o = obs[static_cast<std::size_t>(j)];
    out.q.mean.col(begin + j) = o.x.head(k);
    out.q.log_scale.col(begin + j) = o.x.tail(k);
    out.objective(begin + j) = -o.phi;
    out.start_objective(begin + j) = -o.start;
    out.gradient_norm(begin + j) = o.grad.lpNorm<Eigen::Infinity>();
    out.status[static_cast<std::size_t>(begin + j)] = o.status;
    out.evaluations[static_cast<std::size_t>(begin + j)] = o.evaluations;
  }
}

/// The number of cubature points `opts` asks for with latent dimension k.
inline Eigen::Index cubature_count(const local_gaussian_options& opts, Eigen::Index k) {
  return opts.num_samples == 0 ? 2 * std::max<Eigen::Index>(k, 16) : static_cast<Eigen::Index>(opts.num_samples);
}

inline void require_local_options(const local_gaussian_options& opts, std::string_view fn) {
  require(opts.num_samples % 2 == 0, fn, "option 'num_samples' must be even (antithetic pairs), got ",
          opts.num_samples);
  require_positive(opts.max_evaluations, fn, "max_evaluations");
  require_positive(opts.memory, fn, "memory");
  require(opts.gradient_tolerance >= 0.0, fn, "option 'gradient_tolerance' must be >= 0, got ",
          opts.gradient_tolerance);
  require(opts.value_tolerance >= 0.0, fn, "option 'value_tolerance' must be >= 0, got ", opts.value_tolerance);
  require_execution(opts.columns_per_call, opts.threads, fn);
}

/// The optimization from `start` with the streams of `seed` (arguments already checked).
template <AmortizedObjective F>
local_gaussians_result fit_local(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                 const diagonal_gaussians& start, std::uint64_t seed,
                                 const local_gaussian_options& opts) {
  const Eigen::Index n = static_cast<Eigen::Index>(indices.size()), k = f.latent_dim();
  const Eigen::Index s_count = cubature_count(opts, k);
  local_gaussians_result out;
  out.indices.assign(indices.begin(), indices.end());
  out.q = {matrix_t<double>(k, n), matrix_t<double>(k, n)};
  out.objective.resize(n);
  out.start_objective.resize(n);
  out.gradient_norm.resize(n);
  out.status.resize(static_cast<std::size_t>(n));
  out.evaluations.resize(static_cast<std::size_t>(n));
  for_each_group(n, group_size(static_cast<std::size_t>(s_count), opts.columns_per_call), opts.threads,
                 [&](Eigen::Index begin, Eigen::Index end) {
                   fit_group(f, params, indices, begin, end, start, seed, opts, s_count, out);
                 });
  for (const local_fit_status s : out.status) {
    out.num_converged += s == local_fit_status::converged;
    out.num_stalled += s == local_fit_status::stalled;
    out.num_max_evaluations += s == local_fit_status::max_evaluations;
  }
  return out;
}

}  // namespace detail

/// Optimize a diagonal Gaussian q*_n for each observation of `indices` (distinct column
/// indices in [0, N)), starting from `start` (k x |indices|, column j for indices[j]); see
/// the file comment for the objective, the method and the stopping rules. Draws one seed from
/// `rng` (the cubature points' streams).
/// @throws invalid_argument for an empty set, an index out of range or repeated, `start` of the wrong
///         shape or not finite, an odd num_samples, max_evaluations = 0, memory = 0, a
///         negative tolerance, columns_per_call <= 0 or threads < 0
/// @throws numerical_error if the objective is not finite at a starting point
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
local_gaussians_result fit_local_gaussians(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                           const diagonal_gaussians& start, Rng& rng,
                                           const local_gaussian_options& opts = {}) {
  constexpr std::string_view fn = "fit_local_gaussians";
  detail::require_local_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  detail::require_gaussians(start, f.latent_dim(), static_cast<Eigen::Index>(indices.size()), fn, "start");
  return detail::fit_local(f, params, indices, start, detail::draw_stream_seed(rng), opts);
}

/// The same, starting from the encoder's q(z | x_n).
template <AmortizedObjective F, std::uniform_random_bit_generator Rng>
local_gaussians_result fit_local_gaussians(const F& f, const objective_vector_t<F>& params, minibatch indices,
                                           Rng& rng, const local_gaussian_options& opts = {}) {
  constexpr std::string_view fn = "fit_local_gaussians";
  detail::require_local_options(opts, fn);
  detail::require_indices(indices, f.num_observations(), fn);
  const diagonal_gaussians start = encoder_gaussians(f, params, indices);
  return detail::fit_local(f, params, indices, start, detail::draw_stream_seed(rng), opts);
}

}  // namespace latent
