#pragma once
/// @file
/// Reading numeric CSV files into the library's orientation: one observation per column.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>

#include <Eigen/Core>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
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

namespace detail {
/// Reads CSV text record by record (see `parse_csv` for the format and the checks): the
/// header on construction, then one record per `next`. Holds one line at a time, so a
/// converter can stream files of any size.
template <Scalar S>
class csv_record_reader {
 public:
  csv_record_reader(std::istream& in, std::string_view source) : in_(in), source_(source) {
    std::string line;
    while (std::getline(in_, line) && line.find_first_not_of(" \t\r") == std::string::npos) {}
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    require(!line.empty(), "read_csv", source_, ": no header line");
    names_ = split_csv_line(line);
    for (std::size_t j = 0; j < names_.size(); ++j)
      require(names_[j].find('\0') == std::string::npos, "read_csv", source_, ": line 1, column ", j + 1,
              ": the header name contains a NUL byte");
  }

  const std::vector<std::string>& names() const { return names_; }

  /// Parses the next record into `out` (names().size() values, in double); false at the end.
  bool next(double* out) {
    std::string line;
    const std::size_t d = names_.size();
    while (std::getline(in_, line)) {
      ++lineno_;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const auto fields = split_csv_line(line);
      require(fields.size() == d, "read_csv", source_, ": line ", lineno_, " has ", fields.size(), " fields, expected ",
              d);
      for (std::size_t j = 0; j < d; ++j) {
        // c_str() would end the field at an embedded NUL and parse only what precedes it.
        require(fields[j].find('\0') == std::string::npos, "read_csv", source_, ": line ", lineno_, ", column ",
                j + 1, " (field '", names_[j], "') contains a NUL byte");
        const char* begin = fields[j].c_str();
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(begin, &end);
        // ERANGE on underflow is accepted; overflow (of double, or of S when rounded) is not.
        const bool overflow = (errno == ERANGE && std::isinf(v)) || std::isinf(static_cast<S>(v));
        while (end && (*end == ' ' || *end == '\t')) ++end;
        require(end != begin && end && *end == '\0', "read_csv", source_, ": line ", lineno_, ", field '", names_[j],
                "' is not a number: '", fields[j], "'");
        require(!overflow, "read_csv", source_, ": line ", lineno_, ", field '", names_[j], "' is out of the range of ",
                sizeof(S) == 4 ? "float" : "double", ": '", fields[j], "'");
        out[j] = v;
      }
      return true;
    }
    return false;
  }

 private:
  std::istream& in_;
  std::string_view source_;
  std::vector<std::string> names_;
  std::size_t lineno_ = 1;
};
}  // namespace detail

/// Parse CSV text whose first line is a header of column names and whose other lines are
/// numbers (fields may be quoted; blank lines are skipped). A UTF-8 byte-order mark before the
/// header is dropped. Numbers are read by `strtod`: values that underflow (subnormals such as
/// 1e-310, or 1e-400, which becomes 0 or the nearest subnormal) are accepted; values that
/// overflow (1e400) are rejected.
/// @throws invalid_argument naming the line and field that is not a number or is out of
///         range, a field (or header name) containing a NUL byte, or a line with the wrong
///         number of fields.
template <Scalar S = double>
basic_csv_table<S> parse_csv(std::istream& in, std::string_view source = "csv") {
  detail::csv_record_reader<S> reader(in, source);
  basic_csv_table<S> t;
  t.names = reader.names();
  const std::size_t d = t.names.size();
  std::vector<double> values(d);
  std::size_t records = 0;
  while (reader.next(values.data() + records * d)) {
    ++records;
    values.resize((records + 1) * d);
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
