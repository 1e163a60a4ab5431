#pragma once
/// @file
/// Reading IDX files (the format of MNIST and Fashion-MNIST) into the library's orientation:
/// one image per column.
///
/// An IDX file is a big-endian header and an array stored row-major (last index fastest):
///
/// | bytes | content |
/// |---|---|
/// | 0-1 | 0, 0 |
/// | 2 | element type: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64 |
/// | 3 | rank r >= 1 |
/// | 4 .. 4 + 4r | the r dimensions, unsigned 32-bit big-endian |
/// | then | prod(dims) elements, big-endian |
///
/// An image file (rank >= 2, e.g. N x 28 x 28) becomes a d x N matrix, d = the product of the
/// dimensions after the first, column n holding image n with its pixels in the file's
/// row-major order (pixel (i, j) of a 28 x 28 image at row 28 i + j). A label file (rank 1,
/// integer elements) becomes a vector of ints.
///
/// This header reads uncompressed files and needs nothing but the standard library and Eigen.
/// The datasets are usually distributed gzipped (Debian's `dataset-fashion-mnist` installs
/// /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, ...): for those include
/// <latent/io/idx_gzip.hpp>, which adds `read_idx_images_gz` / `read_idx_labels_gz` on top of
/// zlib (the one header of latent that needs it; link ZLIB::ZLIB from find_package(ZLIB)).
///
/// Every malformed input -- a wrong magic number, an unknown element type, a zero dimension,
/// a size that overflows, a truncated or over-long file, a non-finite float -- is an
/// `invalid_argument` naming the source and what was wrong; nothing is read out of bounds.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// Images read from an IDX file: `data` is d x N in scalar type S (column n = image n, its
/// values times the requested scale), `shape` the dimensions of one image (e.g. {28, 28}:
/// rows, columns), whose product is d.
template <Scalar S>
struct basic_idx_images {
  matrix_t<S> data;
  std::vector<Eigen::Index> shape;
};
using idx_images = basic_idx_images<float>;

namespace detail {

/// The element types of the IDX format.
enum class idx_type : unsigned char { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

/// A validated header: the element type and size, the dimensions and where the data start.
struct idx_header {
  idx_type type = idx_type::u8;
  std::size_t element_size = 1;
  std::vector<std::uint64_t> dims;
  std::size_t offset = 0;
  std::uint64_t count = 0;  ///< prod(dims)
};

inline std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

/// Parse and check the header of `bytes`; the data must fill the rest exactly.
inline idx_header parse_idx_header(std::span<const unsigned char> bytes, std::string_view fn, std::string_view source) {
  require(bytes.size() >= 4, fn, source, ": truncated IDX header (", bytes.size(), " bytes, at least 4 needed)");
  require(bytes[0] == 0 && bytes[1] == 0, fn, source, ": not an IDX file (magic number starts with ",
          int{bytes[0]}, ", ", int{bytes[1]}, ", expected 0, 0)",
          bytes[0] == 0x1f && bytes[1] == 0x8b
              ? "; the file is gzip-compressed: include <latent/io/idx_gzip.hpp> and use read_idx_*_gz"
              : "");
  idx_header h;
  switch (bytes[2]) {
    case 0x08: case 0x09: h.element_size = 1; break;
    case 0x0B: h.element_size = 2; break;
    case 0x0C: case 0x0D: h.element_size = 4; break;
    case 0x0E: h.element_size = 8; break;
    default:
      throw_invalid(fn, source, ": unknown IDX element type code ", int{bytes[2]},
                    " (expected 8, 9, 11, 12, 13 or 14: u8, i8, i16, i32, f32, f64)");
  }
  h.type = static_cast<idx_type>(bytes[2]);
  const std::size_t rank = bytes[3];
  require(rank >= 1, fn, source, ": IDX rank must be at least 1, got 0");
  h.offset = 4 + 4 * rank;
  require(bytes.size() >= h.offset, fn, source, ": truncated IDX header (", bytes.size(), " bytes, ", h.offset,
          " needed for rank ", rank, ")");
  const std::uint64_t available = (bytes.size() - h.offset) / h.element_size;
  h.count = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint64_t d = big_endian_u32(bytes.data() + 4 + 4 * i);
    require(d > 0, fn, source, ": IDX dimension ", i, " is 0");
    // Products beyond the data the file holds are a truncated (or corrupted) file, whatever
    // their size: checking against `available` first also rules out overflow.
    require(h.count <= available / d, fn, source, ": truncated IDX file: dimensions need more than the ",
            bytes.size() - h.offset, " bytes of data it holds");
    h.count *= d;
    h.dims.push_back(d);
  }
  const std::uint64_t expected = h.count * h.element_size;
  require(bytes.size() - h.offset == expected, fn, source, ": IDX file has ", bytes.size() - h.offset,
          " bytes of data, the dimensions need exactly ", expected);
  return h;
}

/// Element i of the data of `h` in `bytes`, converted to double (exact for every IDX type).
inline double idx_element(std::span<const unsigned char> bytes, const idx_header& h, std::uint64_t i) {
  const unsigned char* p = bytes.data() + h.offset + i * h.element_size;
  switch (h.type) {
    case idx_type::u8: return p[0];
    case idx_type::i8: return static_cast<std::int8_t>(p[0]);
    case idx_type::i16: return static_cast<std::int16_t>(static_cast<std::uint16_t>((p[0] << 8) | p[1]));
    case idx_type::i32: return static_cast<std::int32_t>(big_endian_u32(p));
    case idx_type::f32: {
      const std::uint32_t u = big_endian_u32(p);
      float f;
      std::memcpy(&f, &u, sizeof f);
      return f;
    }
    case idx_type::f64: {
      const std::uint64_t u = (std::uint64_t{big_endian_u32(p)} << 32) | big_endian_u32(p + 4);
      double f;
      std::memcpy(&f, &u, sizeof f);
      return f;
    }
  }
  return 0.0;
}

/// Every byte of a stream.
inline std::vector<unsigned char> read_all(std::istream& in) {
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Every byte of a file, opened in binary mode. @throws invalid_argument if it cannot be read.
inline std::vector<unsigned char> read_file_bytes(const std::filesystem::path& path, std::string_view fn) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), fn, "cannot open '", path.string(), "'");
  std::vector<unsigned char> bytes = read_all(in);
  require(!in.bad(), fn, "error while reading '", path.string(), "'");
  return bytes;
}

}  // namespace detail

/// The images of the IDX bytes `bytes` (rank >= 2: N x dims...) as a d x N matrix in scalar
/// type S, every value multiplied by `scale` (e.g. 1/255 for pixel intensities in [0, 1]).
/// @param source  a name for error messages (a file name)
/// @throws invalid_argument for malformed or truncated data, rank 1, or non-finite values
template <Scalar S = float>
basic_idx_images<S> parse_idx_images(std::span<const unsigned char> bytes, double scale = 1.0,
                                     std::string_view source = "idx") {
  constexpr std::string_view fn = "read_idx_images";
  require(std::isfinite(scale), fn, "argument 'scale' must be finite, got ", scale);
  const detail::idx_header h = detail::parse_idx_header(bytes, fn, source);
  require(h.dims.size() >= 2, fn, source, ": an image file needs rank >= 2 (N x image dimensions), got rank ",
          h.dims.size());
  constexpr auto max_index = static_cast<std::uint64_t>(std::numeric_limits<Eigen::Index>::max());
  require(h.count <= max_index, fn, source, ": too many elements (", h.count, ")");
  const auto n = static_cast<Eigen::Index>(h.dims[0]);
  const auto d = static_cast<Eigen::Index>(h.count / h.dims[0]);
  basic_idx_images<S> out;
  for (std::size_t i = 1; i < h.dims.size(); ++i) out.shape.push_back(static_cast<Eigen::Index>(h.dims[i]));
  out.data.resize(d, n);
  // The file's order (image by image, pixels row-major) is the matrix's column-major order.
  S* dst = out.data.data();
  if (h.type == detail::idx_type::u8) {
    // Every byte value times the scale, once: then one table look-up per pixel.
    S table[256];
    for (int v = 0; v < 256; ++v) table[v] = static_cast<S>(v * scale);
    const unsigned char* src = bytes.data() + h.offset;
    for (std::uint64_t i = 0; i < h.count; ++i) dst[i] = table[src[i]];
  } else {
    for (std::uint64_t i = 0; i < h.count; ++i) {
      const double v = detail::idx_element(bytes, h, i) * scale;
      require(std::isfinite(v), fn, source, ": element ", i, " is not finite (", v, ")");
      dst[i] = static_cast<S>(v);
    }
  }
  return out;
}

/// The labels of the IDX bytes `bytes` (rank 1, integer elements).
/// @throws invalid_argument for malformed or truncated data, another rank or float elements
inline std::vector<int> parse_idx_labels(std::span<const unsigned char> bytes, std::string_view source = "idx") {
  constexpr std::string_view fn = "read_idx_labels";
  const detail::idx_header h = detail::parse_idx_header(bytes, fn, source);
  require(h.dims.size() == 1, fn, source, ": a label file has rank 1, got rank ", h.dims.size());
  require(h.type != detail::idx_type::f32 && h.type != detail::idx_type::f64, fn, source,
          ": labels must be integers, the file holds floating-point numbers");
  std::vector<int> labels(static_cast<std::size_t>(h.count));
  for (std::uint64_t i = 0; i < h.count; ++i) labels[i] = static_cast<int>(detail::idx_element(bytes, h, i));
  return labels;
}

/// `parse_idx_images` of every byte of a stream (open it in binary mode).
template <Scalar S = float>
basic_idx_images<S> read_idx_images(std::istream& in, double scale = 1.0, std::string_view source = "idx") {
  const std::vector<unsigned char> bytes = detail::read_all(in);
  return parse_idx_images<S>(bytes, scale, source);
}

/// `parse_idx_images` of an uncompressed IDX file (for a .gz file see io/idx_gzip.hpp).
/// @throws invalid_argument if the file cannot be read or is malformed (a gzipped file
///         included, with a message that says so)
template <Scalar S = float>
basic_idx_images<S> read_idx_images(const std::filesystem::path& path, double scale = 1.0) {
  const std::vector<unsigned char> bytes = detail::read_file_bytes(path, "read_idx_images");
  return parse_idx_images<S>(bytes, scale, path.string());
}

/// `parse_idx_labels` of every byte of a stream (open it in binary mode).
inline std::vector<int> read_idx_labels(std::istream& in, std::string_view source = "idx") {
  const std::vector<unsigned char> bytes = detail::read_all(in);
  return parse_idx_labels(bytes, source);
}

/// `parse_idx_labels` of an uncompressed IDX file (for a .gz file see io/idx_gzip.hpp).
inline std::vector<int> read_idx_labels(const std::filesystem::path& path) {
  const std::vector<unsigned char> bytes = detail::read_file_bytes(path, "read_idx_labels");
  return parse_idx_labels(bytes, path.string());
}

}  // namespace latent
