// Bayesian neural-network classification of Fashion-MNIST (Debian package `dataset-fashion-mnist`):
// a 784-100-10 ReLU network with a softmax likelihood, pixel intensities in [0, 1] as inputs
// (not standardized), prior N(0, 1) on every weight, fitted by Bayes by backprop (`sgd_elbo`,
// Adam 1e-3, batch 128, one weight draw per step, float32), against the SAME network trained by
// plain maximum likelihood (the log-likelihood is an ELBO without latent variables, so
// `sgd_elbo` trains it too, with the same optimizer and budget).
//
// It prints, for both, the test accuracy, the test negative log-likelihood per image (the BNN's
// from its predictive, the mean over 100 weight draws) and the expected calibration error
// (15 equal-width confidence bins: sum_b |B_b|/n |accuracy_b - confidence_b|), and the BNN's
// predictive entropy split into its expected (aleatoric) part and the mutual information.
//
// Usage: bayesian_mlp_fashion_mnist [--smoke] [--epochs E] [--data DIR]
//   --smoke    2000 training and 1000 test images, 2 epochs (the ctest entry); synthetic
//              images when the dataset is absent
//   --epochs   epochs for each network (default 20)
// ctest-arguments: --smoke
#include <latent/io/idx_gzip.hpp>
#include <latent/models/bayesian_mlp.hpp>
#include <latent/models/bayesian_mlp/likelihood.hpp>
#include <latent/nn/init.hpp>
#include <latent/nn/mlp.hpp>
#include <latent/solvers/sgd_elbo.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using matrix = Eigen::MatrixXf;
using vector = Eigen::VectorXf;

// The network trained by maximum likelihood: sum_n log softmax(g(x_n; w))_{y_n} as an
// objective without latent variables (value N/|B| times the batch's sum, as every ElboObjective).
class max_likelihood {
 public:
  using scalar_type = float;
  max_likelihood(const matrix& x, const matrix& y, latent::nn::basic_mlp<float> net)
      : x_(x), y_(y), net_(std::move(net)) {}
  Eigen::Index num_parameters() const { return net_.num_parameters(); }
  Eigen::Index num_observations() const { return x_.cols(); }
  template <class Rng>
  double value_and_gradient(const vector& w, latent::minibatch batch, std::size_t, vector& grad, Rng&) {
    const float c = static_cast<float>(x_.cols()) / static_cast<float>(batch.size());
    xb_ = x_(Eigen::all, batch);
    yb_ = y_(Eigen::all, batch);
    const matrix& out = net_.forward(w, xb_, ws_);
    latent::detail::bnn_log_likelihood<float>(latent::bnn_likelihood::categorical, out, yb_, {}, ll_, c, &d_out_,
                                              nullptr);
    grad.resize(w.size());
    net_.backward(w, xb_, ws_, d_out_, grad);
    return c * ll_.cast<double>().sum();
  }
  matrix probabilities(const vector& w, const matrix& x) {
    matrix p = net_.forward(w, x, ws_);
    Eigen::RowVectorXf lse(p.cols());
    latent::normalize_columns_log(p, lse);
    return p;
  }

 private:
  const matrix& x_;
  const matrix& y_;
  latent::nn::basic_mlp<float> net_;
  latent::nn::basic_mlp<float>::workspace ws_;
  matrix xb_, yb_, d_out_;
  Eigen::Array<float, 1, Eigen::Dynamic> ll_;
};

struct scores {
  double accuracy, nll, ece;
};
scores score(const matrix& p, const matrix& labels) {
  const Eigen::Index n = p.cols(), bins = 15;
  std::vector<double> count(bins, 0.0), correct(bins, 0.0), confidence(bins, 0.0);
  double hits = 0.0, nll = 0.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    Eigen::Index k;
    const double conf = p.col(j).maxCoeff(&k);
    const Eigen::Index y = static_cast<Eigen::Index>(labels(0, j));
    const double hit = k == y ? 1.0 : 0.0;
    hits += hit;
    nll -= std::log(std::max(static_cast<double>(p(y, j)), 1e-30));
    const auto b = std::min<Eigen::Index>(bins - 1, static_cast<Eigen::Index>(conf * bins));
    count[static_cast<std::size_t>(b)] += 1.0;
    correct[static_cast<std::size_t>(b)] += hit;
    confidence[static_cast<std::size_t>(b)] += conf;
  }
  double ece = 0.0;
  for (std::size_t b = 0; b < count.size(); ++b) ece += std::abs(correct[b] - confidence[b]) / static_cast<double>(n);
  return {hits / static_cast<double>(n), nll / static_cast<double>(n), ece};
}

std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name, dir + "/" + name + ".gz"})
    if (std::filesystem::exists(candidate)) return candidate;
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::size_t epochs = 20;
  std::string dir = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") smoke = true;
    else if (a == "--epochs" && i + 1 < argc) epochs = std::stoul(argv[++i]);
    else if (a == "--data" && i + 1 < argc) dir = argv[++i];
    else {
      std::fprintf(stderr, "usage: bayesian_mlp_fashion_mnist [--smoke] [--epochs E] [--data DIR]\n");
      return 2;
    }
  }
  if (smoke) epochs = 2;
  Eigen::setNbThreads(2);
  std::mt19937_64 rng(20261202);
  const Eigen::Index max_train = smoke ? 2000 : 60000, max_test = smoke ? 1000 : 10000;
  matrix train, test, train_y, test_y;
  const std::string files[] = {find_file(dir, "train-images-idx3-ubyte"), find_file(dir, "train-labels-idx1-ubyte"),
                               find_file(dir, "t10k-images-idx3-ubyte"), find_file(dir, "t10k-labels-idx1-ubyte")};
  const auto to_row = [](const std::vector<int>& l, Eigen::Index n) {
    matrix r(1, n);
    for (Eigen::Index j = 0; j < n; ++j) r(0, j) = static_cast<float>(l[static_cast<std::size_t>(j)]);
    return r;
  };
  if (!files[0].empty() && !files[1].empty() && !files[2].empty() && !files[3].empty()) {
    train = latent::read_idx_images_gz(files[0], 1.0 / 255.0).data.leftCols(max_train);
    test = latent::read_idx_images_gz(files[2], 1.0 / 255.0).data.leftCols(max_test);
    train_y = to_row(latent::read_idx_labels_gz(files[1]), train.cols());
    test_y = to_row(latent::read_idx_labels_gz(files[3]), test.cols());
    std::printf("Fashion-MNIST from %s: %ld training and %ld test images\n", dir.c_str(),
                static_cast<long>(train.cols()), static_cast<long>(test.cols()));
  } else if (smoke) {
    // Synthetic stand-in: ten classes, each a fixed random image plus noise.
    const matrix centres = latent::standard_normal<float>(784, 10, rng).array().abs().min(1.0f).matrix();
    const auto make = [&](Eigen::Index n, matrix& x, matrix& y) {
      x.resize(784, n);
      y.resize(1, n);
      for (Eigen::Index j = 0; j < n; ++j) {
        y(0, j) = static_cast<float>(j % 10);
        x.col(j) = (centres.col(j % 10) + 0.5f * latent::standard_normal<float>(784, 1, rng)).cwiseMax(0.0f).cwiseMin(1.0f);
      }
    };
    make(max_train, train, train_y);
    make(max_test, test, test_y);
    std::printf("Fashion-MNIST not found in %s: smoke run on synthetic images\n", dir.c_str());
  } else {
    std::fprintf(stderr, "Fashion-MNIST not found in %s (install dataset-fashion-mnist or pass --data DIR)\n",
                 dir.c_str());
    return 1;
  }

  const latent::sgd_elbo_options sgd{.max_epochs = epochs, .batch_size = 128, .adam = {.learning_rate = 1e-3}};
  latent::bnn_options o{.hidden = {100}, .likelihood = latent::bnn_likelihood::categorical, .num_classes = 10};
  o.standardize = false;
  o.initial_scale = 1e-3;
  latent::basic_bayesian_mlp<float> bnn(train, train_y, o);
  const auto bfit = latent::sgd_elbo(bnn, bnn.initial_params(rng), rng, sgd);
  std::printf("BNN 784-100-10: %ld weights (%ld variational parameters), %zu epochs in %.1f s, final ELBO/image %.4f\n",
              static_cast<long>(bnn.num_weights()), static_cast<long>(bnn.num_parameters()), epochs, bfit.seconds,
              bfit.trace.back() / static_cast<double>(train.cols()));
  const std::size_t draws = smoke ? 10 : 100;
  const auto pred = bnn.predict_classes(bfit.params, test, draws, rng);

  max_likelihood mle(train, train_y, bnn.network());
  vector w0(mle.num_parameters());
  latent::nn::initialize(bnn.network(), w0, rng);
  const auto mfit = latent::sgd_elbo(mle, w0, rng, sgd);
  std::printf("maximum likelihood 784-100-10: %zu epochs in %.1f s, final log-likelihood/image %.4f\n", epochs,
              mfit.seconds, mfit.trace.back() / static_cast<double>(train.cols()));

  const scores b = score(pred.probabilities, test_y), m = score(mle.probabilities(mfit.params, test), test_y);
  std::printf("%-22s %10s %10s %8s\n", "test set", "accuracy", "NLL/image", "ECE");
  std::printf("%-22s %10.4f %10.4f %8.4f\n", "BNN (predictive)", b.accuracy, b.nll, b.ece);
  std::printf("%-22s %10.4f %10.4f %8.4f\n", "maximum likelihood", m.accuracy, m.nll, m.ece);
  std::printf("BNN predictive entropy %.4f nats/image = aleatoric %.4f + mutual information (epistemic) %.4f\n",
              pred.entropy.mean(), pred.expected_entropy.mean(), pred.entropy.mean() - pred.expected_entropy.mean());
  return 0;
}
