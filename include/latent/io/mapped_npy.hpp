#pragma once
/// @file
/// Data larger than memory: a `.npy` file mapped into the address space (POSIX `mmap`) and
/// viewed as the d x N matrix of its observations, without reading or copying it.
///
/// A C-order (N, d) float array is already the column-major d x N matrix the models take (see
/// `io/npy.hpp`), so `basic_mapped_npy<S>::observations()` hands `em`, `online_em` and every
/// query a `basic_observations<S>` whose columns are pages of the file: the operating system
/// reads them in as the E-step walks through its blocks and drops them when memory is needed
/// (they are clean, file-backed pages). The E-step's blocks go through the file in order
/// within each wave of blocks, so a pass over the data is a sequential read; the mapping asks
/// for read-ahead (`madvise(MADV_SEQUENTIAL)`). The file's scalar type must be S (a float32
/// file for `basic_mapped_npy<float>`, float64 for double): a view cannot convert.
///
/// A page the E-step reaches before the operating system has read it stops that thread until
/// the disk delivers it, so a pass alternates between reading and computing. To overlap them,
/// run the solver with a `read_ahead_executor`: before each block it asks the kernel
/// (`madvise(MADV_WILLNEED)`) to start reading the part of the file a window (64 MB by
/// default) beyond the block, so the disk works while the threads compute. It changes no
/// arithmetic: the results are those of the executor it wraps, bit for bit.
///
/// POSIX only (Linux, macOS, BSD). The mapping is read-only: writing to the file through
/// another handle while it is mapped changes what the view sees.

#include <latent/core/error.hpp>
#include <latent/core/executor.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/io/npy.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace latent {

namespace detail {

/// Read-ahead requests go to the kernel in pieces of this many bytes (a multiple of any page
/// size): one request per 16 MB that a pass moves on.
inline constexpr std::uint64_t read_ahead_piece = std::uint64_t{16} << 20;

/// Which pieces of a file to ask for when a pass reads bytes [lo, hi) of it. The file's `size`
/// bytes are cut into pieces of `piece` bytes; `ahead` >= 1 is the read-ahead distance in
/// pieces. `ask(j)` is called for piece (j + ahead) mod count for every piece j whose first
/// byte lies in [lo, hi), and, when `first` (the pass's first block, whose `lo` is then 0),
/// also for pieces [0, ahead). So a pass that reads the file in order asks for every piece once,
/// `ahead` pieces before it reaches it, and its last blocks ask for the start of the next pass.
template <class Ask>
void read_ahead_pieces(std::uint64_t lo, std::uint64_t hi, bool first, std::uint64_t size, std::uint64_t piece,
                       std::uint64_t ahead, Ask&& ask) {
  const std::uint64_t count = size / piece + (size % piece != 0 ? 1 : 0);
  if (count == 0 || hi <= lo) return;
  if (first)
    for (std::uint64_t j = 0; j < std::min(ahead, count); ++j) ask(j);
  if (ahead >= count) return;  // the first block asked for the whole file
  for (std::uint64_t j = lo / piece + (lo % piece != 0 ? 1 : 0); j < count && j * piece < hi; ++j)
    ask((j + ahead) % count);
}

}  // namespace detail

/// A read-only memory map of a C-order (N, d) `.npy` file of scalar type S, viewed as a d x N
/// matrix with one observation per column. Movable, not copyable; unmaps on destruction.
template <Scalar S>
class basic_mapped_npy {
 public:
  using matrix_view = Eigen::Map<const matrix_t<S>>;

  /// Maps `path`.
  /// @throws invalid_argument if the file cannot be opened or mapped, its header is malformed,
  ///         its values are not of type S, it is in Fortran order, or it is shorter than its
  ///         header says
  explicit basic_mapped_npy(const std::string& path) : path_(path) {
    constexpr std::string_view fn = "mapped_npy";
    header_ = read_npy_header(path);
    detail::require(header_.word_size == static_cast<int>(sizeof(S)), fn, "'", path, "' holds float",
                    8 * header_.word_size, " values; map it as basic_mapped_npy<",
                    header_.word_size == 4 ? "float" : "double", "> or convert it");
    detail::require(!header_.fortran_order, fn, "'", path,
                    "' is in Fortran order (observations are not contiguous), so it cannot be viewed as "
                    "observation columns: read it with read_npy, or save numpy.ascontiguousarray(X)");
    const int fd = ::open(path.c_str(), O_RDONLY);
    detail::require(fd >= 0, fn, "cannot open '", path, "': ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      detail::throw_invalid(fn, "cannot stat '", path, "': ", std::strerror(e));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    const std::uint64_t need = header_.data_offset + header_.data_bytes();
    if (size_ < need) {
      ::close(fd);
      detail::throw_invalid(fn, "'", path, "' is truncated: its header promises ", need, " bytes, the file has ",
                            size_);
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file open
    detail::require(p != MAP_FAILED, fn, "cannot map '", path, "': ", std::strerror(e));
    base_ = p;
    ::madvise(base_, size_, MADV_SEQUENTIAL);
  }

  basic_mapped_npy(basic_mapped_npy&& o) noexcept
      : path_(std::move(o.path_)), header_(std::move(o.header_)), base_(std::exchange(o.base_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  basic_mapped_npy& operator=(basic_mapped_npy&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      header_ = std::move(o.header_);
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  basic_mapped_npy(const basic_mapped_npy&) = delete;
  basic_mapped_npy& operator=(const basic_mapped_npy&) = delete;
  ~basic_mapped_npy() { unmap(); }

  /// d, values per observation.
  Eigen::Index dim() const { return static_cast<Eigen::Index>(header_.variables()); }
  /// N, the observations.
  Eigen::Index size() const { return static_cast<Eigen::Index>(header_.observations()); }
  /// Bytes of data (d N sizeof(S)).
  std::uint64_t data_bytes() const { return header_.data_bytes(); }
  const npy_header& header() const { return header_; }
  const std::string& path() const { return path_; }

  /// The d x N view of the data (valid while this object lives).
  matrix_view matrix() const {
    return matrix_view(reinterpret_cast<const S*>(static_cast<const char*>(base_) + header_.data_offset), dim(), size());
  }
  /// The data as unweighted observations for the solvers (valid while this object lives).
  basic_observations<S> observations() const { return basic_observations<S>(matrix()); }

  /// Tells the operating system that columns [begin, end) are about to be read, in a pass
  /// through the file in column order (column 0 starts a pass): asks it to start reading the
  /// part of the file `window_bytes` beyond them (`madvise(MADV_WILLNEED)`, which returns
  /// without waiting for the disk), in 16 MB pieces, each piece asked for once per pass. Only
  /// advice: it changes no data, and a failed request is ignored. Used by
  /// `read_ahead_executor`; thread-safe.
  void read_ahead(Eigen::Index begin, Eigen::Index end, std::size_t window_bytes) const {
    if (base_ == nullptr || begin < 0 || end <= begin || end > size()) return;
    const std::uint64_t column = static_cast<std::uint64_t>(dim()) * sizeof(S);
    const std::uint64_t piece = detail::read_ahead_piece;
    const std::uint64_t ahead = std::max<std::uint64_t>(1, (window_bytes + piece - 1) / piece);
    const std::uint64_t lo = begin == 0 ? 0 : header_.data_offset + static_cast<std::uint64_t>(begin) * column;
    const std::uint64_t hi = header_.data_offset + static_cast<std::uint64_t>(end) * column;
    detail::read_ahead_pieces(lo, hi, begin == 0, size_, piece, ahead, [&](std::uint64_t j) {
      const std::uint64_t at = j * piece;
      ::madvise(static_cast<char*>(base_) + at, static_cast<std::size_t>(std::min(piece, size_ - at)), MADV_WILLNEED);
    });
  }

 private:
  void unmap() {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = nullptr;
  }

  std::string path_;
  npy_header header_;
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

using mapped_npy = basic_mapped_npy<double>;

/// An executor for passes over a mapped file: runs `Inner` (threads by default) and, before
/// each block, calls `file.read_ahead` for the block's columns, so the disk reads the next
/// `window_bytes` of the file while the threads compute (see the file comment). Results are
/// Inner's, bit for bit. Pass it to `em`, `e_step` or `variational_em` with
/// `file.observations()`; for a call over other data (a different column count) it only runs
/// Inner. The file must outlive the executor.
///
/// ```cpp
/// const latent::mapped_npy file("data.npy");
/// latent::read_ahead_executor ex(file, latent::thread_executor{.threads = 2});
/// auto fit = latent::em(gmm, file.observations(), ex, {.max_iterations = 20});
/// ```
template <Scalar S, Executor Inner = thread_executor>
class read_ahead_executor {
 public:
  /// Read-ahead distance when none is given: four 16 MB pieces.
  static constexpr std::size_t default_window = std::size_t{64} << 20;

  /// @throws invalid_argument if window_bytes is 0
  explicit read_ahead_executor(const basic_mapped_npy<S>& file, Inner inner = {},
                               std::size_t window_bytes = default_window)
      : file_(&file), inner_(std::move(inner)), window_(window_bytes) {
    detail::require(window_bytes > 0, "read_ahead_executor", "option 'window_bytes' must be positive");
  }

  template <class Stats, class Zero, class Block>
  double reduce(Eigen::Index n, Zero&& zero, Block&& block, Stats& total) const {
    if (n != file_->size()) return inner_.reduce(n, zero, block, total);
    return inner_.reduce(
        n, zero,
        [&](Eigen::Index begin, Eigen::Index end, Stats& part) {
          file_->read_ahead(begin, end, window_);
          return block(begin, end, part);
        },
        total);
  }
  double all_sum(double v) const { return inner_.all_sum(v); }

  const Inner& inner() const { return inner_; }
  std::size_t window_bytes() const { return window_; }

 private:
  const basic_mapped_npy<S>* file_;
  Inner inner_;
  std::size_t window_;
};

}  // namespace latent
