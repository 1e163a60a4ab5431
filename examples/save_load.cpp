// Data in, model out and back: read the Old Faithful CSV, fit a two-component Gaussian
// mixture, save it as JSON, load it, and show that the loaded model predicts the same numbers
// to the last bit; then read a categorical CSV with missing cells into a Bayesian network and
// round-trip it too. Files are written to the system's temporary directory. See docs/io.md.
#include <latent/io/csv.hpp>
#include <latent/io/json.hpp>
#include <latent/solvers/em.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

int main() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path();

  // ---- numeric CSV -> mixture -> JSON -> mixture ----
  const latent::csv_table t = latent::read_csv(std::string(LATENT_EXAMPLES_DATA_DIR) + "/faithful.csv");
  std::cout << "faithful.csv: " << t.data.rows() << " variables (" << t.names[0] << ", " << t.names[1] << "), "
            << t.data.cols() << " records\n";
  latent::gaussian_mixture gmm(2, latent::covariance_type::full);
  std::mt19937_64 rng(1);
  latent::em(gmm, t.data, rng, {.restarts = 3});
  const fs::path model_file = dir / "latent_example_faithful_gmm.json";
  latent::save(gmm, model_file);
  const auto back = latent::load<latent::gaussian_mixture>(model_file);
  const double ll = gmm.log_likelihood(t.data), ll_back = back.log_likelihood(t.data);
  const bool same = ll == ll_back && gmm.labels(t.data) == back.labels(t.data) &&
                    gmm.responsibilities(t.data) == back.responsibilities(t.data);
  std::cout << "saved " << model_file.string() << " (" << fs::file_size(model_file) << " bytes)\n"
            << "log-likelihood before " << ll << ", after loading " << ll_back
            << (same ? ": identical, labels and responsibilities too\n" : ": DIFFERENT\n");

  // ---- categorical CSV with missing cells -> Bayesian network -> JSON -> network ----
  const fs::path csv_file = dir / "latent_example_weather.csv";
  std::ofstream(csv_file) << "\"\",outlook,windy,play\n"
                             "1,sunny,no,no\n2,sunny,yes,no\n3,overcast,no,yes\n4,rain,no,yes\n"
                             "5,rain,yes,no\n6,overcast,yes,yes\n7,sunny,?,no\n8,sunny,no,yes\n"
                             "9,rain,no,?\n10,sunny,yes,yes\n11,overcast,yes,yes\n12,rain,yes,no\n";
  const latent::categorical_table c = latent::read_categorical_csv(csv_file.string());
  std::cout << "weather.csv: " << c.data.cols() << " records, " << (c.data.array() == latent::missing).count()
            << " missing cells; states of 'outlook':";
  for (const auto& s : c.states[0]) std::cout << ' ' << s;
  std::cout << '\n';
  const std::vector<latent::bn_variable> vars{{"outlook", c.cardinalities()[0], {}},
                                              {"windy", c.cardinalities()[1], {}},
                                              {"play", c.cardinalities()[2], {"outlook", "windy"}}};
  latent::discrete_bayes_net net(vars, latent::discrete_bayes_net_options{.pseudo_count = 1.0});
  latent::em(net, net.make_data(c.data));
  const fs::path net_file = dir / "latent_example_weather_net.json";
  latent::save(net, net_file);
  const auto net_back = latent::load<latent::discrete_bayes_net>(net_file);
  const bool same_net = net.log_likelihood_per_observation(c.data) == net_back.log_likelihood_per_observation(c.data);
  // The row of a parent configuration is mixed radix over the parents, the last fastest.
  const auto state = [&](std::size_t v, const std::string& name) {
    return static_cast<Eigen::Index>(std::find(c.states[v].begin(), c.states[v].end(), name) - c.states[v].begin());
  };
  const Eigen::Index row = state(0, "overcast") * c.cardinalities()[1] + state(1, "no");
  std::cout << "P(play = yes | outlook = overcast, windy = no) = " << net_back.table("play")(row, state(2, "yes"))
            << "; log-likelihoods after loading " << (same_net ? "identical" : "DIFFERENT") << '\n';

  fs::remove(model_file);
  fs::remove(net_file);
  fs::remove(csv_file);
  return same && same_net ? 0 : 1;
}
