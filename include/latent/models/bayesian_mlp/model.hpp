#pragma once
/// @file
/// `latent::basic_bayesian_mlp<S>`: a Bayesian MLP fitted by Bayes by backprop, as an
/// `ElboObjective` (with a value-only path) for `sgd_elbo`, and its posterior predictive on new
/// inputs. See models/bayesian_mlp.hpp for the mathematics.

#include <latent/core/chunks.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/bayesian_mlp/likelihood.hpp>
#include <latent/models/bayesian_mlp/options.hpp>
#include <latent/models/bayesian_mlp/prediction.hpp>
#include <latent/models/bayesian_mlp/prior.hpp>
#include <latent/nn/activation.hpp>
#include <latent/nn/init.hpp>
#include <latent/nn/mlp.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// A Bayesian MLP over N training pairs (x_n, y_n), the columns of x (d x N) and y (m x N
/// targets, or a 1 x N row of class labels 0..K-1 for `categorical`), in scalar type `S`.
///
/// The data are COPIED (standardized, see `bnn_options::standardize`): the objective owns
/// them. `value_and_gradient` and `value` reuse buffers held by the object (non-const; one
/// object must not train from two threads at once) and split a minibatch into chunks of 64
/// columns run on `Eigen::nbThreads()` OpenMP threads, added in chunk order (the same bits
/// for any thread count). Prediction is const and thread-safe.
template <Scalar S>
class basic_bayesian_mlp {
 public:
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using vector_type = vector_t<S>;
  using matrix_type = matrix_t<S>;
  using array_type = array_t<S>;
  using row_array = Eigen::Array<S, 1, Eigen::Dynamic>;
  using network_type = nn::basic_mlp<S>;
  using regression_prediction = basic_bnn_regression_prediction<S>;
  using class_prediction = basic_bnn_class_prediction<S>;

  /// @param x        inputs, d x N, observations are columns, finite
  /// @param y        targets, m x N, finite (regression); or a 1 x N row of class labels, whole
  ///                 numbers in [0, K) (categorical)
  /// @param options  see `bnn_options`
  /// @throws invalid_argument for empty or non-finite data, x and y with different numbers of
  ///         columns, labels that are not classes, fewer than 2 classes, or invalid options
  basic_bayesian_mlp(const Eigen::Ref<const matrix_type>& x, const Eigen::Ref<const matrix_type>& y,
                     bnn_options options = {})
      : options_(std::move(options)) {
    constexpr std::string_view fn = "bayesian_mlp";
    detail::validate_bnn_options(options_, fn);
    require(x.rows() >= 1 && x.cols() >= 1, fn, "argument 'x' must have at least 1 row and 1 column, got ", x.rows(),
            " x ", x.cols());
    require_finite(x, fn, "x");
    require(y.cols() == x.cols(), fn, "arguments 'x' and 'y' must have the same number of columns (observations), got ",
            x.cols(), " and ", y.cols());
    if (categorical()) {
      require(y.rows() == 1, fn, "argument 'y' must be a 1 x N row of class labels for a categorical likelihood, got ",
              y.rows(), " rows");
      require_finite(y, fn, "y");
      Eigen::Index k = options_.num_classes;
      if (k == 0) k = static_cast<Eigen::Index>(y.maxCoeff()) + 1;
      require(k >= 2, fn, "a categorical likelihood needs at least 2 classes, got labels up to ", y.maxCoeff());
      targets_ = k;
      check_labels(y, fn, "y");
    } else {
      require(y.rows() >= 1, fn, "argument 'y' must have at least 1 row");
      require_finite(y, fn, "y");
      targets_ = y.rows();
    }
    x_shift_ = array_type::Zero(x.rows());
    x_scale_ = array_type::Ones(x.rows());
    y_shift_ = array_type::Zero(categorical() ? 0 : y.rows());
    y_scale_ = array_type::Ones(categorical() ? 0 : y.rows());
    if (options_.standardize) {
      moments(x, x_shift_, x_scale_);
      if (!categorical()) moments(y, y_shift_, y_scale_);
    }
    x_ = ((x.array().colwise() - x_shift_).colwise() / x_scale_).matrix();
    y_ = categorical() ? matrix_type(y) : matrix_type(((y.array().colwise() - y_shift_).colwise() / y_scale_).matrix());
    const Eigen::Index outputs = options_.likelihood == bnn_likelihood::heteroscedastic_gaussian ? 2 * targets_ : targets_;
    net_ = network_type(detail::bnn_layout(x.rows(), outputs, options_));
  }

  /// A model for prediction only, from a trained one (`fitted`, or a loaded file): `predict`,
  /// `predict_classes`, `log_likelihood`, `weight_mean`, `weight_scale` and `noise_variance`
  /// give what the training model gave for the same parameters and engine state, bit for bit.
  /// It holds no training data: `value_and_gradient` and `value` throw `invalid_argument`.
  /// @throws invalid_argument for invalid options, dimensions inconsistent with the
  ///         likelihood, standardization arrays of the wrong size, non-finite or non-positive
  ///         scales, or parameters of the wrong length or not finite
  explicit basic_bayesian_mlp(const basic_fitted_bayesian_mlp<S>& fitted) : options_(fitted.options) {
    constexpr std::string_view fn = "bayesian_mlp";
    detail::validate_bnn_options(options_, fn);
    const Eigen::Index d = fitted.input_dim, m = fitted.output_dim;
    require(d >= 1, fn, "the fitted model's 'input_dim' must be >= 1, got ", d);
    if (categorical()) {
      require(m >= 2, fn, "a categorical model's 'output_dim' (classes) must be >= 2, got ", m);
      require(options_.num_classes == 0 || options_.num_classes == m, fn, "option 'num_classes' (",
              options_.num_classes, ") differs from the fitted model's 'output_dim' (", m, ")");
    } else {
      require(m >= 1, fn, "the fitted model's 'output_dim' must be >= 1, got ", m);
    }
    const Eigen::Index ym = categorical() ? 0 : m;
    const auto check_standardization = [&](const array_type& shift, const array_type& scale, Eigen::Index size,
                                           std::string_view which) {
      require(shift.size() == size && scale.size() == size, fn, "the fitted model's '", which,
              "_shift' and '", which, "_scale' must have ", size, " entries, got ", shift.size(), " and ",
              scale.size());
      require_finite(shift, fn, concat(which, "_shift"));
      require_finite(scale, fn, concat(which, "_scale"));
      require((scale > S(0)).all(), fn, "the fitted model's '", which, "_scale' must be positive");
    };
    check_standardization(fitted.input_shift, fitted.input_scale, d, "input");
    check_standardization(fitted.target_shift, fitted.target_scale, ym, "target");
    targets_ = m;
    x_shift_ = fitted.input_shift;
    x_scale_ = fitted.input_scale;
    y_shift_ = fitted.target_shift;
    y_scale_ = fitted.target_scale;
    x_.resize(d, 0);
    y_.resize(categorical() ? 1 : m, 0);
    const Eigen::Index outputs = options_.likelihood == bnn_likelihood::heteroscedastic_gaussian ? 2 * m : m;
    net_ = network_type(detail::bnn_layout(d, outputs, options_));
    check_params(fitted.params.size(), fn);
    require_finite(fitted.params, fn, "params");
  }

  /// What prediction needs from this model and trained parameters `params` (copied), for
  /// saving (io/json.hpp) or for `basic_bayesian_mlp(fitted)`.
  /// @throws invalid_argument for parameters of the wrong length or not finite
  basic_fitted_bayesian_mlp<S> fitted(const vector_type& params) const {
    constexpr std::string_view fn = "bayesian_mlp::fitted";
    check_params(params.size(), fn);
    require_finite(params, fn, "params");
    return {input_dim(), output_dim(), options_, x_shift_, x_scale_, y_shift_, y_scale_, params};
  }

  Eigen::Index input_dim() const { return x_.rows(); }
  /// m (regression targets) or K (classes).
  Eigen::Index output_dim() const { return targets_; }
  Eigen::Index num_observations() const { return x_.cols(); }
  /// P, the number of weights and biases (each with its own mean and scale in q).
  Eigen::Index num_weights() const { return net_.num_parameters(); }
  /// 2 P + the learned log noise variances (m for `gaussian` with `learn_noise`, else 0).
  Eigen::Index num_parameters() const { return 2 * num_weights() + num_noise_parameters(); }
  Eigen::Index num_noise_parameters() const {
    return options_.likelihood == bnn_likelihood::gaussian && options_.learn_noise ? targets_ : 0;
  }
  const bnn_options& options() const { return options_; }
  /// The network whose weights are random (its layout views mu and rho: nn/layout.hpp).
  const network_type& network() const { return net_; }
  /// The standardization x_std = (x - shift) / scale per input row, and the same per target
  /// row (empty for categorical). All shifts 0 and scales 1 without `standardize`.
  const array_type& input_shift() const { return x_shift_; }
  const array_type& input_scale() const { return x_scale_; }
  const array_type& target_shift() const { return y_shift_; }
  const array_type& target_scale() const { return y_scale_; }

  /// The means mu of q(w) (P), on the standardized scale.
  vector_type weight_mean(const vector_type& params) const {
    check_params(params.size(), "bayesian_mlp::weight_mean");
    return params.head(num_weights());
  }
  /// The standard deviations sigma = softplus(rho) of q(w) (P).
  vector_type weight_scale(const vector_type& params) const {
    check_params(params.size(), "bayesian_mlp::weight_scale");
    return softplus(params.segment(num_weights(), num_weights()).array()).matrix();
  }
  /// The noise variances of a `gaussian` likelihood on the original scale of the targets (m).
  /// @throws invalid_argument for the other likelihoods
  array_type noise_variance(const vector_type& params) const {
    constexpr std::string_view fn = "bayesian_mlp::noise_variance";
    check_params(params.size(), fn);
    require(options_.likelihood == bnn_likelihood::gaussian, fn, "only a 'gaussian' likelihood has a global noise variance");
    return log_noise(params).exp() * y_scale_.square();
  }

  /// A starting point: the means from `nn::initialize` (He normal for ReLU-like hidden
  /// layers, Glorot uniform otherwise, zero biases), every scale sigma = `initial_scale`
  /// (rho = log(e^sigma - 1)), log noise variances log(`noise_variance`).
  template <std::uniform_random_bit_generator Rng>
  vector_type initial_params(Rng& rng) const {
    vector_type v(num_parameters());
    nn::initialize(net_, v.head(num_weights()), rng);
    v.segment(num_weights(), num_weights()).setConstant(static_cast<S>(std::log(std::expm1(options_.initial_scale))));
    v.tail(num_noise_parameters()).setConstant(static_cast<S>(std::log(options_.noise_variance)));
    return v;
  }

  // ---------------------------------------------------------------------------------------
  // ElboObjective
  // ---------------------------------------------------------------------------------------

  /// Unbiased estimate of the full-data ELBO, sum_n E_q[log p(y_n | x_n, w)] - KL(q || p), from
  /// the minibatch `batch` with S = `num_samples` weight draws shared by the batch's columns
  /// (with `local_reparameterization`, S pre-activation draws per column instead), and its
  /// gradient in `grad` (resized to P):
  ///   value = N / (|B| S) sum_{s, n in B} log p(y_n | x_n, w_s) - KL,
  /// the KL counted once (analytic for a Gaussian prior, the mean of S single-draw estimates
  /// for the scale mixture).
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type& grad,
                            Rng& rng) {
    return estimate(params, batch, num_samples, &grad, rng, "bayesian_mlp::value_and_gradient");
  }

  /// The estimate `value_and_gradient` returns for the same arguments and engine state,
  /// without the backward pass.
  template <std::uniform_random_bit_generator Rng>
  double value(const vector_type& params, minibatch batch, std::size_t num_samples, Rng& rng) {
    return estimate(params, batch, num_samples, nullptr, rng, "bayesian_mlp::value");
  }

  // ---------------------------------------------------------------------------------------
  // Prediction on new inputs (original scale; const, thread-safe)
  // ---------------------------------------------------------------------------------------

  /// The regression predictive at the columns of `x` (d x n, original scale) from `draws`
  /// weight draws w ~ q: means, epistemic and aleatoric variances on the original scale of y.
  /// @throws invalid_argument for a categorical model, a wrong parameter length, an x with the
  ///         wrong number of rows or non-finite entries, or draws < 1
  template <std::uniform_random_bit_generator Rng>
  regression_prediction predict(const vector_type& params, const Eigen::Ref<const matrix_type>& x, std::size_t draws,
                                Rng& rng) const {
    constexpr std::string_view fn = "bayesian_mlp::predict";
    require(!categorical(), fn, "a categorical model predicts classes: use predict_classes");
    using A = accumulator_type;
    const Eigen::Index m = targets_, n = x.cols();
    matrix_t<A> sum_mean = matrix_t<A>::Zero(m, n), sum_sq = sum_mean, sum_var = sum_mean;
    const array_type v = log_noise(params);
    for_each_draw(params, x, draws, rng, fn, [&](const matrix_type& out) {
      const matrix_t<A> mu = out.topRows(m).template cast<A>();
      sum_mean += mu;
      sum_sq += mu.cwiseAbs2();
      if (options_.likelihood == bnn_likelihood::gaussian)
        sum_var.colwise() += v.exp().template cast<A>().matrix();
      else
        sum_var += out.bottomRows(m).array().exp().matrix().template cast<A>();
    });
    const A t = static_cast<A>(draws);
    const matrix_t<A> mean = sum_mean / t;
    const array_t<A> s = y_scale_.template cast<A>(), s2 = s.square();
    regression_prediction p;
    p.mean = ((mean.array().colwise() * s).colwise() + y_shift_.template cast<A>()).matrix().template cast<S>();
    p.epistemic_variance =
        ((sum_sq / t - mean.cwiseAbs2()).array().max(A(0)).colwise() * s2).matrix().template cast<S>();
    p.aleatoric_variance = ((sum_var / t).array().colwise() * s2).matrix().template cast<S>();
    return p;
  }

  /// The classification predictive at the columns of `x` (d x n) from `draws` weight draws.
  /// @throws invalid_argument for a regression model or bad arguments (as `predict`)
  template <std::uniform_random_bit_generator Rng>
  class_prediction predict_classes(const vector_type& params, const Eigen::Ref<const matrix_type>& x,
                                   std::size_t draws, Rng& rng) const {
    constexpr std::string_view fn = "bayesian_mlp::predict_classes";
    require(categorical(), fn, "only a categorical model predicts classes: use predict");
    using A = accumulator_type;
    const Eigen::Index n = x.cols();
    matrix_t<A> sum_p = matrix_t<A>::Zero(targets_, n);
    Eigen::Array<A, 1, Eigen::Dynamic> sum_h = Eigen::Array<A, 1, Eigen::Dynamic>::Zero(n);
    for_each_draw(params, x, draws, rng, fn, [&](const matrix_type& out) {
      matrix_type p = out;
      row_array lse(n);
      normalize_columns_log(p, lse);
      sum_p += p.template cast<A>();
      // H[p_t] = lse - sum_k p_k g_k
      sum_h += (lse - (p.array() * out.array()).colwise().sum()).template cast<A>();
    });
    const A t = static_cast<A>(draws);
    const matrix_t<A> p = sum_p / t;
    class_prediction c;
    c.probabilities = p.template cast<S>();
    c.entropy = (-(p.array() * p.array().max(std::numeric_limits<A>::min()).log()).colwise().sum()).template cast<S>();
    c.expected_entropy = (sum_h / t).template cast<S>();
    return c;
  }

  /// The per-observation test log-likelihood log p(y_j | x_j, D) ~ log (1/T) sum_t p(y_j | x_j,
  /// w_t) (log-mean-exp over T = `draws` weight draws), on the ORIGINAL scale of y (the
  /// standardization's Jacobian, -sum_i log scale_i, included). Biased low for finite T
  /// (Jensen), consistent as T grows.
  /// @param x  d x n inputs; @param y  m x n targets or a 1 x n row of labels
  /// @return a row of n values, in the accumulation precision
  /// @throws invalid_argument for bad arguments (as the constructor and `predict`)
  template <std::uniform_random_bit_generator Rng>
  Eigen::Array<accumulator_type, 1, Eigen::Dynamic> log_likelihood(const vector_type& params,
                                                                   const Eigen::Ref<const matrix_type>& x,
                                                                   const Eigen::Ref<const matrix_type>& y,
                                                                   std::size_t draws, Rng& rng) const {
    constexpr std::string_view fn = "bayesian_mlp::log_likelihood";
    using A = accumulator_type;
    require(y.cols() == x.cols(), fn, "arguments 'x' and 'y' must have the same number of columns, got ", x.cols(),
            " and ", y.cols());
    require_finite(y, fn, "y");
    if (categorical()) {
      require(y.rows() == 1, fn, "argument 'y' must be a 1 x n row of labels, got ", y.rows(), " rows");
      check_labels(y, fn, "y");
    } else {
      require_rows(y, targets_, fn, "y");
    }
    const matrix_type ys =
        categorical() ? matrix_type(y) : matrix_type(((y.array().colwise() - y_shift_).colwise() / y_scale_).matrix());
    const array_type v = log_noise(params);
    matrix_t<A> ll(static_cast<Eigen::Index>(draws), x.cols());
    Eigen::Index t = 0;
    row_array row;
    for_each_draw(params, x, draws, rng, fn, [&](const matrix_type& out) {
      detail::bnn_log_likelihood<S>(options_.likelihood, out, ys, v, row, S(1), nullptr, nullptr);
      ll.row(t++) = row.template cast<A>().matrix();
    });
    const Eigen::Array<A, 1, Eigen::Dynamic> top = ll.colwise().maxCoeff().array();
    const Eigen::Array<A, 1, Eigen::Dynamic> lme =
        top + ((ll.array().rowwise() - top).exp().colwise().sum() / static_cast<A>(draws)).log();
    return lme - y_scale_.template cast<A>().log().sum();
  }

 private:
  bool categorical() const { return options_.likelihood == bnn_likelihood::categorical; }

  static array_type softplus(const array_type& rho) { return rho.max(S(0)) + (-rho.abs()).exp().log1p(); }

  /// The log noise variances of a gaussian likelihood (learned or fixed; empty otherwise).
  array_type log_noise(const vector_type& params) const {
    if (options_.likelihood != bnn_likelihood::gaussian) return array_type();
    if (options_.learn_noise) return params.tail(targets_).array();
    return array_type::Constant(targets_, static_cast<S>(std::log(options_.noise_variance)));
  }

  /// Row means and (population) standard deviations; a constant row gets scale 1.
  static void moments(const Eigen::Ref<const matrix_type>& a, array_type& shift, array_type& scale) {
    using A = accumulator_type;
    const matrix_t<A> ad = a.template cast<A>();
    const array_t<A> mean = ad.rowwise().mean().array();
    const array_t<A> sd = ((ad.array().colwise() - mean).square().rowwise().sum() / static_cast<A>(a.cols())).sqrt();
    shift = mean.template cast<S>();
    scale = (sd > A(0) && sd.isFinite()).select(sd, A(1)).template cast<S>();
    for (Eigen::Index i = 0; i < scale.size(); ++i)
      if (!(scale(i) > S(0))) scale(i) = S(1);  // a spread below the scalar's range
  }

  template <class Derived>
  void check_labels(const Eigen::DenseBase<Derived>& y, std::string_view fn, std::string_view name) const {
    for (Eigen::Index j = 0; j < y.cols(); ++j) {
      const S c = y(0, j);
      if (!(c >= S(0) && c < static_cast<S>(targets_) && c == std::floor(c)))
        throw_invalid(fn, "argument '", name, "' must hold class labels 0..", targets_ - 1, ", but entry ", j, " is ",
                      static_cast<double>(c));
    }
  }

  void check_params(Eigen::Index size, std::string_view fn) const {
    require(size == num_parameters(), fn, "argument 'params' must have num_parameters() = ", num_parameters(),
            " entries, got ", size);
  }

  /// Calls `f(out)` with the network's output at the standardized columns of `x` for each of
  /// `draws` weight draws w = mu + sigma (.) eps.
  template <class Rng, class F>
  void for_each_draw(const vector_type& params, const Eigen::Ref<const matrix_type>& x, std::size_t draws, Rng& rng,
                     std::string_view fn, const F& f) const {
    check_params(params.size(), fn);
    require_rows(x, input_dim(), fn, "x");
    require_finite(x, fn, "x");
    require_count(draws, 1, max_sample_count, fn, "draws");
    const matrix_type xs = ((x.array().colwise() - x_shift_).colwise() / x_scale_).matrix();
    const array_type mu = params.head(num_weights()).array();
    const array_type sigma = softplus(params.segment(num_weights(), num_weights()).array());
    vector_type eps(num_weights()), w(num_weights());
    typename network_type::workspace ws;
    for (std::size_t t = 0; t < draws; ++t) {
      fill_standard_normal(eps, rng);
      w = (mu + sigma * eps.array()).matrix();
      f(net_.forward(w, xs, ws));
    }
  }

  /// Buffers of one chunk of the training path, reused across steps.
  struct chunk {
    matrix_type xb, yb, d_out;
    row_array ll;
    vector_type grad, grad_var;  // d/dw (or d/dmean of the pre-activations' weights) and d/dsigma^2
    array_type g_noise;
    typename network_type::workspace ws;
    std::vector<matrix_type> h, sd, delta;  // local reparameterization: layer inputs, sqrt(var), scratch
    double value = 0.0;
  };
  static constexpr Eigen::Index chunk_columns = 64;

  /// The minibatch estimate, and its gradient into `*grad` unless `grad` is null (the value is
  /// the same code for both, so `value` equals `value_and_gradient`'s value bit for bit).
  template <class Rng>
  double estimate(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type* grad, Rng& rng,
                  std::string_view fn) {
    using A = accumulator_type;
    require(num_observations() > 0, fn,
            "this model was made from a fitted model for prediction and holds no training data");
    check_params(params.size(), fn);
    detail::require_minibatch(batch, num_observations(), num_samples, fn);
    const Eigen::Index p = num_weights(), b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index count = (b + chunk_columns - 1) / chunk_columns;
    const int threads = detail::chunk_threads(count);
    const bool local = options_.local_reparameterization;
    const bool mixture = options_.prior.mixture_weight < 1.0;
    const A c_all = static_cast<A>(num_observations()) / static_cast<A>(b * static_cast<Eigen::Index>(num_samples));
    const S c = static_cast<S>(c_all);
    const array_type mu = params.head(p).array();
    const array_type rho = params.segment(p, p).array();
    sigma_ = softplus(rho);
    if (local) var_ = sigma_.square().matrix();
    const array_type v = log_noise(params);
    if (static_cast<Eigen::Index>(chunks_.size()) < count) chunks_.resize(static_cast<std::size_t>(count));
    for (Eigen::Index i = 0; i < count; ++i) {  // the chunks' columns (serial: cheap gathers)
      chunk& ch = chunks_[static_cast<std::size_t>(i)];
      const Eigen::Index j0 = i * chunk_columns, len = std::min(chunk_columns, b - j0);
      const minibatch cols = batch.subspan(static_cast<std::size_t>(j0), static_cast<std::size_t>(len));
      ch.xb = x_(Eigen::all, cols);
      ch.yb = y_(Eigen::all, cols);
    }
    const bool want = grad != nullptr;
    if (want) {
      g_mu_ = array_type::Zero(p);
      g_sigma_ = array_type::Zero(p);
      g_noise_ = array_type::Zero(v.size());
    }
    A value = 0;
    eps_.resize(p);
    for (std::size_t s = 0; s < num_samples; ++s) {
      if (local) {
        draw_layer_noise(b, rng);
      }
      if (!local || mixture) {
        fill_standard_normal(eps_, rng);
        w_ = (mu + sigma_ * eps_.array()).matrix();
      }
      detail::run_chunks(count, threads, [&](Eigen::Index i) {
        chunk& ch = chunks_[static_cast<std::size_t>(i)];
        if (local)
          ch.value = local_chunk(params, i, c, v, want, ch);
        else
          ch.value = weight_draw_chunk(c, v, want, ch);
      });
      for (Eigen::Index i = 0; i < count; ++i) value += chunks_[static_cast<std::size_t>(i)].value;
      if (want) {
        vector_type& g0 = chunks_[0].grad;
        detail::add_chunk_vectors<S>(g0, count, threads, [&](Eigen::Index i) -> const vector_type& {
          return chunks_[static_cast<std::size_t>(i)].grad;
        });
        g_mu_ += g0.array();
        if (local) {
          vector_type& gv = chunks_[0].grad_var;
          detail::add_chunk_vectors<S>(gv, count, threads, [&](Eigen::Index i) -> const vector_type& {
            return chunks_[static_cast<std::size_t>(i)].grad_var;
          });
          g_sigma_ += S(2) * gv.array() * sigma_;  // d sigma^2 / d sigma = 2 sigma
        } else {
          g_sigma_ += g0.array() * eps_.array();  // w = mu + sigma eps
        }
        for (Eigen::Index i = 0; i < count; ++i) g_noise_ += chunks_[static_cast<std::size_t>(i)].g_noise;
      }
      if (mixture) {
        // KL ~ log q(w) - log p(w), averaged over the S draws.
        const S inv_s = S(1) / static_cast<S>(num_samples);
        const A log_p = detail::mixture_log_prior<S>(w_.array(), options_.prior, dlogp_);
        const A log_q = -static_cast<A>(p) * A(0.5) * static_cast<A>(log_two_pi) -
                        sigma_.log().template cast<A>().sum() - A(0.5) * eps_.template cast<A>().squaredNorm();
        value -= (log_q - log_p) / static_cast<A>(num_samples);
        if (want) {
          g_mu_ += inv_s * dlogp_;
          g_sigma_ += inv_s * (dlogp_ * eps_.array() + sigma_.inverse());
        }
      }
    }
    if (!mixture) {
      value -= detail::gaussian_prior_kl<S>(mu, sigma_, options_.prior.scale);
      if (want) detail::subtract_gaussian_prior_kl_gradient<S>(mu, sigma_, options_.prior.scale, g_mu_, g_sigma_);
    }
    if (want) {
      grad->resize(num_parameters());
      grad->head(p) = g_mu_.matrix();
      grad->segment(p, p) = (g_sigma_ * rho.logistic()).matrix();  // d softplus(rho) / d rho = sigmoid(rho)
      grad->tail(num_noise_parameters()) = g_noise_.head(num_noise_parameters()).matrix();
    }
    return static_cast<double>(value);
  }

  /// One chunk with the shared weight draw w_: forward, likelihood, backward into ch.grad.
  double weight_draw_chunk(S c, const array_type& v, bool want, chunk& ch) const {
    const matrix_type& out = net_.forward(w_, ch.xb, ch.ws);
    if (want) ch.g_noise = array_type::Zero(v.size());
    detail::bnn_log_likelihood<S>(options_.likelihood, out, ch.yb, v, ch.ll, c, want ? &ch.d_out : nullptr,
                                  want && options_.learn_noise ? &ch.g_noise : nullptr);
    if (want) {
      ch.grad.resize(num_weights());
      net_.backward(w_, ch.xb, ch.ws, ch.d_out, ch.grad, nn::gradient_mode::overwrite, nullptr);
    }
    return static_cast<double>(static_cast<accumulator_type>(c) * ch.ll.template cast<accumulator_type>().sum());
  }

  /// Standard-normal noise of every layer's pre-activations for the whole batch (layer l:
  /// n_{l+1} x |B|), drawn before the chunks run so the draws do not depend on threads.
  template <class Rng>
  void draw_layer_noise(Eigen::Index b, Rng& rng) {
    const auto& layout = net_.layout();
    layer_eps_.resize(static_cast<std::size_t>(layout.num_layers()));
    for (Eigen::Index l = 0; l < layout.num_layers(); ++l) {
      matrix_type& e = layer_eps_[static_cast<std::size_t>(l)];
      e.resize(layout.width(l + 1), b);
      fill_standard_normal(e, rng);
    }
  }

  /// One chunk with local reparameterization (Kingma, Salimans & Welling (2015)): layer l's
  /// pre-activations A = M H + m_b + sqrt(V H^2 + v_b) (.) E, with M, m_b the weights' means
  /// and V, v_b their variances sigma^2, E ~ N(0, I) per column. Backward, with D = dJ/dA:
  /// dM = D H^T, dm_b = D 1, U = D (.) E / (2 sqrt(.)), dV = U (H^2)^T, dv_b = U 1,
  /// dJ/dH = M^T D + 2 H (.) (V^T U). ch.grad gets d/d(means), ch.grad_var d/d(variances).
  double local_chunk(const vector_type& params, Eigen::Index chunk_index, S c, const array_type& v, bool want,
                     chunk& ch) const {
    const auto& layout = net_.layout();
    const Eigen::Index layers = layout.num_layers(), b = ch.xb.cols(), j0 = chunk_index * chunk_columns;
    const S* mean = params.data();
    const S* var = var_.data();
    ch.h.resize(static_cast<std::size_t>(layers + 1));
    ch.sd.resize(static_cast<std::size_t>(layers));
    ch.h[0] = ch.xb;
    for (Eigen::Index l = 0; l < layers; ++l) {
      const std::size_t ul = static_cast<std::size_t>(l);
      matrix_type& sd = ch.sd[ul];
      matrix_type& a = ch.h[ul + 1];
      sd.noalias() = layout.weights(var, l) * ch.h[ul].cwiseAbs2();
      sd.colwise() += layout.bias(var, l);
      sd = sd.cwiseSqrt();
      a.noalias() = layout.weights(mean, l) * ch.h[ul];
      a.colwise() += layout.bias(mean, l);
      a += sd.cwiseProduct(layer_eps_[ul].middleCols(j0, b));
      nn::activate(layout.activation_of(l), a);
    }
    const matrix_type& out = ch.h[static_cast<std::size_t>(layers)];
    if (want) ch.g_noise = array_type::Zero(v.size());
    detail::bnn_log_likelihood<S>(options_.likelihood, out, ch.yb, v, ch.ll, c, want ? &ch.d_out : nullptr,
                                  want && options_.learn_noise ? &ch.g_noise : nullptr);
    if (want) {
      ch.grad.resize(num_weights());
      ch.grad_var.resize(num_weights());
      ch.delta.resize(2);
      matrix_type* d = &ch.d_out;
      for (Eigen::Index l = layers - 1; l >= 0; --l) {
        const std::size_t ul = static_cast<std::size_t>(l);
        nn::multiply_derivative(layout.activation_of(l), *d, ch.h[ul + 1]);
        const matrix_type& h = ch.h[ul];
        layout.weights(ch.grad.data(), l).noalias() = *d * h.transpose();
        layout.bias(ch.grad.data(), l).noalias() = d->rowwise().sum();
        matrix_type& u = ch.delta[0];
        u = (d->cwiseProduct(layer_eps_[ul].middleCols(j0, b))).cwiseQuotient(S(2) * ch.sd[ul]);
        layout.weights(ch.grad_var.data(), l).noalias() = u * h.cwiseAbs2().transpose();
        layout.bias(ch.grad_var.data(), l).noalias() = u.rowwise().sum();
        if (l > 0) {
          matrix_type& next = ch.delta[1];
          next.noalias() = layout.weights(mean, l).transpose() * *d;
          next += S(2) * h.cwiseProduct(layout.weights(var, l).transpose() * u);
          std::swap(ch.d_out, next);  // d now points at ch.d_out, which holds dJ/dH_l
          d = &ch.d_out;
        }
      }
    }
    return static_cast<double>(static_cast<accumulator_type>(c) * ch.ll.template cast<accumulator_type>().sum());
  }

  bnn_options options_;
  Eigen::Index targets_ = 0;
  matrix_type x_, y_;
  array_type x_shift_, x_scale_, y_shift_, y_scale_;
  network_type net_;
  // training buffers
  array_type sigma_, g_mu_, g_sigma_, g_noise_, dlogp_;
  vector_type eps_, w_, var_;
  std::vector<matrix_type> layer_eps_;
  std::vector<chunk> chunks_;
};

using bayesian_mlp = basic_bayesian_mlp<double>;

}  // namespace latent
