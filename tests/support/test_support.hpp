#pragma once
// Shared test helpers: seeded engines, an Eigen matcher, and statistical critical values.

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>

namespace latent_test {

/// One engine per test case from a fixed seed, mixed with Catch's --rng-seed (0 by default)
/// so a seed sweep is one command-line flag away.
inline std::mt19937_64 make_rng(std::uint64_t test_seed) {
  std::seed_seq seq{test_seed, static_cast<std::uint64_t>(Catch::rngSeed())};
  return std::mt19937_64(seq);
}

/// ||actual - expected|| <= abs + rel * max(||actual||, ||expected||) (Frobenius norms).
class is_approx_matcher : public Catch::MatcherBase<Eigen::MatrixXd> {
 public:
  is_approx_matcher(Eigen::MatrixXd expected, double rel, double abs)
      : expected_(std::move(expected)), rel_(rel), abs_(abs) {}
  bool match(const Eigen::MatrixXd& actual) const override {
    if (actual.rows() != expected_.rows() || actual.cols() != expected_.cols()) return false;
    return (actual - expected_).norm() <= abs_ + rel_ * std::max(actual.norm(), expected_.norm());
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "is approx (rel " << rel_ << ", abs " << abs_ << ") to\n" << expected_;
    return os.str();
  }

 private:
  Eigen::MatrixXd expected_;
  double rel_, abs_;
};

inline is_approx_matcher IsApprox(const Eigen::MatrixXd& expected, double rel = 1e-9, double abs = 0.0) {
  return {expected, rel, abs};
}

/// Central finite differences, step h, of a scalar function of a vector.
inline Eigen::VectorXd numeric_gradient(const std::function<double(const Eigen::VectorXd&)>& f, Eigen::VectorXd p,
                                        double h = 1e-6) {
  Eigen::VectorXd g(p.size());
  for (Eigen::Index i = 0; i < p.size(); ++i) {
    const double p0 = p(i);
    p(i) = p0 + h;
    const double up = f(p);
    p(i) = p0 - h;
    const double down = f(p);
    p(i) = p0;
    g(i) = (up - down) / (2 * h);
  }
  return g;
}

/// Upper critical value of chi^2(dof) by Wilson-Hilferty; z = 4.753 gives a false-alarm
/// rate of about 1e-6.
inline double chi_square_critical(int dof, double z = 4.753) {
  const double k = dof, t = 1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k));
  return k * t * t * t;
}

/// The Hessian of f: R^P -> R at x by central differences, with step h(i) in coordinate i:
/// (f(x + h_i e_i + h_j e_j) - f(x + h_i e_i - h_j e_j) - f(x - h_i e_i + h_j e_j) + f(x - h_i
/// e_i - h_j e_j)) / (4 h_i h_j). Truncation O(h^2) times fourth derivatives, rounding
/// O(eps |f| / (h_i h_j)).
template <class F>
Eigen::MatrixXd finite_difference_hessian(F&& f, const Eigen::VectorXd& x, const Eigen::VectorXd& h) {
  const Eigen::Index p = x.size();
  Eigen::MatrixXd out(p, p);
  const auto at = [&](Eigen::Index i, double si, Eigen::Index j, double sj) {
    Eigen::VectorXd y = x;
    y(i) += si * h(i);
    y(j) += sj * h(j);
    return f(y);
  };
  for (Eigen::Index i = 0; i < p; ++i)
    for (Eigen::Index j = 0; j <= i; ++j)
      out(i, j) = out(j, i) = (at(i, 1, j, 1) - at(i, 1, j, -1) - at(i, -1, j, 1) + at(i, -1, j, -1)) / (4.0 * h(i) * h(j));
  return out;
}

}  // namespace latent_test
