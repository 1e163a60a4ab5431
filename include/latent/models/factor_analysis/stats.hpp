#pragma once
/// @file
/// Expected sufficient statistics of factor analysis: additive, scalable, with a flat view.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <span>

namespace latent {

/// Expected sufficient statistics of factor analysis, taken about `reference` (y = x -
/// reference), in `accumulator_t<S>` (double for float and double models): each E-step block
/// is computed in S and added here in double.
///
/// Flat view (`for_each_span`): weight, sum_y, sum_yy, sum_yz, sum_z, sum_zz, in that order;
/// `reference` is structural (not in the view): statistics merged through the view must come
/// from the same `zero_stats()`.
template <Scalar S>
struct basic_factor_analysis_stats {
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using A = accumulator_type;

  vector_t<A> reference;  ///< r, d: the point the moments are taken about
  A weight = 0;           ///< W = sum w_n
  vector_t<A> sum_y;      ///< d: sum w_n y_n
  vector_t<A> sum_yy;     ///< d: sum w_n y_n^2 (elementwise; the diagonal of the second moment)
  matrix_t<A> sum_yz;     ///< d x k: sum w_n y_n E[z_n]^T
  vector_t<A> sum_z;      ///< k: sum w_n E[z_n]
  matrix_t<A> sum_zz;     ///< k x k: sum w_n E[z_n z_n^T] (posterior covariance included)

  /// Merge statistics; moments about another reference point are shifted exactly first.
  basic_factor_analysis_stats& operator+=(const basic_factor_analysis_stats& o) {
    if (reference.size() == 0) return *this = o;
    if (o.reference.size() == 0) return *this;
    detail::require(o.reference.size() == reference.size() && o.sum_z.size() == sum_z.size(),
                    "factor_analysis_stats::operator+=", "statistics of different models (d ", reference.size(),
                    " vs ", o.reference.size(), ", k ", sum_z.size(), " vs ", o.sum_z.size(), ")");
    if (o.reference == reference) {
      sum_y += o.sum_y;
      sum_yy += o.sum_yy;
      sum_yz += o.sum_yz;
    } else {
      // x - r = (x - r_o) + delta, delta = r_o - r.
      const vector_t<A> delta = o.reference - reference;
      sum_y += o.sum_y + o.weight * delta;
      sum_yy += o.sum_yy + (A(2) * delta.array() * o.sum_y.array() + o.weight * delta.array().square()).matrix();
      sum_yz += o.sum_yz + delta * o.sum_z.transpose();
    }
    weight += o.weight;
    sum_z += o.sum_z;
    sum_zz += o.sum_zz;
    return *this;
  }

  /// Scale every statistic by w (online EM's decay); the reference point is unchanged.
  basic_factor_analysis_stats& operator*=(double w) {
    const A a = static_cast<A>(w);
    weight *= a;
    sum_y *= a;
    sum_yy *= a;
    sum_yz *= a;
    sum_z *= a;
    sum_zz *= a;
    return *this;
  }

  /// The additive numbers, in a fixed order (see the file comment of core/statistics.hpp).
  template <class F>
  void for_each_span(F&& f) {
    visit_spans<A>(*this, f);
  }
  template <class F>
  void for_each_span(F&& f) const {
    visit_spans<const A>(*this, f);
  }

 private:
  template <class T, class Self, class F>
  static void visit_spans(Self& s, F& f) {
    const auto span_of = [](auto& m) { return std::span<T>(m.data(), static_cast<std::size_t>(m.size())); };
    f(std::span<T>(&s.weight, 1));
    f(span_of(s.sum_y));
    f(span_of(s.sum_yy));
    f(span_of(s.sum_yz));
    f(span_of(s.sum_z));
    f(span_of(s.sum_zz));
  }
};
using factor_analysis_stats = basic_factor_analysis_stats<double>;

}  // namespace latent
