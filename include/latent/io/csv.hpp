#pragma once
/// @file
/// Reading numeric CSV files into the library's orientation: one observation per column.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace latent {

/// A numeric table: `data` is d x N (row i holds the variable `names[i]`, column n the n-th
/// record of the file), in scalar type `S` (the text is parsed in double and rounded).
template <Scalar S>
struct basic_csv_table {
  std::vector<std::string> names;
  matrix_t<S> data;
};
using csv_table = basic_csv_table<double>;

namespace detail {
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      out.push_back(field);
      field.clear();
    } else if (ch != '\r') {
      field.push_back(ch);
    }
  }
  out.push_back(field);
  return out;
}
}  // namespace detail

/// Parse CSV text whose first line is a header of column names and whose other lines are
/// numbers (fields may be quoted; blank lines are skipped).
/// @throws invalid_argument naming the line and field that is not a number, or a line with
///         the wrong number of fields.
template <Scalar S = double>
basic_csv_table<S> parse_csv(std::istream& in, std::string_view source = "csv") {
  std::string line;
  basic_csv_table<S> t;
  while (std::getline(in, line) && line.find_first_not_of(" \t\r") == std::string::npos) {}
  detail::require(!line.empty(), "read_csv", source, ": no header line");
  t.names = detail::split_csv_line(line);
  const std::size_t d = t.names.size();
  std::vector<double> values;
  std::size_t lineno = 1, records = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto fields = detail::split_csv_line(line);
    detail::require(fields.size() == d, "read_csv", source, ": line ", lineno, " has ", fields.size(),
                    " fields, expected ", d);
    for (std::size_t j = 0; j < d; ++j) {
      const char* begin = fields[j].c_str();
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(begin, &end);
      while (end && (*end == ' ' || *end == '\t')) ++end;
      detail::require(end != begin && end && *end == '\0' && errno != ERANGE, "read_csv", source, ": line ", lineno,
                      ", field '", t.names[j], "' is not a number: '", fields[j], "'");
      values.push_back(v);
    }
    ++records;
  }
  t.data = Eigen::Map<const Eigen::MatrixXd>(values.data(), static_cast<Eigen::Index>(d),
                                             static_cast<Eigen::Index>(records))
               .template cast<S>();
  return t;
}

/// Read a numeric CSV file (see `parse_csv`).
/// @throws invalid_argument if the file cannot be opened or is malformed.
template <Scalar S = double>
basic_csv_table<S> read_csv(const std::string& path) {
  std::ifstream in(path);
  detail::require(static_cast<bool>(in), "read_csv", "cannot open '", path, "'");
  return parse_csv<S>(in, path);
}

}  // namespace latent
