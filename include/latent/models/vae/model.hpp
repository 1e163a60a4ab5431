#pragma once
/// @file
/// `latent::basic_vae<S>`: the variational autoencoder as an `ElboObjective` (with a value-only
/// path) for `sgd_elbo` and an `AmortizedObjective` for the estimators, plus encode / decode /
/// reconstruct / sample / interpolate on new data. See models/vae.hpp for the mathematics.

#include <latent/core/chunks.hpp>
#include <latent/core/elbo_concepts.hpp>
#include <latent/core/error.hpp>
#include <latent/core/numerics.hpp>
#include <latent/core/random.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/vae/options.hpp>
#include <latent/nn/init.hpp>
#include <latent/nn/mlp.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace latent {

/// The VAE's parameters as the three segments of the flat vector (each network's own layout
/// is in nn/layout.hpp: `encoder().layout().weights(p.encoder.data(), l)` views W_l).
template <Scalar S>
struct basic_vae_params {
  vector_t<S> encoder;       ///< the encoder MLP's parameters
  vector_t<S> decoder;       ///< the decoder MLP's parameters
  vector_t<S> log_variance;  ///< Gaussian likelihood: d or 1 log-variances; empty for Bernoulli
};

/// q(z | x) = N(mean, diag(scale^2)) for each column of a data matrix.
template <Scalar S>
struct basic_vae_encoding {
  matrix_t<S> mean;   ///< k x n
  matrix_t<S> scale;  ///< k x n, positive
};

/// Draws from the generative model: z ~ N(0, I), x ~ p(x | z).
template <Scalar S>
struct basic_vae_sample {
  matrix_t<S> z;     ///< k x n latent draws
  matrix_t<S> mean;  ///< d x n likelihood means (Bernoulli probabilities or Gaussian means) at z
  matrix_t<S> x;     ///< d x n draws of x (0/1 for Bernoulli)
};

/// The VAE over the columns of a d x N data matrix, in scalar type `S` (float or double):
/// data, parameters, gradients and the minibatch arithmetic are in S; returned bounds are
/// double, summed over observations in double.
///
/// The data are viewed, not copied: keep the matrix alive while the objective is used.
/// `value_and_gradient` and `value` reuse buffers held by the object (they are non-const, and
/// one object must not be used for training from two threads at once); they split a minibatch
/// into chunks of 64 observations run on `Eigen::nbThreads()` OpenMP threads. Everything else
/// is const and thread-safe.
template <Scalar S>
class basic_vae {
 public:
  using scalar_type = S;
  using accumulator_type = accumulator_t<S>;
  using vector_type = vector_t<S>;
  using matrix_type = matrix_t<S>;
  using params_type = basic_vae_params<S>;
  using encoding_type = basic_vae_encoding<S>;
  using sample_type = basic_vae_sample<S>;
  using network_type = nn::basic_mlp<S>;

  /// @param x        data, d x N, observations are columns, finite; in [0, 1] for a Bernoulli
  ///                 likelihood (continuous values allowed)
  /// @param options  architecture and bound, see `vae_options`
  /// @throws invalid_argument for an empty or non-finite x, data outside [0, 1] with a
  ///         Bernoulli likelihood, or invalid options (naming the argument or option)
  explicit basic_vae(const Eigen::Ref<const matrix_t<S>>& x, vae_options options = {})
      : x_(x), options_(std::move(options)) {
    constexpr std::string_view fn = "vae";
    detail::validate_vae_options(options_, fn);
    require(x_.rows() >= 1 && x_.cols() >= 1, fn, "argument 'x' must have at least 1 row and 1 column, got ",
            x_.rows(), " x ", x_.cols());
    require_finite(x_, fn, "x");
    if (options_.likelihood == vae_likelihood::bernoulli) require_unit_interval(x_, fn, "x");
    encoder_ = network_type(detail::vae_encoder_layout(dim(), options_));
    decoder_ = network_type(detail::vae_decoder_layout(dim(), options_));
  }

  Eigen::Index dim() const { return x_.rows(); }
  Eigen::Index latent_dim() const { return options_.latent_dim; }
  Eigen::Index num_observations() const { return x_.cols(); }
  /// P = encoder + decoder + log-variances (0, d or 1).
  Eigen::Index num_parameters() const { return log_variance_offset() + num_log_variances(); }
  /// K, proposals per bound estimate: `options().iwae_samples` for the IWAE bound, else 1.
  Eigen::Index iwae_samples() const { return options_.bound == vae_bound::iwae ? options_.iwae_samples : 1; }
  const vae_options& options() const { return options_; }
  const network_type& encoder() const { return encoder_; }
  const network_type& decoder() const { return decoder_; }
  /// Offsets of the three segments of the flat vector (the encoder starts at 0).
  Eigen::Index decoder_offset() const { return encoder_.num_parameters(); }
  Eigen::Index log_variance_offset() const { return decoder_offset() + decoder_.num_parameters(); }
  Eigen::Index num_log_variances() const { return detail::vae_log_variance_count(dim(), options_.likelihood); }
  /// The viewed data.
  const Eigen::Ref<const matrix_t<S>>& data() const { return x_; }

  /// Flatten `p` into the layout [encoder | decoder | log_variance].
  /// @throws invalid_argument on wrong lengths.
  vector_type pack(const params_type& p) const {
    constexpr std::string_view fn = "vae::pack";
    require_shape(p.encoder, encoder_.num_parameters(), 1, fn, "encoder");
    require_shape(p.decoder, decoder_.num_parameters(), 1, fn, "decoder");
    require_shape(p.log_variance, num_log_variances(), 1, fn, "log_variance");
    vector_type v(num_parameters());
    v << p.encoder, p.decoder, p.log_variance;
    return v;
  }

  /// The three segments of a flat vector. @throws invalid_argument on a wrong length.
  params_type unpack(const Eigen::Ref<const vector_type>& v) const {
    check_params(v.size(), "vae::unpack");
    return {v.head(decoder_offset()), v.segment(decoder_offset(), decoder_.num_parameters()),
            v.tail(num_log_variances())};
  }

  /// A starting point: both networks from `nn::initialize` (He normal for ReLU-like hidden
  /// layers, Glorot uniform otherwise, zero biases; encoder first, then decoder, drawn in
  /// double so float and double objectives consume the engine identically); Gaussian
  /// log-variances = log of the data's per-coordinate variance (its mean over coordinates for
  /// `gaussian_shared`), floored at 1e-6.
  template <std::uniform_random_bit_generator Rng>
  vector_type initial_params(Rng& rng) const {
    using A = accumulator_type;
    vector_type v(num_parameters());
    nn::initialize(encoder_, v.head(decoder_offset()), rng);
    nn::initialize(decoder_, v.segment(decoder_offset(), decoder_.num_parameters()), rng);
    if (num_log_variances() > 0) {
      const vector_t<A> mean = x_.template cast<A>().rowwise().mean();
      const vector_t<A> var =
          (x_.template cast<A>().colwise() - mean).rowwise().squaredNorm() / static_cast<A>(x_.cols());
      if (options_.likelihood == vae_likelihood::gaussian)
        v.tail(num_log_variances()) = var.cwiseMax(A(1e-6)).array().log().matrix().template cast<S>();
      else
        v.tail(1).setConstant(static_cast<S>(std::log(std::max(var.mean(), A(1e-6)))));
    }
    return v;
  }

  // ---------------------------------------------------------------------------------------
  // ElboObjective
  // ---------------------------------------------------------------------------------------

  /// Unbiased estimate of the full-data bound (ELBO or IWAE, see `options().bound`) over the
  /// minibatch `batch`: N / (|B| S) times the sum of the |B| S single estimates, with S =
  /// `num_samples` independent estimates per observation (each with K = `iwae_samples()`
  /// proposals), all noise drawn from `rng` as ONE k x (|B| S K) standard-normal matrix, and
  /// its gradient in `grad` (resized to P).
  /// @throws invalid_argument for a wrong parameter length, an empty batch, an index out of
  ///         range, or num_samples = 0
  template <std::uniform_random_bit_generator Rng>
  double value_and_gradient(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type& grad,
                            Rng& rng) {
    return estimate(params, batch, num_samples, &grad, rng, "vae::value_and_gradient");
  }

  /// The estimate `value_and_gradient` returns for the same arguments and engine state (it
  /// draws the same noise and runs the same forward pass), without the backward pass.
  template <std::uniform_random_bit_generator Rng>
  double value(const vector_type& params, minibatch batch, std::size_t num_samples, Rng& rng) {
    return estimate(params, batch, num_samples, nullptr, rng, "vae::value");
  }

  // ---------------------------------------------------------------------------------------
  // AmortizedObjective (const, thread-safe: buffers are local to each call)
  // ---------------------------------------------------------------------------------------

  /// The encoder's q(z | x_n) for n in `batch`: `mean` and `log_scale` resized to k x |B|.
  void encode(const vector_type& params, minibatch batch, matrix_type& mean, matrix_type& log_scale) const {
    constexpr std::string_view fn = "vae::encode";
    check_params(params.size(), fn);
    detail::require_minibatch(batch, num_observations(), 1, fn);
    const matrix_type xb = x_(Eigen::all, batch);
    typename network_type::workspace ws;
    const matrix_type& out = encoder_.forward(params.head(decoder_offset()), xb, ws);
    mean = out.topRows(latent_dim());
    log_scale = out.bottomRows(latent_dim());
  }

  /// values(c) = log p(x_n | z_c) + log p(z_c) for the k x (|B| R) latent points `z`, column
  /// c = r |B| + j belonging to observation batch[j]; with `dz`, also its gradient with
  /// respect to z_c (one backward pass through the decoder, no parameter gradient).
  /// @throws invalid_argument for a wrong parameter length, a bad batch, or a z whose shape
  ///         does not match the batch
  void log_joint(const vector_type& params, minibatch batch, const matrix_type& z, vector_t<double>& values,
                 matrix_type* dz) const {
    constexpr std::string_view fn = "vae::log_joint";
    check_params(params.size(), fn);
    detail::require_minibatch(batch, num_observations(), 1, fn);
    const Eigen::Index b = static_cast<Eigen::Index>(batch.size()), k = latent_dim();
    require(z.rows() == k && z.cols() > 0 && z.cols() % b == 0, fn, "argument 'z' must be ", k,
            " x (|B| R) with |B| = ", b, " and R >= 1, got ", z.rows(), " x ", z.cols());
    const matrix_type xb = x_(Eigen::all, batch);
    typename network_type::workspace ws;
    const matrix_type& out = decoder_.forward(decoder_params(params), z, ws);
    row_array ll;
    column_log_likelihood(out, xb, params, ll);
    const S log_prior_constant = static_cast<S>(-0.5 * static_cast<double>(k) * log_two_pi);
    values = (ll - S(0.5) * z.colwise().squaredNorm().array() + log_prior_constant)
                 .transpose()
                 .template cast<double>()
                 .matrix();
    if (dz == nullptr) return;
    matrix_type d_out;
    likelihood_gradient(out, xb, params, row_array::Ones(z.cols()), d_out, nullptr);
    vector_type unused;  // no parameter gradient is computed
    decoder_.backward(decoder_params(params), z, ws, d_out, unused, nn::gradient_mode::none, dz);
    *dz -= z;  // the prior's gradient
  }

  // ---------------------------------------------------------------------------------------
  // New data (const, thread-safe)
  // ---------------------------------------------------------------------------------------

  /// q(z | x) for each column of `x` (d x n, finite; any values, also outside [0, 1]).
  encoding_type encode(const vector_type& params, const Eigen::Ref<const matrix_type>& x) const {
    constexpr std::string_view fn = "vae::encode";
    check_params(params.size(), fn);
    require_rows(x, dim(), fn, "x");
    require_finite(x, fn, "x");
    const Eigen::Index k = latent_dim();
    encoding_type e{matrix_type(k, x.cols()), matrix_type(k, x.cols())};
    typename network_type::workspace ws;
    for (Eigen::Index c0 = 0; c0 < x.cols(); c0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, x.cols() - c0);
      const matrix_type& out = encoder_.forward(params.head(decoder_offset()), x.middleCols(c0, len), ws);
      e.mean.middleCols(c0, len) = out.topRows(k);
      e.scale.middleCols(c0, len) = out.bottomRows(k).array().exp().matrix();
    }
    return e;
  }

  /// The likelihood's mean at each column of `z` (k x n, finite): Bernoulli probabilities
  /// sigmoid(logits) or Gaussian means, d x n.
  matrix_type decode(const vector_type& params, const Eigen::Ref<const matrix_type>& z) const {
    constexpr std::string_view fn = "vae::decode";
    check_params(params.size(), fn);
    require_rows(z, latent_dim(), fn, "z");
    require_finite(z, fn, "z");
    matrix_type mean(dim(), z.cols());
    typename network_type::workspace ws;
    for (Eigen::Index c0 = 0; c0 < z.cols(); c0 += block_columns) {
      const Eigen::Index len = std::min(block_columns, z.cols() - c0);
      const matrix_type& out = decoder_.forward(decoder_params(params), z.middleCols(c0, len), ws);
      if (options_.likelihood == vae_likelihood::bernoulli)
        mean.middleCols(c0, len) = out.array().logistic().matrix();
      else
        mean.middleCols(c0, len) = out;
    }
    return mean;
  }

  /// decode(encode(x).mean): the likelihood mean at each observation's posterior mean.
  matrix_type reconstruct(const vector_type& params, const Eigen::Ref<const matrix_type>& x) const {
    return decode(params, encode(params, x).mean);
  }

  /// n draws from the generative model: z ~ N(0, I) (k x n from `rng`), the likelihood means
  /// at z, and x ~ p(x | z) (drawn in double from `rng`, column by column).
  /// @throws invalid_argument for n < 1
  template <std::uniform_random_bit_generator Rng>
  sample_type sample(const vector_type& params, Eigen::Index n, Rng& rng) const {
    require(n >= 1, "vae::sample", "argument 'n' must be >= 1, got ", n);
    check_params(params.size(), "vae::sample");
    sample_type s;
    s.z = standard_normal<S>(latent_dim(), n, rng);
    s.mean = decode(params, s.z);
    s.x.resize(dim(), n);
    if (options_.likelihood == vae_likelihood::bernoulli) {
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < dim(); ++i) s.x(i, j) = u(rng) < static_cast<double>(s.mean(i, j)) ? S(1) : S(0);
    } else {
      const array_t<S> sd = (S(0.5) * log_variances(params)).exp();
      s.x = s.mean + (sd.matrix().asDiagonal() * standard_normal<S>(dim(), n, rng));
    }
    return s;
  }

  /// The likelihood means along the straight line between the posterior means of `from` and
  /// `to` (d-vectors): column i decodes (1 - t_i) m(from) + t_i m(to), t_i = i / (steps - 1).
  /// @throws invalid_argument for steps < 2 or vectors of the wrong length
  matrix_type interpolate(const vector_type& params, const Eigen::Ref<const vector_type>& from,
                          const Eigen::Ref<const vector_type>& to, Eigen::Index steps) const {
    constexpr std::string_view fn = "vae::interpolate";
    require(steps >= 2, fn, "argument 'steps' must be >= 2, got ", steps);
    require_rows(from, dim(), fn, "from");
    require_rows(to, dim(), fn, "to");
    matrix_type ends(dim(), 2);
    ends << from, to;
    const matrix_type m = encode(params, ends).mean;
    matrix_type z(latent_dim(), steps);
    for (Eigen::Index i = 0; i < steps; ++i) {
      const S t = static_cast<S>(i) / static_cast<S>(steps - 1);
      z.col(i) = (S(1) - t) * m.col(0) + t * m.col(1);
    }
    return decode(params, z);
  }

 private:
  using row_array = Eigen::Array<S, 1, Eigen::Dynamic>;
  static constexpr Eigen::Index block_columns = 4096;  // bounds the memory of new-data passes

  /// Buffers of one chunk of the training path, reused across steps (no allocation once sized).
  struct chunk {
    matrix_type xb, eps, s, z, d_out, dz, d_enc;
    row_array ll, w;
    vector_type lse, grad;
    typename network_type::workspace encoder, decoder;
    double value = 0.0;
  };
  /// Observations per chunk of a minibatch (see `estimate`).
  static constexpr Eigen::Index chunk_columns = 64;

  Eigen::Ref<const vector_type> decoder_params(const vector_type& params) const {
    return params.segment(decoder_offset(), decoder_.num_parameters());
  }
  /// The d log-variances of a Gaussian likelihood (the shared one repeated).
  array_t<S> log_variances(const vector_type& params) const {
    if (options_.likelihood == vae_likelihood::gaussian) return params.tail(dim()).array();
    return array_t<S>::Constant(dim(), params(log_variance_offset()));
  }

  /// ll(c) = log p(x_{n(c)} | out_c) for the decoder outputs `out` (d x |B| R) and the
  /// batch's data `xb` (d x |B|); column c belongs to observation c mod |B|.
  void column_log_likelihood(const matrix_type& out, const matrix_type& xb, const vector_type& params,
                             row_array& ll) const {
    const Eigen::Index b = xb.cols(), reps = out.cols() / b;
    ll.resize(out.cols());
    if (options_.likelihood == vae_likelihood::bernoulli) {
      // x l - softplus(l), softplus(l) = max(l, 0) + log1p(exp(-|l|)): stable for any l.
      for (Eigen::Index r = 0; r < reps; ++r) {
        const auto l = out.middleCols(r * b, b).array();
        ll.segment(r * b, b) = (xb.array() * l - l.max(S(0)) - (-l.abs()).exp().log1p()).colwise().sum();
      }
    } else {
      const array_t<S> log_var = log_variances(params);
      const array_t<S> inv_var = (-log_var).exp();
      const S constant = S(-0.5) * (static_cast<S>(dim()) * static_cast<S>(log_two_pi) + log_var.sum());
      for (Eigen::Index r = 0; r < reps; ++r)
        ll.segment(r * b, b) =
            constant - S(0.5) * ((xb - out.middleCols(r * b, b)).array().square().colwise() * inv_var).colwise().sum();
    }
  }

  /// d_out(:, c) = w(c) dll(c)/dout_c, and (if `g_log_var` is not null and the likelihood is
  /// Gaussian) the weighted sum of dll(c)/dlog_variance written to the log-variances' gradient.
  void likelihood_gradient(const matrix_type& out, const matrix_type& xb, const vector_type& params, const row_array& w,
                           matrix_type& d_out, S* g_log_var) const {
    const Eigen::Index b = xb.cols(), reps = out.cols() / b, d = dim();
    d_out.resize(out.rows(), out.cols());
    if (options_.likelihood == vae_likelihood::bernoulli) {
      for (Eigen::Index r = 0; r < reps; ++r)
        d_out.middleCols(r * b, b).array() =
            (xb.array() - out.middleCols(r * b, b).array().logistic()).rowwise() * w.segment(r * b, b);
      return;
    }
    const array_t<S> inv_var = (-log_variances(params)).exp();
    array_t<S> weighted_sq = array_t<S>::Zero(d);  // sum_c w_c (x - mu)_i^2 / var_i
    for (Eigen::Index r = 0; r < reps; ++r) {
      auto block = d_out.middleCols(r * b, b).array();
      block = ((xb - out.middleCols(r * b, b)).array().colwise() * inv_var).rowwise() * w.segment(r * b, b);
      weighted_sq += (block * (xb - out.middleCols(r * b, b)).array()).rowwise().sum();
    }
    if (g_log_var == nullptr) return;
    // d ll / d log var_i = -1/2 + (x - mu)_i^2 / (2 var_i), weighted by w_c and summed.
    const array_t<S> g = S(0.5) * weighted_sq - S(0.5) * w.sum();
    if (options_.likelihood == vae_likelihood::gaussian)
      Eigen::Map<array_t<S>>(g_log_var, d) = g;
    else
      *g_log_var = g.sum();
  }

  /// The minibatch estimate, and its gradient into `*grad` unless `grad` is null. Everything
  /// up to the value is the same code for both, so `value` equals `value_and_gradient`'s value
  /// bit for bit.
  ///
  /// The noise for the whole batch is drawn first, as one k x (|B| S K) matrix whose column
  /// c = (kappa S + s) |B| + j is proposal kappa of estimate s of observation batch[j]. The
  /// batch is then cut into chunks of `chunk_columns` observations (a split that does not
  /// depend on the thread count), each chunk runs the networks on its own columns with its own
  /// buffers, on the OpenMP threads of `Eigen::nbThreads()` when there are several chunks, and
  /// the chunks' values and gradients are added in chunk order. (One barrier per step instead
  /// of Eigen's parallel GEMMs, which spin at several barriers per product and lose badly on
  /// a loaded machine; a single chunk uses Eigen's GEMM threads.)
  template <class Rng>
  double estimate(const vector_type& params, minibatch batch, std::size_t num_samples, vector_type* grad, Rng& rng,
                  std::string_view fn) {
    check_params(params.size(), fn);
    detail::require_minibatch(batch, num_observations(), num_samples, fn);
    const Eigen::Index b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index reps = static_cast<Eigen::Index>(num_samples) * iwae_samples();
    eps_ = standard_normal<S>(latent_dim(), b * reps, rng);
    const Eigen::Index count = (b + chunk_columns - 1) / chunk_columns;
    if (static_cast<Eigen::Index>(chunks_.size()) < count) chunks_.resize(static_cast<std::size_t>(count));
    if (grad != nullptr) grad->resize(num_parameters());
    const auto run = [&](Eigen::Index i) {
      const Eigen::Index j0 = i * chunk_columns, len = std::min(chunk_columns, b - j0);
      chunk& ch = chunks_[static_cast<std::size_t>(i)];
      // Chunk 0 writes its gradient straight into the result; the others into their buffers.
      vector_type* g = grad == nullptr ? nullptr : i == 0 ? grad : &ch.grad;
      if (g != nullptr) g->resize(num_parameters());
      ch.value = estimate_chunk(params, batch, j0, len, num_samples, g, ch);
    };
    const int threads = detail::chunk_threads(count);
    detail::run_chunks(count, threads, run);
    double value = 0.0;
    for (Eigen::Index i = 0; i < count; ++i) value += chunks_[static_cast<std::size_t>(i)].value;
    if (grad != nullptr) add_chunk_gradients(*grad, count, threads);
    return value;
  }

  /// grad += the gradients of chunks 1..count-1, in chunk order, split over `threads` by
  /// segments of the parameter vector.
  void add_chunk_gradients(vector_type& grad, Eigen::Index count, int threads) {
    detail::add_chunk_vectors<S>(grad, count, threads,
                                 [&](Eigen::Index i) -> const vector_type& { return chunks_[static_cast<std::size_t>(i)].grad; });
  }

  /// Observations batch[j0 .. j0 + len) with estimates and proposals laid out as in the full
  /// batch (column (kappa S + s) len + j of the chunk is column (kappa S + s) |B| + j0 + j of
  /// the batch's noise). Returns the chunk's share of the value (scaled by N / |B| with the
  /// full batch's |B|) and overwrites `*grad` with its share of the gradient.
  double estimate_chunk(const vector_type& params, minibatch batch, Eigen::Index j0, Eigen::Index b,
                        std::size_t num_samples, vector_type* grad, chunk& ws) const {
    using A = accumulator_type;
    const Eigen::Index k = latent_dim(), full_b = static_cast<Eigen::Index>(batch.size());
    const Eigen::Index s_count = static_cast<Eigen::Index>(num_samples), kk = iwae_samples();
    const Eigen::Index reps = s_count * kk, cols = b * reps;
    const bool iwae = options_.bound == vae_bound::iwae;
    const A n = static_cast<A>(num_observations());
    const A c = n / static_cast<A>(full_b * s_count), cb = n / static_cast<A>(full_b);

    ws.xb = x_(Eigen::all, batch.subspan(static_cast<std::size_t>(j0), static_cast<std::size_t>(b)));
    ws.eps.resize(k, cols);
    for (Eigen::Index r = 0; r < reps; ++r) ws.eps.middleCols(r * b, b) = eps_.middleCols(r * full_b + j0, b);
    const matrix_type& enc = encoder_.forward(params.head(decoder_offset()), ws.xb, ws.encoder);
    const auto m = enc.topRows(k);
    const auto log_s = enc.bottomRows(k);
    ws.s = log_s.array().exp().matrix();
    ws.z.resize(k, cols);
    for (Eigen::Index r = 0; r < reps; ++r)
      ws.z.middleCols(r * b, b) = m + ws.s.cwiseProduct(ws.eps.middleCols(r * b, b));
    const matrix_type& out = decoder_.forward(decoder_params(params), ws.z, ws.decoder);
    column_log_likelihood(out, ws.xb, params, ws.ll);

    A value;
    if (!iwae) {
      // KL(N(m, s^2) || N(0, I)) = 1/2 sum_j (m_j^2 + s_j^2 - 1 - 2 log s_j), summed in A.
      const A kl = A(0.5) * (m.array().square() + ws.s.array().square() - S(1) - S(2) * log_s.array())
                                .template cast<A>()
                                .sum();
      value = c * ws.ll.template cast<A>().sum() - cb * kl;
    } else {
      // log w = log p(x | z) + log p(z) - log q(z | x) = ll - |z|^2 / 2 + |eps|^2 / 2 + sum_j log s_j
      // (the (2 pi)^{-k/2} of prior and proposal cancel).
      ws.w = ws.ll - S(0.5) * ws.z.colwise().squaredNorm().array() + S(0.5) * ws.eps.colwise().squaredNorm().array();
      const row_array sum_log_s = log_s.colwise().sum().array();
      for (Eigen::Index r = 0; r < reps; ++r) ws.w.segment(r * b, b) += sum_log_s;
      Eigen::Map<matrix_type> log_w(ws.w.data(), b * s_count, kk);
      ws.lse.resize(b * s_count);
      normalize_rows_log(log_w, ws.lse);  // log_w now holds the normalized weights omega
      value = c * (ws.lse.template cast<A>().sum() - static_cast<A>(b * s_count) * std::log(static_cast<A>(kk)));
    }
    if (grad == nullptr) return static_cast<double>(value);

    // Per-column weight of d(value)/d(column's log-likelihood): c for the ELBO, c omega_c for
    // the IWAE bound (the gradient of a log-sum-exp is the softmax).
    if (iwae)
      ws.w *= static_cast<S>(c);
    else
      ws.w.setConstant(cols, static_cast<S>(c));
    likelihood_gradient(out, ws.xb, params, ws.w, ws.d_out,
                        num_log_variances() > 0 ? grad->data() + log_variance_offset() : nullptr);
    decoder_.backward(decoder_params(params), ws.z, ws.decoder, ws.d_out,
                      grad->segment(decoder_offset(), decoder_.num_parameters()), nn::gradient_mode::overwrite,
                      &ws.dz);
    if (iwae) ws.dz -= (ws.z.array().rowwise() * ws.w).matrix();  // the prior's -z, weighted

    // Back through z = m + s (.) eps: dm = sum_r dz_r, dlog s = sum_r dz_r (.) eps_r (.) s.
    ws.d_enc.resize(2 * k, b);
    auto dm = ws.d_enc.topRows(k);
    auto dlog_s = ws.d_enc.bottomRows(k);
    dm = ws.dz.leftCols(b);
    dlog_s = ws.dz.leftCols(b).cwiseProduct(ws.eps.leftCols(b));
    for (Eigen::Index r = 1; r < reps; ++r) {
      dm += ws.dz.middleCols(r * b, b);
      dlog_s += ws.dz.middleCols(r * b, b).cwiseProduct(ws.eps.middleCols(r * b, b));
    }
    dlog_s = dlog_s.cwiseProduct(ws.s);
    const S cbs = static_cast<S>(cb);
    if (!iwae) {
      // -KL's gradient, scaled by N / |B|: -m and 1 - s^2.
      dm -= cbs * m;
      dlog_s -= cbs * (ws.s.array().square() - S(1)).matrix();
    } else {
      // -log q's direct dependence on log s_j is +1 per proposal; the weights of an
      // observation's proposals sum to c S = N / |B|.
      dlog_s.array() += cbs;
    }
    encoder_.backward(params.head(decoder_offset()), ws.xb, ws.encoder, ws.d_enc, grad->head(decoder_offset()),
                      nn::gradient_mode::overwrite, nullptr);
    return static_cast<double>(value);
  }

  template <class Derived>
  static void require_unit_interval(const Eigen::DenseBase<Derived>& x, std::string_view fn, std::string_view name) {
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      for (Eigen::Index i = 0; i < x.rows(); ++i)
        if (!(x(i, j) >= S(0) && x(i, j) <= S(1)))
          throw_invalid(fn, "argument '", name, "' must lie in [0, 1] for a Bernoulli likelihood, but entry (", i, ", ",
                        j, ") is ", static_cast<double>(x(i, j)));
  }

  void check_params(Eigen::Index size, std::string_view fn) const {
    require(size == num_parameters(), fn, "argument 'params' must have num_parameters() = ", num_parameters(),
            " entries, got ", size);
  }

  Eigen::Ref<const matrix_t<S>> x_;
  vae_options options_;
  network_type encoder_, decoder_;
  matrix_type eps_;            // the training path's noise for the whole batch
  std::vector<chunk> chunks_;  // the training path's per-chunk buffers
};

using vae = basic_vae<double>;

}  // namespace latent
