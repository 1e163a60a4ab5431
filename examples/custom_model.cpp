// Write your own EM model in four steps: a mixture of Poisson distributions for counts.
// This file is the code of docs/extending.md; it is compiled and run by the test suite.
//
//   c_n ~ Categorical(pi),   x_n | c_n = k ~ Poisson(lambda_k)
#include <latent/latent.hpp>

#include <cmath>
#include <cstdio>
#include <random>

// Step 1: parameters, an aggregate of public members.
struct poisson_mixture_params {
  Eigen::VectorXd weights;  // K mixing proportions
  Eigen::VectorXd rates;    // K Poisson rates
};

// Step 2: expected sufficient statistics, additive (+=) and scalable (*=).
// For component k: N_k = sum_n r_nk and S_k = sum_n r_nk x_n.
struct poisson_mixture_stats {
  Eigen::VectorXd counts, sums;
  poisson_mixture_stats& operator+=(const poisson_mixture_stats& o) {
    counts += o.counts;
    sums += o.sums;
    return *this;
  }
  poisson_mixture_stats& operator*=(double w) {
    counts *= w;
    sums *= w;
    return *this;
  }
};

// Step 3: the model: an E-step over a block of columns that adds statistics and returns the
// block's log-likelihood, and an M-step from statistics.
class poisson_mixture {
 public:
  using data_type = latent::observations;  // 1 x N counts, one observation per column
  using params_type = poisson_mixture_params;
  using stats_type = poisson_mixture_stats;

  explicit poisson_mixture(params_type p) : p_(std::move(p)) {}

  const params_type& params() const { return p_; }
  void set_params(const params_type& p) { p_ = p; }
  Eigen::Index num_observations(const data_type& x) const { return x.size(); }
  stats_type zero_stats() const {
    return {Eigen::VectorXd::Zero(p_.rates.size()), Eigen::VectorXd::Zero(p_.rates.size())};
  }

  double e_step(const data_type& x, Eigen::Index begin, Eigen::Index end, stats_type& s) const {
    const Eigen::Index b = end - begin;
    const Eigen::ArrayXd xs = x.x().row(0).segment(begin, b).transpose().array();
    const Eigen::ArrayXd log_factorial = xs.unaryExpr([](double v) { return std::lgamma(v + 1.0); });
    // log pi_k + x log lambda_k - lambda_k - log x!, as a K x B block.
    Eigen::MatrixXd log_r = (p_.rates.array().log().matrix() * xs.matrix().transpose());
    log_r.colwise() += (p_.weights.array().log() - p_.rates.array()).matrix();
    log_r.rowwise() -= log_factorial.matrix().transpose();
    Eigen::RowVectorXd lse(b);
    latent::normalize_columns_log(log_r, lse);  // log_r now holds responsibilities
    s.counts += log_r.rowwise().sum();
    s.sums += log_r * xs.matrix();
    return lse.sum();
  }

  void m_step(const stats_type& s) {
    if (!(s.counts.array() > 0.0).all()) throw latent::numerical_error("poisson_mixture: an empty component");
    p_.weights = s.counts / s.counts.sum();
    p_.rates = s.sums.cwiseQuotient(s.counts);
  }

 private:
  params_type p_;
};

// Step 4: check the contract at compile time.
static_assert(latent::EMModel<poisson_mixture>);

int main() {
  // Simulate 5000 counts from weights (0.3, 0.7) and rates (2, 9).
  std::mt19937_64 rng(11);
  std::bernoulli_distribution second(0.7);
  std::poisson_distribution<int> low(2.0), high(9.0);
  Eigen::RowVectorXd x(5000);
  for (Eigen::Index n = 0; n < x.size(); ++n) x(n) = second(rng) ? high(rng) : low(rng);

  poisson_mixture model({Eigen::Vector2d(0.5, 0.5), Eigen::Vector2d(1.0, 5.0)});
  const auto fit = latent::em(model, x, {.tolerance = 1e-10});
  std::printf("%s after %zu iterations, log-likelihood %.4f, %zu decreases\n",
              std::string(latent::to_string(fit.status)).c_str(), fit.iterations, fit.objective, fit.decreases);
  std::printf("weights %.3f %.3f, rates %.3f %.3f (truth 0.3 0.7, 2 9)\n", fit.params.weights(0),
              fit.params.weights(1), fit.params.rates(0), fit.params.rates(1));
  return fit.converged() && fit.decreases == 0 ? 0 : 1;
}
