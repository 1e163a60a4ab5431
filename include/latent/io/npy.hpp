#pragma once
/// @file
/// NumPy `.npy` files: the on-disk format for data too large to parse, and the one Python
/// users hand over (`numpy.save("x.npy", X)`).
///
/// FORMAT (NumPy's own, version 1.0; 2.0 and 3.0 are read too). The file starts with the six
/// bytes "\x93NUMPY", a major and a minor version byte, the header length (2 little-endian
/// bytes in version 1, 4 in versions 2 and 3), and the header: an ASCII Python dict literal
/// such as `{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 16), }`, padded with
/// spaces and ended by a newline so that the data start at a multiple of 64 bytes. The data
/// follow, raw.
///
/// ORIENTATION. A NumPy data matrix X has shape (N, d): one observation per row, the scikit-
/// learn convention. In C order (NumPy's default) its bytes are, in order, observation 0's d
/// values, then observation 1's: exactly the column-major d x N matrix this library uses, with
/// one observation per column. So a C-order (N, d) file is viewed without any copy (see
/// `io/mapped_npy.hpp`) and read with one; a Fortran-order (N, d) file is read with a
/// transposing copy (it cannot be viewed); a 1-d array of shape (N,) is N observations of one
/// variable. Only little-endian float32 ('<f4') and float64 ('<f8') data are accepted; values
/// are converted to the requested scalar type on reading.
///
/// WRITING. `write_npy(path, x)` writes a d x N matrix as a C-order (N, d) array; the
/// streaming `basic_npy_writer<S>` appends blocks of columns to a file whose N is not known in
/// advance (it fixes the header on `close`), so data larger than memory can be generated or
/// converted block by block.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace latent {

/// What a `.npy` header says.
struct npy_header {
  char kind = 'f';                  ///< 'f' for floating point (other kinds are rejected)
  int word_size = 8;                ///< bytes per value: 4 or 8
  bool fortran_order = false;       ///< column-major (Fortran) rather than row-major (C) order
  std::vector<std::int64_t> shape;  ///< NumPy's shape, e.g. (N, d)
  std::size_t data_offset = 0;      ///< where the data start, in bytes from the file's start

  /// N: the number of observations (the first dimension).
  std::int64_t observations() const { return shape.empty() ? 1 : shape[0]; }
  /// d: values per observation (1 for a 1-d array).
  std::int64_t variables() const { return shape.size() < 2 ? 1 : shape[1]; }
  /// Bytes of data the header promises.
  std::uint64_t data_bytes() const {
    return static_cast<std::uint64_t>(observations()) * static_cast<std::uint64_t>(variables()) *
           static_cast<std::uint64_t>(word_size);
  }
};

namespace detail::npy {

inline constexpr char magic[] = "\x93NUMPY";

/// The value of `key` in a header dict, as the raw text up to the next top-level comma
/// (shape tuples keep their parentheses).
inline std::string dict_value(std::string_view dict, std::string_view key, std::string_view source) {
  // (concat, not operator+: g++ 12 warns falsely about string operator+ chains, PR 105329)
  const std::string quoted_single = concat('\'', key, '\''), quoted_double = concat('"', key, '"');
  std::size_t at = dict.find(quoted_single);
  std::size_t len = quoted_single.size();
  if (at == std::string_view::npos) {
    at = dict.find(quoted_double);
    len = quoted_double.size();
  }
  require(at != std::string_view::npos, "read_npy", source, ": the header has no '", key, "' entry");
  std::size_t i = dict.find(':', at + len);
  require(i != std::string_view::npos, "read_npy", source, ": malformed header entry '", key, "'");
  ++i;
  while (i < dict.size() && dict[i] == ' ') ++i;
  std::size_t end = i;
  int depth = 0;
  for (; end < dict.size(); ++end) {
    const char c = dict[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if ((c == ',' || c == '}') && depth == 0) break;
  }
  std::string value(dict.substr(i, end - i));
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

/// Parses the header dict text.
inline npy_header parse_dict(std::string_view dict, std::size_t data_offset, std::string_view source) {
  npy_header h;
  h.data_offset = data_offset;
  std::string descr = dict_value(dict, "descr", source);
  require(descr.size() >= 4 && (descr.front() == '\'' || descr.front() == '"') && descr.back() == descr.front(),
          "read_npy", source, ": unreadable 'descr' ", descr);
  descr = descr.substr(1, descr.size() - 2);
  // '<f8', '<f4'; '|' or '=' would mean no or native byte order, accepted on this (little-endian) host.
  require(descr.size() == 3 && (descr[0] == '<' || descr[0] == '=' || descr[0] == '|'), "read_npy", source,
          ": only little-endian float32 or float64 data ('<f4', '<f8') are supported, got '", descr, "'");
  h.kind = descr[1];
  require(h.kind == 'f' && (descr[2] == '4' || descr[2] == '8'), "read_npy", source,
          ": only float32 or float64 data ('<f4', '<f8') are supported, got '", descr,
          "' (convert with X.astype(numpy.float64))");
  h.word_size = descr[2] - '0';

  const std::string order = dict_value(dict, "fortran_order", source);
  require(order == "False" || order == "True", "read_npy", source, ": unreadable 'fortran_order' ", order);
  h.fortran_order = order == "True";

  const std::string shape = dict_value(dict, "shape", source);
  require(shape.size() >= 2 && shape.front() == '(' && shape.back() == ')', "read_npy", source,
          ": unreadable 'shape' ", shape);
  std::size_t i = 1;
  while (i + 1 < shape.size()) {
    while (i + 1 < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
    if (i + 1 >= shape.size()) break;
    std::int64_t v = 0;
    bool digits = false;
    while (i + 1 < shape.size() && shape[i] >= '0' && shape[i] <= '9') {
      require(v <= (std::numeric_limits<std::int64_t>::max() - 9) / 10, "read_npy", source, ": 'shape' ", shape,
              " overflows");
      v = v * 10 + (shape[i] - '0');
      digits = true;
      ++i;
    }
    require(digits, "read_npy", source, ": unreadable 'shape' ", shape);
    h.shape.push_back(v);
  }
  require(h.shape.size() == 1 || h.shape.size() == 2, "read_npy", source,
          ": only 1-d (N,) or 2-d (N, d) arrays hold observations, got shape ", shape);
  require(h.observations() > 0 && h.variables() > 0, "read_npy", source, ": the array is empty, shape ", shape);
  require(static_cast<std::uint64_t>(h.observations()) <=
              std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(h.variables()) / 8,
          "read_npy", source, ": 'shape' ", shape, " overflows");
  return h;
}

/// The header of the `size` bytes at `bytes` (at least the header itself).
inline npy_header parse_header(const unsigned char* bytes, std::size_t size, std::string_view source) {
  require(size >= 10 && std::memcmp(bytes, magic, 6) == 0, "read_npy", source,
          ": not a .npy file (no \\x93NUMPY magic)");
  const int major = bytes[6];
  require(major >= 1 && major <= 3, "read_npy", source, ": unsupported .npy version ", major, ".", int(bytes[7]));
  std::size_t header_len, start;
  if (major == 1) {
    header_len = std::size_t(bytes[8]) | (std::size_t(bytes[9]) << 8);
    start = 10;
  } else {
    require(size >= 12, "read_npy", source, ": truncated header");
    header_len = std::size_t(bytes[8]) | (std::size_t(bytes[9]) << 8) | (std::size_t(bytes[10]) << 16) |
                 (std::size_t(bytes[11]) << 24);
    start = 12;
  }
  require(header_len <= size - start, "read_npy", source, ": truncated header (", header_len,
          " bytes announced)");
  const std::string_view dict(reinterpret_cast<const char*>(bytes + start), header_len);
  return parse_dict(dict, start + header_len, source);
}

/// Reads the header from a stream positioned at the file's start; leaves it at the data.
inline npy_header read_header(std::istream& in, std::string_view source) {
  unsigned char prefix[12] = {};
  in.read(reinterpret_cast<char*>(prefix), 10);
  require(in.gcount() == 10, "read_npy", source, ": not a .npy file (shorter than its preamble)");
  std::size_t have = 10;
  if (prefix[6] >= 2) {
    in.read(reinterpret_cast<char*>(prefix + 10), 2);
    require(in.gcount() == 2, "read_npy", source, ": truncated header");
    have = 12;
  }
  require(std::memcmp(prefix, magic, 6) == 0, "read_npy", source, ": not a .npy file (no \\x93NUMPY magic)");
  const std::size_t header_len = prefix[6] == 1 ? (std::size_t(prefix[8]) | (std::size_t(prefix[9]) << 8))
                                                : (std::size_t(prefix[8]) | (std::size_t(prefix[9]) << 8) |
                                                   (std::size_t(prefix[10]) << 16) | (std::size_t(prefix[11]) << 24));
  require(header_len <= (std::size_t{1} << 24), "read_npy", source, ": implausible header length ", header_len);
  std::vector<unsigned char> all(have + header_len);
  std::memcpy(all.data(), prefix, have);
  in.read(reinterpret_cast<char*>(all.data() + have), static_cast<std::streamsize>(header_len));
  require(static_cast<std::size_t>(in.gcount()) == header_len, "read_npy", source, ": truncated header");
  return parse_header(all.data(), all.size(), source);
}

/// The header text for a C-order (n, d) array of `word` bytes per value, padded so that the
/// data start at a multiple of 64 bytes; the shape field is padded to `shape_width`
/// characters so that a streaming writer can rewrite it in place.
inline std::string make_header(std::int64_t n, std::int64_t d, int word, std::size_t shape_width = 0) {
  std::string shape = concat('(', n, ", ", d, ')');
  if (shape.size() < shape_width) shape += std::string(shape_width - shape.size(), ' ');
  std::string dict = concat("{'descr': '<f", word, "', 'fortran_order': False, 'shape': ", shape, ", }");
  const std::size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out(magic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  out += dict;
  return out;
}

/// The shape width a streaming writer reserves: room for any 64-bit N.
inline constexpr std::size_t streaming_shape_width = 48;

}  // namespace detail::npy

/// The header of a `.npy` file.
/// @throws invalid_argument if the file cannot be opened or its header is malformed or
///         describes data this library cannot read (see the file comment)
inline npy_header read_npy_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  detail::require(in.good(), "read_npy", "cannot open '", path, "'");
  return detail::npy::read_header(in, path);
}

/// A `.npy` file's data as a d x N matrix, one observation per column (see ORIENTATION), in
/// scalar type S.
/// @throws invalid_argument if the file cannot be opened, is malformed or truncated
template <Scalar S = double>
matrix_t<S> read_npy(const std::string& path) {
  static_assert(std::endian::native == std::endian::little, "latent's .npy reader assumes a little-endian host");
  std::ifstream in(path, std::ios::binary);
  detail::require(in.good(), "read_npy", "cannot open '", path, "'");
  const npy_header h = detail::npy::read_header(in, path);
  const auto n = static_cast<Eigen::Index>(h.observations()), d = static_cast<Eigen::Index>(h.variables());
  matrix_t<S> x(d, n);
  const auto load = [&](auto tag) {
    using T = decltype(tag);
    // Read in the file's order: C order is d x N column-major; Fortran order N x d.
    const Eigen::Index rows = h.fortran_order ? n : d, cols = h.fortran_order ? d : n;
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic> buffer(rows, std::min<Eigen::Index>(cols, 4096));
    for (Eigen::Index c0 = 0; c0 < cols; c0 += buffer.cols()) {
      const Eigen::Index c = std::min(buffer.cols(), cols - c0);
      const auto bytes = static_cast<std::streamsize>(rows * c * static_cast<Eigen::Index>(sizeof(T)));
      in.read(reinterpret_cast<char*>(buffer.data()), bytes);
      detail::require(in.gcount() == bytes, "read_npy", path, ": truncated data (the header promises ", h.data_bytes(),
                      " bytes)");
      if (h.fortran_order)
        x.middleRows(c0, c) = buffer.leftCols(c).transpose().template cast<S>();
      else
        x.middleCols(c0, c) = buffer.leftCols(c).template cast<S>();
    }
  };
  if (h.word_size == 8)
    load(double{});
  else
    load(float{});
  return x;
}

/// Streams blocks of columns into a `.npy` file (float32 for S = float, float64 for double)
/// whose number of observations is fixed only on `close()`: the header is written first with
/// room for any N and rewritten at the end. A writer that is destroyed without `close()`
/// closes itself (errors are then swallowed: call `close()` to see them).
template <Scalar S>
class basic_npy_writer {
 public:
  /// @param d  values per observation (rows of the blocks), >= 1
  /// @throws invalid_argument if d < 1 or the file cannot be created
  basic_npy_writer(const std::string& path, Eigen::Index d) : path_(path), d_(d) {
    detail::require(d >= 1, "npy_writer", "argument 'd' must be positive, got ", d);
    out_.open(path, std::ios::binary | std::ios::trunc);
    detail::require(out_.good(), "npy_writer", "cannot create '", path, "'");
    const std::string header = detail::npy::make_header(0, d_, sizeof(S), detail::npy::streaming_shape_width);
    out_.write(header.data(), static_cast<std::streamsize>(header.size()));
  }
  basic_npy_writer(const basic_npy_writer&) = delete;
  basic_npy_writer& operator=(const basic_npy_writer&) = delete;
  ~basic_npy_writer() {
    try {
      close();
    } catch (...) {
    }
  }

  /// Appends the columns of `block` (d x b) as b observations.
  /// @throws invalid_argument for a block with another number of rows, or after `close`
  template <class Derived>
  void append(const Eigen::MatrixBase<Derived>& block) {
    detail::require(out_.is_open(), "npy_writer::append", "the writer of '", path_, "' is closed");
    detail::require(block.rows() == d_, "npy_writer::append", "argument 'block' must have ", d_, " rows, got ",
                    block.rows());
    const matrix_t<S> b = block.template cast<S>();  // contiguous column-major
    out_.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size() * sizeof(S)));
    detail::require(out_.good(), "npy_writer::append", "writing '", path_, "' failed (disk full?)");
    n_ += block.cols();
  }

  /// Observations written so far.
  Eigen::Index observations() const { return n_; }

  /// Writes the final header and closes the file. A file of zero observations is valid NumPy
  /// but holds no data this library reads.
  void close() {
    if (!out_.is_open()) return;
    out_.seekp(0);
    const std::string header = detail::npy::make_header(n_, d_, sizeof(S), detail::npy::streaming_shape_width);
    out_.write(header.data(), static_cast<std::streamsize>(header.size()));
    out_.close();
    detail::require(!out_.fail(), "npy_writer::close", "finishing '", path_, "' failed");
  }

 private:
  std::string path_;
  Eigen::Index d_;
  Eigen::Index n_ = 0;
  std::ofstream out_;
};

/// Writes the d x N matrix `x` (one observation per column) as a C-order (N, d) `.npy` array
/// of float32 (float data) or float64 (anything else), which `numpy.load` reads as N rows.
/// @throws invalid_argument if the file cannot be written
template <class Derived>
void write_npy(const std::string& path, const Eigen::MatrixBase<Derived>& x) {
  using S = std::conditional_t<std::is_same_v<typename Derived::Scalar, float>, float, double>;
  basic_npy_writer<S> w(path, x.rows());
  w.append(x);
  w.close();
}

}  // namespace latent
