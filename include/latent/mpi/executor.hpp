#pragma once
/// @file
/// `latent::mpi_executor`: the E-step over the ranks of an MPI communicator, each rank running
/// its share of the blocks on its own threads, with results bit-identical to the
/// single-process `thread_executor` / `serial_executor` for any number of ranks and threads.
///
/// Optional component: link `latent::mpi` (`find_package(latent COMPONENTS mpi)`), which
/// brings CMake's `MPI::MPI_CXX`. Not included by `<latent/latent.hpp>`. The program calls
/// `MPI_Init` (or `MPI_Init_thread`) itself; the executor only uses its communicator, from
/// the thread that called `MPI_Init` (`MPI_THREAD_FUNNELED` suffices).
///
/// **Who holds which columns.** The N global columns are cut into blocks of `block_size`
/// columns (the same blocks as the single-process executors), and the blocks into *turns*
/// of at most `turn_blocks` blocks. Turn c belongs to rank c mod P: the turns are dealt
/// round-robin, so every rank gets a share of every part of the data. The turn size is the
/// largest (up to `turn_blocks`) that gives no rank more than ceil(B / P) of the B blocks,
/// so the ranks carry equal work (196 blocks on 2 ranks: turns of 14, 98 blocks each, where
/// turns of 16 would give 100 and 96). A rank holds the columns of its turns, concatenated in
/// global order (`local_ranges()` lists them; `shard(X)` cuts them out of a matrix that a rank
/// can see, and a rank reading a file reads just those ranges).
///
/// **Why the bits do not depend on P or the threads.** The single-process executors merge
/// the blocks' statistics into the total one by one in block order,
/// total = ((total + s_0) + s_1) + ..., and add the blocks' objectives in the same order.
/// This executor does exactly those additions. The turns are taken in rounds of m turns per
/// rank (turns kmP, ..., (k+1)mP - 1 in round k): every rank computes the blocks of its turns
/// of the round (with its threads, each block into fresh statistics), the blocks' flat views
/// and objectives are gathered on rank 0, and rank 0 adds them into the total with the
/// statistics' own `operator+=` in global block order. After the last round rank 0 broadcasts
/// the total's flat view and the objective; every rank then applies the same M-step. The flat
/// view is a lossless copy of the additive numbers (statistics in float travel as double),
/// so every floating-point operation is the one the single-process fit does. A single block
/// (N <= block_size) is computed straight into the total on rank 0, as the serial executor does.
///
/// **Memory, traffic and waiting.** m is as large as keeps a round's statistics on rank 0
/// (P m turns of flat views) within `round_bytes` (8 MB by default, the threaded executor's
/// wave budget), so rank 0's memory does not grow with N; for the mixture with d = 16, K = 8
/// (17 KB of statistics per block of 128 KB of data) that is ~480 blocks a round, and an E-step
/// over N = 2e5 is one round: the ranks meet once, not once per turn (rounds of one turn each,
/// which made ranks wait for each other's jitter, with uneven turns cost ~4 % of a 2-rank
/// E-step here: docs/scaling.md). Per E-step each block's statistics cross the network once
/// (N / block_size flat views in all) plus one broadcast.
///
/// **Scalars.** `all_sum(v)` (the total observation weight, which scales the convergence
/// test) gathers every rank's value and adds them in rank order: exact, hence equal to the
/// single-process sum, when the values are integers below 2^53 (counts, unit weights);
/// fractional weights may differ in the last bit of that scale only.
///
/// **Errors.** A block that throws on one rank does not leave the others waiting: the ranks
/// finish the rounds (the failed rank contributes zeros), agree on the failure, and every rank
/// throws — the failed rank its own exception, the others `invalid_argument` naming it.

#include <latent/core/error.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/core/statistics.hpp>
#include <latent/models/discrete_bayes_net/data.hpp>

#include <Eigen/Core>
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <climits>
#include <exception>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent {

/// How columns of a data type travel between ranks as doubles (for `mpi_executor::gather`):
/// `rows(x)` numbers per column, `pack(x, j, out)` writes column j, and `owned(like, packed)`
/// holds data of the same kind made of packed columns, seen through `get()`.
template <class Data>
struct mpi_columns;

/// Observations: the d values, and the weight if the data are weighted.
template <Scalar S>
struct mpi_columns<basic_observations<S>> {
  using data_type = basic_observations<S>;
  static Eigen::Index rows(const data_type& x) { return x.dim() + (x.weighted() ? 1 : 0); }
  static void pack(const data_type& x, Eigen::Index j, double* out) {
    Eigen::Map<Eigen::VectorXd>(out, x.dim()) = x.x().col(j).template cast<double>();
    if (x.weighted()) out[x.dim()] = static_cast<double>(x.weight(j));
  }
  /// Owns the matrix (and weights) its view looks at: neither copyable nor movable.
  class owned {
   public:
    owned(const data_type& like, const Eigen::MatrixXd& packed)
        : x_(packed.topRows(like.dim()).template cast<S>()),
          w_(like.weighted() ? vector_t<S>(packed.row(like.dim()).transpose().template cast<S>()) : vector_t<S>()) {
      if (like.weighted()) view_.emplace(x_, w_);
      else view_.emplace(x_);
    }
    owned(const owned&) = delete;
    owned& operator=(const owned&) = delete;
    const data_type& get() const { return *view_; }

   private:
    matrix_t<S> x_;
    vector_t<S> w_;
    std::optional<data_type> view_;
  };
};

/// Discrete Bayesian network records: the states (as doubles, exact) and the record's count.
/// The gathered data keep the records in the given order (no regrouping), so distinct records
/// sharded from grouped data come back exactly as the grouped data.
template <Scalar S>
struct mpi_columns<basic_discrete_bayes_net_data<S>> {
  using data_type = basic_discrete_bayes_net_data<S>;
  static Eigen::Index rows(const data_type& x) { return x.records().rows() + 1; }
  static void pack(const data_type& x, Eigen::Index j, double* out) {
    const Eigen::Index n = x.records().rows();
    Eigen::Map<Eigen::VectorXd>(out, n) = x.records().col(j).template cast<double>();
    out[n] = static_cast<double>(x.counts()(j));
  }
  class owned {
   public:
    owned(const data_type& like, const Eigen::MatrixXd& packed)
        : data_(packed.topRows(packed.rows() - 1).template cast<int>(),
                packed.row(packed.rows() - 1).transpose().template cast<typename data_type::weight_type>(),
                like.names(), like.cardinalities(), bn_data_options{.group = false}) {}
    const data_type& get() const { return data_; }

   private:
    data_type data_;
  };
};

/// The E-step over the ranks of an MPI communicator (see the file comment).
class mpi_executor {
 public:
  /// @param comm            the communicator (not duplicated: keep it alive)
  /// @param global_columns  N, the number of observations over all ranks
  /// @param threads         E-step threads per rank; 0 = the OpenMP default
  /// @param block_size      columns per block; part of the arithmetic, as for `thread_executor`
  /// @param turn_blocks     at most this many blocks per turn: fixes which rank holds which
  ///                        columns, not the bits
  /// @param init_columns    at most this many columns are gathered for `initialize` (see there)
  /// @param round_bytes     memory for one round's block statistics on rank 0 (at least one
  ///                        turn per rank is taken a round, whatever its size); not the bits
  /// @throws invalid_argument for N < 0, threads < 0, block_size < 1, turn_blocks < 1,
  ///         init_columns < 1, or fewer blocks than ranks (a rank would hold no columns)
  mpi_executor(MPI_Comm comm, Eigen::Index global_columns, int threads = 0, Eigen::Index block_size = 1024,
               Eigen::Index turn_blocks = 16, Eigen::Index init_columns = Eigen::Index{1} << 18,
               std::size_t round_bytes = detail::wave_memory_budget)
      : comm_(comm), n_(global_columns), threads_(threads), block_size_(block_size),
        init_columns_(init_columns), round_bytes_(round_bytes) {
    constexpr const char* fn = "mpi_executor";
    detail::require(global_columns >= 0, fn, "argument 'global_columns' must be >= 0, got ", global_columns);
    detail::require(threads >= 0, fn, "option 'threads' must be >= 0, got ", threads);
    detail::require(block_size > 0, fn, "option 'block_size' must be positive, got ", block_size);
    detail::require(turn_blocks > 0, fn, "option 'turn_blocks' must be positive, got ", turn_blocks);
    detail::require(init_columns > 0, fn, "option 'init_columns' must be positive, got ", init_columns);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    // Models reject empty data (a Bayesian network's data cannot even be made empty), so
    // every rank must hold at least one block. Every rank computes the same answer: all throw.
    const Eigen::Index nblocks = detail::block_count(n_, block_size_);
    detail::require(nblocks >= size_, fn, "the ", n_, " columns make ", nblocks, " block(s) of ", block_size_,
                    " columns, fewer than the ", size_,
                    " ranks: every rank needs at least one; use fewer ranks or a smaller block_size");
    turn_ = even_turn(nblocks, turn_blocks, size_);
  }

  int rank() const { return rank_; }
  int ranks() const { return size_; }
  MPI_Comm communicator() const { return comm_; }
  Eigen::Index global_columns() const { return n_; }
  Eigen::Index block_size() const { return block_size_; }
  /// Blocks per turn: the largest size up to the constructor's `turn_blocks` that gives no
  /// rank more than ceil(B / P) of the B blocks.
  Eigen::Index turn_blocks() const { return turn_; }

  /// Threads this rank uses (1 without OpenMP).
  int resolved_threads() const { return thread_executor{threads_, block_size_}.resolved_threads(); }

  /// The global column ranges [begin, end) that rank `r` holds, in the order its columns are
  /// concatenated (increasing).
  std::vector<std::pair<Eigen::Index, Eigen::Index>> ranges_of(int r) const {
    std::vector<std::pair<Eigen::Index, Eigen::Index>> out;
    const Eigen::Index turn_columns = turn_ * block_size_;
    for (Eigen::Index c = r; c * turn_columns < n_; c += size_)
      out.emplace_back(c * turn_columns, std::min(n_, (c + 1) * turn_columns));
    return out;
  }
  /// This rank's column ranges.
  std::vector<std::pair<Eigen::Index, Eigen::Index>> local_ranges() const { return ranges_of(rank_); }
  /// The number of columns rank `r` holds.
  Eigen::Index columns_of(int r) const {
    Eigen::Index n = 0;
    for (const auto& [b, e] : ranges_of(r)) n += e - b;
    return n;
  }
  /// The number of columns this rank holds.
  Eigen::Index local_columns() const { return columns_of(rank_); }

  /// This rank's columns of a matrix holding all N columns (for data every rank can see or
  /// generate; a rank reading a file reads `local_ranges()` instead).
  /// @throws invalid_argument if `all` does not have N columns
  template <class Derived>
  Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, Eigen::Dynamic> shard(const Eigen::MatrixBase<Derived>& all) const {
    detail::require(all.cols() == n_, "mpi_executor::shard", "argument 'all' must have ", n_,
                    " columns (the executor's global_columns), got ", all.cols());
    Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, Eigen::Dynamic> out(all.rows(), local_columns());
    Eigen::Index at = 0;
    for (const auto& [b, e] : local_ranges()) {
      out.middleCols(at, e - b) = all.middleCols(b, e - b);
      at += e - b;
    }
    return out;
  }

  /// The E-step contract of `Executor`: `n` must be this rank's column count; `block(b, e, s)`
  /// gets local column ranges. Returns the global objective; `total` ends equal on all ranks.
  template <class Stats, class Zero, class Block>
  double reduce(Eigen::Index n, Zero&& zero, Block&& block, Stats& total) const {
    static_assert(FlatStatistics<Stats>, "mpi_executor moves statistics through their flat view (FlatStatistics)");
    std::exception_ptr error;
    if (n != local_columns()) {
      try {
        detail::throw_invalid("mpi_executor", "rank ", rank_, " was given ", n, " columns, but holds ",
                              local_columns(), " of the ", n_, " (see local_ranges())");
      } catch (...) {
        error = std::current_exception();
      }
    }
    const Eigen::Index nblocks = detail::block_count(n_, block_size_);
    double value = 0.0;
    if (nblocks == 1) {
      if (rank_ == 0 && !error) capture(error, [&] { value = static_cast<double>(block(Eigen::Index{0}, n, total)); });
    } else if (nblocks > 1) {
      value = rounds(nblocks, zero, block, total, error);
    }
    agree_on_failure(error);
    // Rank 0's total and objective to every rank.
    std::vector<double> flat = to_flat(total);
    flat.push_back(value);
    MPI_Bcast(flat.data(), static_cast<int>(flat.size()), MPI_DOUBLE, 0, comm_);
    value = flat.back();
    flat.pop_back();
    if (rank_ != 0) from_flat(total, flat);
    return value;
  }

  /// The initialization hook the solvers call instead of `model.initialize(x, rng)` (the
  /// restarts of `em`): every rank gathers the same sample of the global columns, in global
  /// order, and calls `model.initialize(sample, rng)` on it. Since every rank holds the same
  /// engine state, data and code, every rank draws the same parameters, without sending them.
  /// The sample is all N columns when N <= init_columns, which makes the fit (with restarts)
  /// identical to the single-process `em(model, X, rng, ...)`; for larger N it is the
  /// columns floor(j N / m), j < m = init_columns, and the fit is a function of the data and
  /// the seed (not of P or the threads), equal to the single-process fit started from
  /// `model.initialize(that sample, rng)`.
  template <class M, class Rng>
  void initialize(M& model, const typename M::data_type& x, Rng& rng) const {
    const auto sample = gather(x, sample_columns());
    model.initialize(sample.get(), rng);
  }

  /// The global columns `initialize` gathers (increasing).
  std::vector<Eigen::Index> sample_columns() const {
    std::vector<Eigen::Index> out;
    const Eigen::Index m = std::min(n_, init_columns_);
    out.reserve(static_cast<std::size_t>(m));
    for (Eigen::Index j = 0; j < m; ++j)
      out.push_back(m == n_ ? j : static_cast<Eigen::Index>((static_cast<long double>(j) * n_) / m));
    return out;
  }

  /// The global columns `wanted` (increasing) of data sharded as this executor deals it, on
  /// every rank, in the order of `wanted`. `Data` needs an `mpi_columns<Data>` codec
  /// (observations and discrete Bayesian network data have one).
  template <class Data>
  auto gather(const Data& x, const std::vector<Eigen::Index>& wanted) const {
    using codec = mpi_columns<Data>;
    const Eigen::Index rows = codec::rows(x);
    const Eigen::Index turn_columns = turn_ * block_size_;
    const auto owner = [&](Eigen::Index g) { return static_cast<int>((g / turn_columns) % size_); };
    const auto local = [&](Eigen::Index g) { return (g / turn_columns) / size_ * turn_columns + g % turn_columns; };
    std::vector<double> send;
    std::vector<int> counts(static_cast<std::size_t>(size_), 0), offsets(static_cast<std::size_t>(size_), 0);
    for (const Eigen::Index g : wanted) {
      counts[static_cast<std::size_t>(owner(g))] += static_cast<int>(rows);
      if (owner(g) != rank_) continue;
      send.resize(send.size() + static_cast<std::size_t>(rows));
      codec::pack(x, local(g), send.data() + send.size() - static_cast<std::size_t>(rows));
    }
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<std::size_t>(r)] = static_cast<int>(total);
      total += counts[static_cast<std::size_t>(r)];
    }
    detail::require(total <= INT_MAX, "mpi_executor::gather", "the sample (", total,
                    " numbers) exceeds one MPI message: lower init_columns");
    std::vector<double> all(static_cast<std::size_t>(total));
    MPI_Allgatherv(send.data(), static_cast<int>(send.size()), MPI_DOUBLE, all.data(), counts.data(),
                   offsets.data(), MPI_DOUBLE, comm_);
    // Rank-major order back to the order of `wanted`.
    Eigen::MatrixXd packed(rows, static_cast<Eigen::Index>(wanted.size()));
    std::vector<int> next(offsets);
    for (std::size_t j = 0; j < wanted.size(); ++j) {
      int& at = next[static_cast<std::size_t>(owner(wanted[j]))];
      packed.col(static_cast<Eigen::Index>(j)) = Eigen::Map<const Eigen::VectorXd>(all.data() + at, rows);
      at += static_cast<int>(rows);
    }
    return typename codec::owned(x, packed);
  }

  /// `v` summed over the ranks in rank order (the same on every rank).
  double all_sum(double v) const {
    std::vector<double> all(static_cast<std::size_t>(size_));
    MPI_Allgather(&v, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, comm_);
    double s = 0.0;
    for (const double x : all) s += x;
    return s;
  }

 private:
  template <class F>
  static void capture(std::exception_ptr& error, F&& f) {
    try {
      f();
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }

  /// The largest turn size t <= `most` with which no rank holds more than ceil(B / P)
  /// blocks (t = 1 always does: blocks dealt one by one).
  static Eigen::Index even_turn(Eigen::Index nblocks, Eigen::Index most, int ranks) {
    const Eigen::Index p = ranks, fair = detail::block_count(nblocks, p);
    for (Eigen::Index t = std::min(most, std::max<Eigen::Index>(nblocks, 1)); t > 1; --t) {
      // Rank 0 holds the most turns, all full unless it also holds the last (short) turn;
      // every other rank holds as many turns or fewer.
      const Eigen::Index turns = detail::block_count(nblocks, t);
      const Eigen::Index most_held = detail::block_count(turns, p) * t - ((turns - 1) % p == 0 ? turns * t - nblocks : 0);
      if (turns >= p && most_held <= fair) return t;
    }
    return 1;
  }

  /// Blocks in rounds of `m` turns per rank, merged on rank 0 in global block order.
  template <class Stats, class Zero, class Block>
  double rounds(Eigen::Index nblocks, Zero& zero, Block& block, Stats& total, std::exception_ptr& error) const {
    const Eigen::Index nturns = detail::block_count(nblocks, turn_);
    const Stats prototype = zero();
    const auto width = static_cast<std::size_t>(flat_size(prototype)) + 1;  // flat view + objective
    const std::size_t turn_bytes = width * sizeof(double) * static_cast<std::size_t>(turn_ * size_);
    const Eigen::Index per_rank = std::clamp<Eigen::Index>(static_cast<Eigen::Index>(round_bytes_ / turn_bytes), 1,
                                                           detail::block_count(nturns, size_));
    const Eigen::Index round_turns = per_rank * size_;
    // Blocks of turn c (global block indices).
    const auto turn = [&](Eigen::Index c) {
      const Eigen::Index first = std::min(nblocks, c * turn_);
      return std::pair{first, std::min(nblocks, first + turn_)};
    };
    // Blocks rank r computes in the round starting at turn c0.
    const auto blocks_of = [&](int r, Eigen::Index c0) {
      Eigen::Index count = 0;
      for (Eigen::Index c = c0 + r; c < std::min(nturns, c0 + round_turns); c += size_) {
        const auto [f, l] = turn(c);
        count += l - f;
      }
      return count;
    };
    std::vector<Stats> parts(static_cast<std::size_t>(per_rank * turn_), prototype);
    std::vector<double> values(parts.size(), 0.0);
    std::vector<Eigen::Index> mine;  // global blocks of this rank's turns of the round
    std::vector<double> send, recv;
    std::vector<int> counts(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    Stats incoming = prototype;
    double value = 0.0;
    const int team = resolved_threads();
    std::atomic<bool> failed{static_cast<bool>(error)};
    for (Eigen::Index c0 = 0; c0 < nturns; c0 += round_turns) {
      mine.clear();
      for (Eigen::Index c = c0 + rank_; c < std::min(nturns, c0 + round_turns); c += size_)
        for (auto [g, l] = turn(c); g < l; ++g) mine.push_back(g);
      const auto count = static_cast<Eigen::Index>(mine.size());
      // Each block into fresh statistics. A rank's columns are its turns concatenated, and
      // only the globally last turn and block can be short, so the local column of global
      // block g of turn c is (c / P) turns of columns in, plus g's offset in its turn.
      const auto run = [&](Eigen::Index i) {
        if (failed) return;
        const auto slot = static_cast<std::size_t>(i);
        const Eigen::Index g = mine[slot], c = g / turn_;
        const Eigen::Index begin = g * block_size_, end = std::min(n_, begin + block_size_);
        try {
          parts[slot] = zero();
          const Eigen::Index local = (c / size_) * turn_ * block_size_ + (g - c * turn_) * block_size_;
          values[slot] = static_cast<double>(block(local, local + (end - begin), parts[slot]));
        } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(latent_mpi_executor_error)
#endif
          if (!error) error = std::current_exception();
          failed = true;
        }
      };
#if defined(_OPENMP)
      if (team > 1 && count > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(static_cast<int>(std::min<Eigen::Index>(team, count)))
        for (Eigen::Index i = 0; i < count; ++i) {
          omp_set_num_threads(1);  // no nested Eigen threads inside a block
          run(i);
        }
      } else
#endif
        for (Eigen::Index i = 0; i < count; ++i) run(i);
      send.assign(static_cast<std::size_t>(count) * width, 0.0);
      if (!error)
        for (Eigen::Index i = 0; i < count; ++i) {
          std::size_t at = static_cast<std::size_t>(i) * width;
          parts[static_cast<std::size_t>(i)].for_each_span([&](auto span) {
            for (const auto v : span) send[at++] = static_cast<double>(v);
          });
          send[at] = values[static_cast<std::size_t>(i)];
        }
      // Gather the round on rank 0: rank r's blocks in global order, after rank r - 1's.
      int total_count = 0;
      for (int r = 0; r < size_; ++r) {
        counts[static_cast<std::size_t>(r)] = static_cast<int>(static_cast<std::size_t>(blocks_of(r, c0)) * width);
        offsets[static_cast<std::size_t>(r)] = total_count;
        total_count += counts[static_cast<std::size_t>(r)];
      }
      if (rank_ == 0) recv.resize(static_cast<std::size_t>(total_count));
      MPI_Gatherv(send.data(), static_cast<int>(send.size()), MPI_DOUBLE, recv.data(), counts.data(),
                  offsets.data(), MPI_DOUBLE, 0, comm_);
      // Merge in global order: turn c0, c0 + 1, ... comes from rank (c mod P)'s next blocks.
      if (rank_ == 0 && !error)
        capture(error, [&] {
          std::vector<std::size_t> next(offsets.begin(), offsets.end());
          for (Eigen::Index c = c0; c < std::min(nturns, c0 + round_turns); ++c) {
            std::size_t& at = next[static_cast<std::size_t>(c % size_)];
            for (auto [g, l] = turn(c); g < l; ++g, at += width) {
              from_flat(incoming, std::span<const double>(recv.data() + at, width - 1));
              total += incoming;
              value += recv[at + width - 1];
            }
          }
        });
      failed = static_cast<bool>(error);
    }
    return value;
  }

  /// Every rank learns whether any failed; the failed ranks rethrow their exception, the
  /// others throw naming the lowest failed rank.
  void agree_on_failure(const std::exception_ptr& error) const {
    const int mine = error ? rank_ : size_;
    int lowest = size_;
    MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, comm_);
    if (error) std::rethrow_exception(error);
    if (lowest < size_)
      detail::throw_invalid("mpi_executor", "the E-step failed on rank ", lowest, " (see that rank's message)");
  }

  MPI_Comm comm_;
  Eigen::Index n_;
  int threads_;
  Eigen::Index block_size_;
  Eigen::Index init_columns_;
  std::size_t round_bytes_;
  Eigen::Index turn_ = 1;  // blocks per turn (see even_turn)
  int rank_ = 0;
  int size_ = 1;
};

static_assert(Executor<mpi_executor>);

}  // namespace latent
