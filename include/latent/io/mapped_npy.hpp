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
/// POSIX only (Linux, macOS, BSD). The mapping is read-only: writing to the file through
/// another handle while it is mapped changes what the view sees.

#include <latent/core/error.hpp>
#include <latent/core/observations.hpp>
#include <latent/core/scalar.hpp>
#include <latent/io/npy.hpp>

#include <Eigen/Core>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace latent {

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

}  // namespace latent
