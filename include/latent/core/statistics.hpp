#pragma once
/// @file
/// Additive sufficient statistics and their flat view.
///
/// Expected sufficient statistics E_q[T(x, z)] are additive over observations: the statistics
/// of a data set are the sum of those of its parts. That is what lets one E-step serve batch
/// EM, threaded EM (blocks merged in a fixed order), online EM (decayed running sums) and
/// distributed EM (an all-reduce).
///
/// **Flat view.** So that an executor can move statistics without knowing the model (an MPI
/// all-reduce, a checkpoint, a stream), a statistics type lists its additive numbers as a
/// sequence of contiguous spans:
///
///     template <class F> void for_each_span(F&& f);        // f(std::span<T>) per array
///     template <class F> void for_each_span(F&& f) const;  // f(std::span<const T>)
///
/// in a fixed order that depends only on the model's structure (K, d, ...), never on values.
/// The spans hold exactly the *additive* numbers: for two statistics `a` and `b` made by the
/// same model's `zero_stats()` (hence about the same reference point, where a model keeps
/// moments centred about one), the flat numbers of `a += b` are the elementwise sums of the
/// flat numbers of `a` and `b`, and those of `a *= w` are w times those of `a`. Structural
/// members (sizes, the reference point of centred moments) are not in the view: they must
/// agree between objects that are merged through it, and `from_flat` keeps them.
///
/// Centred moments (the mixture and factor analysis keep sum_n r_n (x_n - c)(x_n - c)^T
/// about a reference point c, the model's current means, which keeps float and
/// double sums accurate) are additive for a fixed c; `operator+=` also merges statistics
/// about different reference points exactly, by shifting them, but the flat view is only
/// summed for a common one.

#include <latent/core/error.hpp>

#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

namespace latent {

/// Additive, scalable statistics: `a += b` merges two blocks, `a *= w` rescales (online EM).
template <class S>
concept SufficientStatistics = std::copy_constructible<S> && requires(S a, const S b, double w) {
  { a += b } -> std::same_as<S&>;
  { a *= w } -> std::same_as<S&>;
};

namespace detail {
/// A visitor that accepts any span: used only to check the `FlatStatistics` concept.
struct flat_probe {
  template <class T>
  void operator()(std::span<T>) const {}
};
}  // namespace detail

/// Statistics that expose their additive numbers as spans (see the file comment).
template <class S>
concept FlatStatistics = SufficientStatistics<S> && requires(S& s, const S& cs, detail::flat_probe f) {
  s.for_each_span(f);
  cs.for_each_span(f);
};

/// The number of additive numbers in `s`'s flat view.
template <FlatStatistics S>
std::size_t flat_size(const S& s) {
  std::size_t n = 0;
  s.for_each_span([&](auto span) { n += span.size(); });
  return n;
}

/// The additive numbers of `s`, in the order of its flat view, as `T` (default double).
template <class T = double, FlatStatistics S>
std::vector<T> to_flat(const S& s) {
  std::vector<T> out;
  out.reserve(flat_size(s));
  s.for_each_span([&](auto span) {
    for (const auto v : span) out.push_back(static_cast<T>(v));
  });
  return out;
}

/// Overwrite the additive numbers of `s` with `values` (in the order of its flat view); the
/// structural members of `s` are kept.
/// @throws invalid_argument if `values` does not hold exactly `flat_size(s)` numbers.
template <FlatStatistics S, class T>
void from_flat(S& s, std::span<const T> values) {
  detail::require(values.size() == flat_size(s), "from_flat", "argument 'values' must hold ",
                  flat_size(s), " numbers (the statistics' flat size), got ", values.size());
  std::size_t i = 0;
  s.for_each_span([&](auto span) {
    for (auto& v : span) v = static_cast<std::remove_reference_t<decltype(v)>>(values[i++]);
  });
}

/// `from_flat` for a vector.
template <FlatStatistics S, class T>
void from_flat(S& s, const std::vector<T>& values) {
  from_flat(s, std::span<const T>(values));
}

}  // namespace latent
