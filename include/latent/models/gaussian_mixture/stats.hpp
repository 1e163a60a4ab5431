#pragma once
/// @file
/// `basic_gaussian_mixture_stats<S>`: the expected sufficient statistics of a Gaussian
/// mixture, additive and scalable, accumulated in `accumulator_t<S>` (double for float).

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/gaussian_mixture/options.hpp>

#include <span>

namespace latent {

/// Expected sufficient statistics of a Gaussian mixture (additive, scalable).
///
/// Per component: N_k = sum_n w_n r_nk, s_k = sum_n w_n r_nk (x_n - c) and
/// S_k = sum_n w_n r_nk (x_n - c)(x_n - c)^T (only its diagonal for diagonal and spherical
/// covariances, only the sum over k for tied ones), about a reference point c (the mixture
/// mean when the statistics are created) so that no large numbers cancel. Every number is in
/// `accumulator_t<S>` (double for float and double), whatever the model's scalar: the model
/// sums a chunk of observations in S and adds it here in double.
///
/// Flat view (`for_each_span`, core/statistics.hpp): counts, sums, scatter, diagonal_scatter,
/// in that order (unused members are empty). The reference point `center` and `type` are
/// structural: statistics merged through the flat view must share them.
template <Scalar S>
struct basic_gaussian_mixture_stats {
  using scalar_type = S;
  using value_type = accumulator_t<S>;
  using vector_type = vector_t<value_type>;
  using matrix_type = matrix_t<value_type>;

  covariance_type type = covariance_type::full;
  vector_type center;            ///< reference point c the moments are taken about
  vector_type counts;            ///< K: N_k
  matrix_type sums;              ///< d x K: s_k
  matrix_type scatter;           ///< full: K d x d blocks stacked (K d x d); tied: d x d
  matrix_type diagonal_scatter;  ///< diagonal/spherical: d x K, diag of S_k

  /// Merge statistics; if the other side was taken about another reference point, its
  /// moments are shifted exactly to this one first.
  basic_gaussian_mixture_stats& operator+=(const basic_gaussian_mixture_stats& o) {
    if (counts.size() == 0) return *this = o;
    if (o.counts.size() == 0) return *this;
    detail::require(o.type == type && o.counts.size() == counts.size() && o.center.size() == center.size(),
                    "gaussian_mixture_stats::operator+=", "statistics of different mixtures (K ",
                    counts.size(), " vs ", o.counts.size(), ", d ", center.size(), " vs ", o.center.size(), ")");
    if (o.center == center) {
      add_moments(o.sums, o.scatter, o.diagonal_scatter);
    } else {
      // x - c = (x - c_o) + delta with delta = c_o - c.
      const vector_type delta = o.center - center;
      const matrix_type sums_shifted = o.sums + delta * o.counts.transpose();
      matrix_type scatter_shifted = o.scatter;
      matrix_type diag_shifted = o.diagonal_scatter;
      const Eigen::Index d = delta.size();
      if (type == covariance_type::full) {
        for (Eigen::Index k = 0; k < o.counts.size(); ++k) {
          const vector_type s = o.sums.col(k);
          scatter_shifted.middleRows(k * d, d) +=
              s * delta.transpose() + delta * s.transpose() + o.counts(k) * delta * delta.transpose();
        }
      } else if (type == covariance_type::tied) {
        const vector_type s = o.sums.rowwise().sum();
        scatter_shifted += s * delta.transpose() + delta * s.transpose() + o.counts.sum() * delta * delta.transpose();
      } else {
        diag_shifted += value_type(2) * (o.sums.array().colwise() * delta.array()).matrix() +
                        delta.array().square().matrix() * o.counts.transpose();
      }
      add_moments(sums_shifted, scatter_shifted, diag_shifted);
    }
    counts += o.counts;
    return *this;
  }

  /// Scale every statistic by w (online EM's decay).
  basic_gaussian_mixture_stats& operator*=(double w) {
    const auto v = static_cast<value_type>(w);
    counts *= v;
    sums *= v;
    scatter *= v;
    diagonal_scatter *= v;
    return *this;
  }

  /// Calls f(std::span<value_type>) for counts, sums, scatter and diagonal_scatter.
  template <class F>
  void for_each_span(F&& f) {
    visit_spans(*this, f);
  }
  /// The read-only flat view (spans of const value_type), in the same order.
  template <class F>
  void for_each_span(F&& f) const {
    visit_spans(*this, f);
  }

 private:
  template <class Self, class F>
  static void visit_spans(Self& self, F& f) {
    const auto view = [&f](auto& m) { f(std::span(m.data(), static_cast<std::size_t>(m.size()))); };
    view(self.counts);
    view(self.sums);
    view(self.scatter);
    view(self.diagonal_scatter);
  }

  void add_moments(const matrix_type& s, const matrix_type& sc, const matrix_type& dsc) {
    sums += s;
    if (scatter.size() > 0) scatter += sc;
    if (diagonal_scatter.size() > 0) diagonal_scatter += dsc;
  }
};

/// Statistics of the double-precision mixture.
using gaussian_mixture_stats = basic_gaussian_mixture_stats<double>;

}  // namespace latent
