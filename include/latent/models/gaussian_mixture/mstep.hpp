#pragma once
/// @file
/// The Gaussian mixture's M-step from its statistics, and the checks on parameters a user
/// sets (internal; see model.hpp). Everything here runs in double, O(K d^2) plus the
/// factorizations, and rounds the parameters to the model's scalar at the end.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/options.hpp>
#include <latent/models/gaussian_mixture/params.hpp>
#include <latent/models/gaussian_mixture/stats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace latent::detail::mixture {

/// New parameters and, per covariance column and coordinate, the scale of the rounding errors
/// of the moments they came from (the second moment about the reference point; see
/// singular_tolerance in density.hpp).
template <Scalar S>
struct maximization {
  basic_gaussian_mixture_params<S> params;
  Eigen::MatrixXd scale;  ///< d x K
};

/// The M-step: pi_k = N_k / sum_j N_j, mu_k = c + s_k / N_k and the covariances of the type
/// (plus reg_covar), in double from the statistics. A component whose weight is below
/// `min_component_weight` of the total keeps its previous mean and covariance.
/// @throws numerical_error if the statistics carry no weight.
template <Scalar S>
maximization<S> maximize(const basic_gaussian_mixture_stats<S>& s, const basic_gaussian_mixture_params<S>& previous,
                         covariance_type type, const gaussian_mixture_options& opts) {
  const double total = static_cast<double>(s.counts.sum());
  if (!(total > 0.0) || !std::isfinite(total))
    throw numerical_error("gaussian_mixture::m_step: statistics carry no weight");
  const Eigen::Index d = previous.means.rows(), k_count = previous.weights.size();
  const Eigen::VectorXd counts = s.counts.template cast<double>(), center = s.center.template cast<double>();
  Eigen::MatrixXd means = previous.means.template cast<double>();
  std::vector<Eigen::MatrixXd> covs(static_cast<std::size_t>(k_count));
  Eigen::MatrixXd scale(d, k_count);  // the size of the moments' rounding errors, per coordinate
  const double floor_weight = opts.min_component_weight * total;
  Eigen::MatrixXd m(d, k_count);  // component means relative to the center
  std::vector<bool> live(static_cast<std::size_t>(k_count));
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    covs[kk] = previous.covariances[kk].template cast<double>();
    scale.col(k) = covs[kk].diagonal();
    live[kk] = counts(k) > floor_weight && counts(k) > 0.0;
    m.col(k) = live[kk] ? Eigen::VectorXd(s.sums.col(k).template cast<double>() / counts(k))
                        : Eigen::VectorXd(means.col(k) - center);
    if (live[kk]) means.col(k) = center + m.col(k);
  }
  const Eigen::MatrixXd id = Eigen::MatrixXd::Identity(d, d);
  switch (type) {
    case covariance_type::full:
      for (Eigen::Index k = 0; k < k_count; ++k) {
        if (!live[static_cast<std::size_t>(k)]) continue;
        const Eigen::MatrixXd raw = s.scatter.middleRows(k * d, d).template cast<double>() / counts(k);
        Eigen::MatrixXd c = raw - m.col(k) * m.col(k).transpose();
        c = (0.5 * (c + c.transpose())).eval();  // exact symmetry for the Cholesky
        c += opts.reg_covar * id;
        covs[static_cast<std::size_t>(k)] = c;
        scale.col(k) = raw.diagonal();
      }
      break;
    case covariance_type::tied: {
      Eigen::MatrixXd c = s.scatter.template cast<double>();
      for (Eigen::Index k = 0; k < k_count; ++k) c -= counts(k) * m.col(k) * m.col(k).transpose();
      c /= total;
      c = (0.5 * (c + c.transpose())).eval();
      c += opts.reg_covar * id;
      for (auto& ck : covs) ck = c;
      scale.colwise() = (s.scatter.diagonal().template cast<double>() / total).eval();
      break;
    }
    case covariance_type::diagonal:
    case covariance_type::spherical:
      for (Eigen::Index k = 0; k < k_count; ++k) {
        if (!live[static_cast<std::size_t>(k)]) continue;
        const Eigen::VectorXd raw = s.diagonal_scatter.col(k).template cast<double>() / counts(k);
        Eigen::VectorXd v = raw - m.col(k).array().square().matrix();
        v.array() = v.array().max(0.0);  // rounding can make a tiny variance negative
        scale.col(k) = raw;
        if (type == covariance_type::spherical) {
          v.setConstant(v.mean());
          scale.col(k).setConstant(raw.mean());
        }
        v.array() += opts.reg_covar;
        covs[static_cast<std::size_t>(k)] = v.asDiagonal();
      }
      break;
  }
  basic_gaussian_mixture_params<S> p;
  p.weights = (counts / total).template cast<S>();
  p.means = means.template cast<S>();
  p.covariances.reserve(covs.size());
  for (const auto& c : covs) p.covariances.push_back(c.template cast<S>());
  return {std::move(p), std::move(scale)};
}

/// Checks that statistics `s` belong to a mixture of `k_count` components in `d` dimensions
/// with covariance type `type` (type, reference point, counts, first moments and the second
/// moments the type uses), so that statistics of another mixture are an `invalid_argument`
/// rather than an out-of-range access. O(1).
template <Scalar S>
void check_stats(const basic_gaussian_mixture_stats<S>& s, Eigen::Index k_count, Eigen::Index d, covariance_type type,
                 std::string_view fn) {
  bool second = true;
  switch (type) {
    case covariance_type::full: second = s.scatter.rows() == k_count * d && s.scatter.cols() == d; break;
    case covariance_type::tied: second = s.scatter.rows() == d && s.scatter.cols() == d; break;
    case covariance_type::diagonal:
    case covariance_type::spherical:
      second = s.diagonal_scatter.rows() == d && s.diagonal_scatter.cols() == k_count;
      break;
  }
  require(s.type == type && s.center.size() == d && s.counts.size() == k_count && s.sums.rows() == d &&
              s.sums.cols() == k_count && second,
          fn, "argument 'stats' must be statistics of this mixture (", to_string(type), " covariance, K = ", k_count,
          ", d = ", d, ": make them with zero_stats()), got ", to_string(s.type), " statistics with K = ",
          s.counts.size(), ", d = ", s.center.size(), second ? "" : " and second moments of another shape");
}

/// Checks parameters for a mixture of `k_count` components of type `type`: sizes, finiteness,
/// weights non-negative summing to 1 (within 1e-8; float 1e-5), symmetric covariances of the
/// type's structure. (Positive definiteness is checked by build_cache.)
/// @throws invalid_argument naming the offending part.
template <Scalar S>
void check_params(const basic_gaussian_mixture_params<S>& p, Eigen::Index k_count, covariance_type type,
                  std::string_view fn) {
  detail::require(p.weights.size() == k_count, fn, "'weights' must have K = ", k_count, " entries, got ",
                  p.weights.size());
  detail::require(p.means.cols() == k_count && p.means.rows() > 0, fn, "'means' must be d x K with K = ", k_count,
                  " and d > 0, got ", p.means.rows(), " x ", p.means.cols());
  detail::require(static_cast<Eigen::Index>(p.covariances.size()) == k_count, fn, "'covariances' must hold K = ",
                  k_count, " matrices, got ", p.covariances.size());
  detail::require_finite(p.weights, fn, "weights");
  detail::require_finite(p.means, fn, "means");
  const double sum = p.weights.template cast<double>().sum();
  const double sum_tolerance = std::is_same_v<S, float> ? 1e-5 : 1e-8;
  detail::require((p.weights.array() >= S(0)).all() && std::abs(sum - 1.0) <= sum_tolerance, fn,
                  "'weights' must be non-negative and sum to 1, got sum ", sum);
  const Eigen::Index d = p.means.rows();
  for (Eigen::Index k = 0; k < k_count; ++k) {
    const matrix_t<S>& s = p.covariances[static_cast<std::size_t>(k)];
    detail::require(s.rows() == d && s.cols() == d, fn, "covariance ", k, " must be ", d, " x ", d, ", got ",
                    s.rows(), " x ", s.cols());
    detail::require_finite(s, fn, "covariances");
    detail::require((s - s.transpose()).cwiseAbs().maxCoeff() <= S(1e-10) * std::max(S(1), s.cwiseAbs().maxCoeff()),
                    fn, "covariance ", k, " must be symmetric");
    if (type != covariance_type::full && type != covariance_type::tied) {
      matrix_t<S> off = s;
      off.diagonal().setZero();
      detail::require(off.cwiseAbs().maxCoeff() == S(0), fn, "covariance ", k, " must be diagonal for the ",
                      to_string(type), " type");
    }
    if (type == covariance_type::spherical)
      detail::require((s.diagonal().array() == s(0, 0)).all(), fn, "covariance ", k,
                      " must be a multiple of the identity for the spherical type");
    if (type == covariance_type::tied)
      detail::require(s == p.covariances[0], fn, "covariance ", k, " must equal covariance 0 for the tied type");
  }
}

}  // namespace latent::detail::mixture
