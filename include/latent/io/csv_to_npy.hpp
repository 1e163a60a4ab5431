#pragma once
/// @file
/// A numeric CSV file to a `.npy` file, streamed: constant memory whatever the file's size.
///
/// The CSV is read a chunk of records at a time (`parse_csv`'s format and checks: a header
/// line of names, then one record per line) and each chunk is appended to a
/// `basic_npy_writer<S>`, so memory holds one chunk (chunk_records x d values) and never the
/// file. The output is the C-order (N, d) array NumPy and `basic_mapped_npy<S>` read, record n
/// of the CSV being observation (column) n. If the CSV is malformed, the partial output file
/// is removed before the exception leaves, so no truncated `.npy` is left behind.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/io/csv.hpp>
#include <latent/io/npy.hpp>

#include <Eigen/Core>

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace latent {

/// What `csv_to_npy` wrote: the CSV's column names (the `.npy` file has none) and the number
/// of observations (records).
struct csv_to_npy_result {
  std::vector<std::string> names;
  Eigen::Index observations = 0;
};

/// Streams the CSV text `in` into the `.npy` file `npy_path` (float32 for S = float, float64
/// for double), `chunk_records` records at a time.
/// @param source  the name used in error messages
/// @throws invalid_argument for a malformed CSV (naming its line and field, see `parse_csv`),
///         a CSV without records, chunk_records < 1, or an output that cannot be written;
///         the output file is then removed
template <Scalar S = double>
csv_to_npy_result csv_to_npy(std::istream& in, const std::string& npy_path, std::string_view source = "csv",
                             Eigen::Index chunk_records = 65536) {
  detail::require(chunk_records >= 1, "csv_to_npy", "option 'chunk_records' must be positive, got ", chunk_records);
  detail::csv_record_reader<S> reader(in, source);
  const auto d = static_cast<Eigen::Index>(reader.names().size());
  csv_to_npy_result result{reader.names(), 0};
  basic_npy_writer<S> writer(npy_path, d);  // only a file this call created is removed below
  try {
    Eigen::MatrixXd chunk(d, chunk_records);
    for (;;) {
      Eigen::Index filled = 0;
      while (filled < chunk_records && reader.next(chunk.col(filled).data())) ++filled;
      if (filled > 0) writer.append(chunk.leftCols(filled));
      if (filled < chunk_records) break;
    }
    result.observations = writer.observations();
    detail::require(result.observations > 0, "csv_to_npy", source, ": no records after the header");
    writer.close();
  } catch (...) {
    try {
      writer.close();
    } catch (...) {
    }
    std::remove(npy_path.c_str());
    throw;
  }
  return result;
}

/// Converts the CSV file `csv_path` into the `.npy` file `npy_path` (see the stream overload).
/// @throws invalid_argument if `csv_path` cannot be opened, or as the stream overload
template <Scalar S = double>
csv_to_npy_result csv_to_npy(const std::string& csv_path, const std::string& npy_path,
                             Eigen::Index chunk_records = 65536) {
  std::ifstream in(csv_path);
  detail::require(static_cast<bool>(in), "csv_to_npy", "cannot open '", csv_path, "'");
  return csv_to_npy<S>(in, npy_path, csv_path, chunk_records);
}

}  // namespace latent
