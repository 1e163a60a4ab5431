// A minimal consumer: fits a two-component mixture through the umbrella header.
#include <latent/latent.hpp>

#include <iostream>
#include <random>

int main() {
  std::mt19937_64 rng(1);
  Eigen::MatrixXd x = latent::standard_normal(2, 400, rng);
  x.rightCols(200).array() += 6.0;
  latent::gaussian_mixture gmm(2, latent::covariance_type::full);
  const auto fit = latent::em(gmm, x, rng, {.restarts = 2});
  std::cout << "latent " << latent::version << ": " << to_string(fit.status) << ", log-likelihood "
            << fit.objective << '\n';
  return fit.converged() && fit.decreases == 0 ? 0 : 1;
}
