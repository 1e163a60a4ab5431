// Dataset readers: IDX files (MNIST / Fashion-MNIST), plain and gzipped.
#include <latent/core/error.hpp>
#include <latent/io/idx.hpp>
#include <latent/io/idx_gzip.hpp>

#include "support/test_support.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using latent::invalid_argument;

namespace {

using bytes = std::vector<unsigned char>;

// An IDX header: 0, 0, type, rank, then the dimensions big-endian.
bytes idx_header(unsigned char type, const std::vector<std::uint32_t>& dims) {
  bytes b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (const std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<unsigned char>(d >> shift));
  return b;
}

// Three 2 x 4 unsigned-byte images whose pixel (i, j) of image n is 100 n + 10 i + j.
bytes three_images() {
  bytes b = idx_header(0x08, {3, 2, 4});
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) b.push_back(static_cast<unsigned char>(100 * n + 10 * i + j));
  return b;
}

bytes labels(const std::vector<unsigned char>& values) {
  bytes b = idx_header(0x08, {static_cast<std::uint32_t>(values.size())});
  b.insert(b.end(), values.begin(), values.end());
  return b;
}

// gzip-compress with zlib (the writer side of what the reader undoes).
bytes gzip(const bytes& in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  bytes out(deflateBound(&zs, static_cast<uLong>(in.size())) + 64);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A file in the system's temporary folder, removed at the end of the test.
struct temp_file {
  std::filesystem::path path;
  temp_file(const std::string& name, const bytes& content)
      : path(std::filesystem::temp_directory_path() / ("latent_io_test_" + name)) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  }
  ~temp_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

}  // namespace

TEMPLATE_TEST_CASE("idx: images become columns in the file's pixel order, scaled", "[io][idx]", float, double) {
  const bytes b = three_images();
  const latent::basic_idx_images<TestType> im = latent::parse_idx_images<TestType>(b, 1.0 / 255.0);
  REQUIRE(im.data.rows() == 8);
  REQUIRE(im.data.cols() == 3);
  CHECK(im.shape == std::vector<Eigen::Index>{2, 4});
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        CHECK(im.data(4 * i + j, n) == static_cast<TestType>((100 * n + 10 * i + j) * (1.0 / 255.0)));
  // The stream reader and an unscaled read.
  std::istringstream in(std::string(b.begin(), b.end()));
  const latent::basic_idx_images<TestType> raw = latent::read_idx_images<TestType>(in);
  CHECK(raw.data(7, 2) == TestType(213));
}

TEST_CASE("idx: every element type, big-endian", "[io][idx]") {
  // int16 -2 and 300, int32 -70000 and 5, float32 0.5 and -1.25, float64 3.0 and 1e300, int8 -1 and 7.
  bytes i16 = idx_header(0x0B, {1, 2});
  i16.insert(i16.end(), {0xFF, 0xFE, 0x01, 0x2C});
  bytes i32 = idx_header(0x0C, {1, 2});
  i32.insert(i32.end(), {0xFF, 0xFE, 0xEE, 0x90, 0x00, 0x00, 0x00, 0x05});
  bytes f32 = idx_header(0x0D, {1, 2});
  f32.insert(f32.end(), {0x3F, 0x00, 0x00, 0x00, 0xBF, 0xA0, 0x00, 0x00});
  bytes f64 = idx_header(0x0E, {1, 2});
  f64.insert(f64.end(), {0x40, 0x08, 0, 0, 0, 0, 0, 0, 0x7E, 0x37, 0xE4, 0x3C, 0x88, 0x00, 0x75, 0x9C});
  bytes i8 = idx_header(0x09, {1, 2});
  i8.insert(i8.end(), {0xFF, 0x07});
  CHECK(latent::parse_idx_images<double>(i16).data == Eigen::Vector2d(-2, 300));
  CHECK(latent::parse_idx_images<double>(i32).data == Eigen::Vector2d(-70000, 5));
  CHECK(latent::parse_idx_images<double>(f32).data == Eigen::Vector2d(0.5, -1.25));
  CHECK(latent::parse_idx_images<double>(f64).data == Eigen::Vector2d(3.0, 1e300));
  CHECK(latent::parse_idx_images<double>(i8).data == Eigen::Vector2d(-1, 7));
  bytes l16 = idx_header(0x0B, {2});
  l16.insert(l16.end(), {0xFF, 0xFE, 0x01, 0x2C});
  CHECK(latent::parse_idx_labels(l16) == std::vector<int>{-2, 300});
  CHECK(latent::parse_idx_labels(labels({3, 0, 9})) == std::vector<int>{3, 0, 9});
  // A float that overflows the requested type's range is caught as non-finite after scaling.
  CHECK_THROWS_AS(latent::parse_idx_images<double>(f64, 1e10), invalid_argument);
}

TEST_CASE("idx: truncated, over-long and malformed data are invalid_argument", "[io][idx][bad-input]") {
  const bytes good = three_images();
  // Every proper prefix: from an empty buffer to one byte short.
  for (std::size_t len = 0; len < good.size(); ++len) {
    INFO("prefix of " << len << " bytes");
    const bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(latent::parse_idx_images<float>(cut), invalid_argument);
  }
  const bytes lab = labels({1, 2, 3});
  for (std::size_t len = 0; len < lab.size(); ++len) {
    const bytes cut(lab.begin(), lab.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(latent::parse_idx_labels(cut), invalid_argument);
  }
  bytes longer = good;
  longer.push_back(0);
  CHECK_THROWS_AS(latent::parse_idx_images<float>(longer), invalid_argument);
  bytes magic = good;
  magic[1] = 1;
  CHECK_THROWS_AS(latent::parse_idx_images<float>(magic), invalid_argument);
  bytes type = good;
  type[2] = 0x0A;
  CHECK_THROWS_AS(latent::parse_idx_images<float>(type), invalid_argument);
  bytes rank0 = good;
  rank0[3] = 0;
  CHECK_THROWS_AS(latent::parse_idx_images<float>(rank0), invalid_argument);
  // Dimensions whose product overflows 64 bits, or is far beyond the data.
  const bytes huge = idx_header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF});
  CHECK_THROWS_AS(latent::parse_idx_images<float>(huge), invalid_argument);
  CHECK_THROWS_AS(latent::parse_idx_images<float>(idx_header(0x08, {0, 28, 28})), invalid_argument);
  // Wrong ranks and types for images and labels.
  CHECK_THROWS_AS(latent::parse_idx_images<float>(lab), invalid_argument);
  CHECK_THROWS_AS(latent::parse_idx_labels(good), invalid_argument);
  bytes float_labels = idx_header(0x0D, {1});
  float_labels.insert(float_labels.end(), {0x3F, 0x80, 0, 0});
  CHECK_THROWS_AS(latent::parse_idx_labels(float_labels), invalid_argument);
  bytes nan = idx_header(0x0D, {1, 1});
  nan.insert(nan.end(), {0x7F, 0xC0, 0, 0});
  CHECK_THROWS_AS(latent::parse_idx_images<float>(nan), invalid_argument);
  CHECK_THROWS_AS(latent::parse_idx_images<float>(good, std::numeric_limits<double>::infinity()), invalid_argument);
  // A missing file, and a gzipped file given to the plain reader (the message says what to do).
  CHECK_THROWS_AS(latent::read_idx_images("/nonexistent/latent/file.idx"), invalid_argument);
  const temp_file gz("images.idx.gz", gzip(good));
  try {
    latent::read_idx_images(gz.path);
    FAIL("no exception");
  } catch (const invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("idx_gzip.hpp"));
  }
}

TEST_CASE("idx_gzip: gzipped files and buffers, truncated or corrupted streams", "[io][idx][gzip]") {
  const bytes good = three_images();
  const bytes gz = gzip(good);
  CHECK(latent::is_gzip(gz));
  CHECK_FALSE(latent::is_gzip(good));
  CHECK(latent::gunzip(gz) == good);
  // Two concatenated members decompress to the concatenation.
  bytes twice = gz;
  twice.insert(twice.end(), gz.begin(), gz.end());
  bytes expected = good;
  expected.insert(expected.end(), good.begin(), good.end());
  CHECK(latent::gunzip(twice) == expected);
  for (std::size_t len = 0; len < gz.size(); ++len) {
    INFO("prefix of " << len << " of " << gz.size() << " bytes");
    const bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(latent::gunzip(cut), invalid_argument);
  }
  // A flipped bit in the CRC-32 trailer, and trailing garbage.
  bytes crc = gz;
  crc[crc.size() - 6] ^= 0x01;
  CHECK_THROWS_AS(latent::gunzip(crc), invalid_argument);
  bytes garbage = gz;
  garbage.insert(garbage.end(), {1, 2, 3});
  CHECK_THROWS_AS(latent::gunzip(garbage), invalid_argument);
  // Files: gzipped or not, the _gz readers read both.
  const temp_file images("images.gz", gz), plain("images.idx", good), lab("labels.gz", gzip(labels({4, 2})));
  CHECK(latent::read_idx_images_gz<double>(images.path).data == latent::parse_idx_images<double>(good).data);
  CHECK(latent::read_idx_images_gz<double>(plain.path).data == latent::parse_idx_images<double>(good).data);
  CHECK(latent::read_idx_images<double>(plain.path).data == latent::parse_idx_images<double>(good).data);
  CHECK(latent::read_idx_labels_gz(lab.path) == std::vector<int>{4, 2});
  const temp_file cut("cut.gz", bytes(gz.begin(), gz.end() - 10));
  CHECK_THROWS_AS(latent::read_idx_images_gz(cut.path), invalid_argument);
}

TEST_CASE("idx_gzip: the Fashion-MNIST files of Debian's dataset-fashion-mnist", "[io][idx][fashion-mnist]") {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  const std::filesystem::path images = dir / "train-images-idx3-ubyte.gz", labels_file = dir / "train-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(images) || !std::filesystem::exists(labels_file)) {
    WARN("Fashion-MNIST not installed under " << dir << " (Debian package dataset-fashion-mnist): check skipped");
    return;
  }
  const latent::idx_images x = latent::read_idx_images_gz(images, 1.0 / 255.0);
  CHECK(x.data.rows() == 784);
  CHECK(x.data.cols() == 60000);
  CHECK(x.shape == std::vector<Eigen::Index>{28, 28});
  CHECK(x.data.minCoeff() == 0.0f);
  CHECK(x.data.maxCoeff() == 1.0f);
  const std::vector<int> y = latent::read_idx_labels_gz(labels_file);
  REQUIRE(y.size() == 60000);
  // Ten classes of 6000 images each.
  REQUIRE(*std::min_element(y.begin(), y.end()) == 0);
  REQUIRE(*std::max_element(y.begin(), y.end()) == 9);
  std::vector<int> counts(10, 0);
  for (const int label : y) ++counts[static_cast<std::size_t>(label)];
  CHECK(counts == std::vector<int>(10, 6000));
}
