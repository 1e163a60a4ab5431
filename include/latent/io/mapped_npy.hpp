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
/// run the solver with a `read_ahead_executor`: during each pass a thread of its own reads the
/// file in order, up to a window (64 MB by default) beyond the blocks, and each block waits
/// until its columns are in; the disk sees one sequential stream and the computing threads
/// find their pages mapped. It changes no arithmetic: the results are those of the executor it
/// wraps, bit for bit.
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
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace latent {

template <Scalar S, Executor Inner = thread_executor>
class read_ahead_executor;

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

 private:
  template <Scalar, Executor>
  friend class read_ahead_executor;

  /// Bytes from the start of the map to the end of column `end` - 1 (to the data when 0).
  std::uint64_t bytes_through(Eigen::Index end) const {
    return header_.data_offset + static_cast<std::uint64_t>(end) * static_cast<std::uint64_t>(dim()) * sizeof(S);
  }

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

/// An executor for passes over a mapped file: while `Inner` (threads by default) computes, a
/// thread of its own reads the file in order, at most `window_bytes` beyond the blocks the
/// computing threads have reached, and each block waits until its columns have been read. So
/// the disk reads one sequential stream, as fast as it can, while the blocks compute, and the
/// computing threads never wait for a page fault themselves (see the file comment). Results
/// are Inner's, bit for bit. Pass it to `em`, `e_step` or `variational_em` with
/// `file.observations()`; for a call over other data (a different column count) it only runs
/// Inner. The file must outlive the executor.
///
/// ```cpp
/// const latent::mapped_npy file("data.npy");
/// latent::read_ahead_executor ex(file, latent::thread_executor{.threads = 2});
/// auto fit = latent::em(gmm, file.observations(), ex, {.max_iterations = 20});
/// ```
template <Scalar S, Executor Inner>
class read_ahead_executor {
 public:
  /// How far the reader may run ahead of the blocks when no window is given.
  static constexpr std::size_t default_window = std::size_t{64} << 20;

  /// @throws invalid_argument if window_bytes is 0
  explicit read_ahead_executor(const basic_mapped_npy<S>& file, Inner inner = {},
                               std::size_t window_bytes = default_window)
      : file_(&file), inner_(std::move(inner)), window_(window_bytes) {
    detail::require(window_bytes > 0, "read_ahead_executor", "option 'window_bytes' must be positive");
  }

  /// Throws what Inner and the blocks throw, and std::system_error if the reader thread cannot
  /// be started.
  template <class Stats, class Zero, class Block>
  double reduce(Eigen::Index n, Zero&& zero, Block&& block, Stats& total) const {
    if (n != file_->size()) return inner_.reduce(n, zero, block, total);
    reader pass(static_cast<const char*>(file_->base_), file_->size_, window_);
    return inner_.reduce(
        n, zero,
        [&](Eigen::Index begin, Eigen::Index end, Stats& part) {
          pass.wait_for(file_->bytes_through(end));
          return block(begin, end, part);
        },
        total);
  }
  double all_sum(double v) const { return inner_.all_sum(v); }

  const Inner& inner() const { return inner_; }
  std::size_t window_bytes() const { return window_; }

  /// One pass's reader: a thread that reads bytes [0, size) of a mapped region in order, in
  /// steps of at most 2 MB, touching one byte of every page (so the pages are read from the
  /// disk and mapped for every thread of the process), and asks the kernel to start reading
  /// each step `window` bytes before it gets there (`madvise(MADV_WILLNEED)`, which does not
  /// wait), so that the disk always has requests queued. It never reads more than `window`
  /// bytes and one step (`lead()`) beyond the furthest byte a block has asked for, so a pass
  /// over a file larger than memory does not push pages out before they are used. At the end it asks for the first
  /// `window` bytes again, where the next pass starts. Public for the tests.
  class reader {
   public:
    reader(const char* base, std::uint64_t size, std::uint64_t window)
        : base_(base), size_(size), window_(std::max<std::uint64_t>(window, 1)),
          step_(std::clamp<std::uint64_t>(window, page(), max_step)), thread_([this] { run(); }) {}
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    ~reader() {
      {
        std::lock_guard lock(mutex_);
        stop_ = true;
      }
      wanted_changed_.notify_one();
      thread_.join();
    }

    /// Returns once bytes [0, end) have been read (or the reader has stopped).
    void wait_for(std::uint64_t end) {
      std::unique_lock lock(mutex_);
      if (end > wanted_) {
        wanted_ = end;
        // Wake the reader only when it may go on (a wake per block would cost more than the
        // blocks of a file in the page cache).
        if (idle_ && read_ < wanted_ + window_) wanted_changed_.notify_one();
      }
      read_changed_.wait(lock, [&] { return read_ >= end || finished_; });
    }
    /// Bytes read so far, from the start.
    std::uint64_t bytes_read() const {
      std::lock_guard lock(mutex_);
      return read_;
    }
    /// A bound on how far the reader gets beyond the furthest byte asked for: the window plus
    /// one step.
    std::uint64_t lead() const { return window_ + step_; }

   private:
    static constexpr std::uint64_t max_step = std::uint64_t{2} << 20;
    static std::uint64_t page() { return static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)); }

    // Advice for bytes [lo, hi) of the region, from the start of lo's page (advice is only
    // advice: a failure is ignored).
    void advise(std::uint64_t lo, std::uint64_t hi) const {
      hi = std::min(hi, size_);
      if (lo >= hi) return;
      const auto at = reinterpret_cast<std::uintptr_t>(base_) + lo;
      const std::uintptr_t start = at - at % page();
      ::madvise(reinterpret_cast<void*>(start), static_cast<std::size_t>(hi - lo + (at - start)), MADV_WILLNEED);
    }

    void run() {
      advise(0, window_);
      std::uint64_t at = 0;
      const std::uint64_t p = page();
      while (at < size_) {
        {
          std::unique_lock lock(mutex_);
          idle_ = true;
          wanted_changed_.wait(lock, [&] { return stop_ || at < wanted_ + window_; });
          idle_ = false;
          if (stop_) break;
        }
        const std::uint64_t next = std::min(size_, at + step_);
        advise(at + window_, next + window_);
        for (std::uint64_t b = at - at % p; b < next; b += p)  // a volatile read is never left out
          static_cast<void>(*static_cast<const volatile char*>(base_ + b));
        {
          std::lock_guard lock(mutex_);
          read_ = next;
        }
        read_changed_.notify_all();
        at = next;
      }
      if (at >= size_) advise(0, window_);  // the next pass
      {
        std::lock_guard lock(mutex_);
        finished_ = true;
      }
      read_changed_.notify_all();
    }

    const char* base_;
    std::uint64_t size_, window_, step_;
    mutable std::mutex mutex_;
    std::condition_variable wanted_changed_, read_changed_;
    std::uint64_t wanted_ = 0, read_ = 0;
    bool stop_ = false, finished_ = false, idle_ = false;  // idle_: the reader waits for wanted_ to grow
    std::thread thread_;  // last: starts after every member above is ready
  };

 private:
  const basic_mapped_npy<S>* file_;
  Inner inner_;
  std::size_t window_;
};

}  // namespace latent
