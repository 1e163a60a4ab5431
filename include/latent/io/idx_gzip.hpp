#pragma once
/// @file
/// Gzipped IDX files (MNIST, Fashion-MNIST as distributed): the one header of latent that
/// needs zlib. Everything else, io/idx.hpp included, needs only Eigen; include this header only
/// where you read .gz files, and link zlib:
///
///     find_package(ZLIB REQUIRED)                      # Debian: zlib1g-dev
///     target_link_libraries(my_program PRIVATE latent::latent ZLIB::ZLIB)
///
/// Decompression is in memory (the Fashion-MNIST training images are 26 MB compressed, 47 MB
/// decompressed), then the bytes are parsed by io/idx.hpp. A truncated or corrupted stream
/// (zlib checks the gzip CRC-32 and length) is an `invalid_argument`.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/io/idx.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// True if `bytes` start with the gzip magic number (0x1f 0x8b).
inline bool is_gzip(std::span<const unsigned char> bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

/// The decompressed content of the gzip data `bytes` (one or more concatenated gzip members).
/// @param source  a name for error messages
/// @throws invalid_argument if the data are not gzip, truncated or corrupted (bad CRC-32)
inline std::vector<unsigned char> gunzip(std::span<const unsigned char> bytes, std::string_view source = "gzip") {
  constexpr std::string_view fn = "gunzip";
  require(is_gzip(bytes), fn, source, ": not gzip data (no gzip magic number)");
  z_stream zs{};
  // 16 + MAX_WBITS: a gzip wrapper (header and CRC-32 trailer), the largest window.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("gunzip: zlib initialization failed");
  struct end_guard {
    z_stream* zs;
    ~end_guard() { inflateEnd(zs); }
  } guard{&zs};
  std::vector<unsigned char> out;
  out.reserve(bytes.size() * 2);
  std::size_t fed = 0;
  // zlib counts input in uInt (32 bits): feed at most 1 GB at a time.
  const auto refill = [&] {
    if (zs.avail_in == 0 && fed < bytes.size()) {
      const std::size_t n = std::min<std::size_t>(bytes.size() - fed, std::size_t{1} << 30);
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(bytes.data() + fed));
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
  };
  unsigned char buffer[1 << 16];
  for (;;) {
    refill();
    zs.next_out = buffer;
    zs.avail_out = sizeof buffer;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), buffer, buffer + (sizeof buffer - zs.avail_out));
    const bool input_left = zs.avail_in > 0 || fed < bytes.size();
    if (ret == Z_STREAM_END) {
      if (!input_left) return out;
      // Another member follows (gzip files may be concatenations).
      require(inflateReset(&zs) == Z_OK, fn, source, ": zlib could not start the next gzip member");
      continue;
    }
    if (ret == Z_OK && (input_left || zs.avail_out == 0)) continue;
    require(ret != Z_OK && ret != Z_BUF_ERROR, fn, source, ": truncated gzip data (", bytes.size(),
            " bytes end inside the compressed stream)");
    const std::string reason = zs.msg != nullptr ? std::string(zs.msg) : "error code " + std::to_string(ret);
    throw_invalid(fn, source, ": corrupted gzip data (zlib: ", reason, ")");
  }
}

namespace detail {
/// The bytes of a file, decompressed if it is gzip (and as they are otherwise).
inline std::vector<unsigned char> read_maybe_gzip(const std::filesystem::path& path, std::string_view fn) {
  std::vector<unsigned char> bytes = read_file_bytes(path, fn);
  if (is_gzip(bytes)) return gunzip(bytes, path.string());
  return bytes;
}
}  // namespace detail

/// `read_idx_images` of a gzipped IDX file (e.g. train-images-idx3-ubyte.gz); an uncompressed
/// file is read as it is.
/// @throws invalid_argument if the file cannot be read, or its compressed stream or IDX data
///         are malformed or truncated
template <Scalar S = float>
basic_idx_images<S> read_idx_images_gz(const std::filesystem::path& path, double scale = 1.0) {
  const std::vector<unsigned char> bytes = detail::read_maybe_gzip(path, "read_idx_images_gz");
  return parse_idx_images<S>(bytes, scale, path.string());
}

/// `read_idx_labels` of a gzipped IDX file (e.g. train-labels-idx1-ubyte.gz); an uncompressed
/// file is read as it is.
inline std::vector<int> read_idx_labels_gz(const std::filesystem::path& path) {
  const std::vector<unsigned char> bytes = detail::read_maybe_gzip(path, "read_idx_labels_gz");
  return parse_idx_labels(bytes, path.string());
}

}  // namespace latent
