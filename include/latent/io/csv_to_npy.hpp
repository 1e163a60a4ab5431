#pragma once
/// @file
/// A numeric CSV file to a `.npy` file, streamed: constant memory whatever the file's size.
///
/// The CSV is read a record at a time with `parse_csv`'s rules and checks (header detection,
/// delimiter, missing values, row names: `csv_options`), and every `chunk_records` records are
/// appended to a `basic_npy_writer<S>`, so memory holds one chunk (chunk_records x d values)
/// and never the file. The output is the C-order (N, d) array NumPy and `basic_mapped_npy<S>` read, record n
/// of the CSV being observation (column) n. If the CSV is malformed, the partial output file
/// is removed before the exception leaves, so no truncated `.npy` is left behind.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/io/csv.hpp>
#include <latent/io/npy.hpp>

#include <Eigen/Core>

#include <cstdio>
#include <fstream>
#include <optional>
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
/// @throws invalid_argument for a malformed CSV (naming its line and column, see `parse_csv`),
///         a CSV without records, chunk_records < 1, or an output that cannot be written;
///         the output file is then removed
template <Scalar S = double>
csv_to_npy_result csv_to_npy(std::istream& in, const std::string& npy_path, std::string_view source = "csv",
                             Eigen::Index chunk_records = 65536, const csv_options& options = {}) {
  detail::require(chunk_records >= 1, "csv_to_npy", "option 'chunk_records' must be positive, got ", chunk_records);
  std::optional<basic_npy_writer<S>> writer;  // opened at the first record, when d is known
  std::vector<double> chunk;                  // record-major: chunk_records x d at most
  Eigen::Index d = 0;
  const auto flush = [&] {
    if (chunk.empty()) return;
    writer->append(Eigen::Map<const Eigen::MatrixXd>(chunk.data(), d, static_cast<Eigen::Index>(chunk.size()) / d));
    chunk.clear();
  };
  csv_to_npy_result result;
  try {
    const auto on_record = [&](const std::vector<std::string>& fields, std::size_t lineno, std::size_t col0,
                               const std::vector<std::string>& names) {
      if (!writer) {
        d = static_cast<Eigen::Index>(names.size());
        writer.emplace(npy_path, d);  // only a file this call created is removed below
        chunk.reserve(static_cast<std::size_t>(d * chunk_records));
      }
      detail::append_csv_numbers<S>(fields, lineno, col0, names, options, source, "csv_to_npy", chunk);
      if (static_cast<Eigen::Index>(chunk.size()) == d * chunk_records) flush();
    };
    detail::csv_scan scan = detail::scan_csv(in, source, "csv_to_npy", options.header, options.delimiter,
                                             options.row_names, options.na_values, on_record);
    detail::require(writer.has_value(), "csv_to_npy", source, ": no records after the header");
    flush();
    result.names = std::move(scan.names);
    result.observations = writer->observations();
    writer->close();
  } catch (...) {
    if (writer) {
      try {
        writer->close();
      } catch (...) {
      }
      std::remove(npy_path.c_str());
    }
    throw;
  }
  return result;
}

/// Converts the CSV file `csv_path` into the `.npy` file `npy_path` (see the stream overload).
/// @throws invalid_argument if `csv_path` cannot be opened, or as the stream overload
template <Scalar S = double>
csv_to_npy_result csv_to_npy(const std::string& csv_path, const std::string& npy_path,
                             Eigen::Index chunk_records = 65536, const csv_options& options = {}) {
  std::ifstream in(csv_path, std::ios::binary);
  detail::require(static_cast<bool>(in), "csv_to_npy", "cannot open '", csv_path, "'");
  return csv_to_npy<S>(in, npy_path, csv_path, chunk_records, options);
}

}  // namespace latent
