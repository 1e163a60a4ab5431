#pragma once
/// @file
/// Reading CSV files into the library's orientation, one observation per column: numeric
/// tables (`read_csv`, `parse_csv`) and categorical tables for discrete Bayesian networks
/// (`read_categorical_csv`, `parse_categorical_csv`). See docs/io.md.
///
/// Common to both: fields are separated by `delimiter` (',' by default; ';' or '\t' for
/// other dialects), may be quoted with '"' (a delimiter inside quotes is part of the field,
/// `""` inside quotes is one quote), and are trimmed of spaces and tabs; blank lines are
/// skipped; '\r' before a newline is ignored; a UTF-8 byte-order mark at the start is dropped.
/// Every error is an `invalid_argument` naming the source, the line (counting every line of
/// the file from 1) and the column (counting every field from 1, row names included).
///
/// Header (`csv_header`): `present` (the first non-blank line holds the names), `absent`
/// (every line is a record; names are V1, V2, ... as in R), or `automatic`: absent when
/// every field of the first line is a number or a missing-value token (and at least one is
/// a number), present otherwise. A header whose names are all numbers needs `present`.
///
/// Row names (`csv_row_names`): `first_column` (the first field of every record is a
/// name), `none`, or `automatic`: the first column holds row names when the header's first
/// name is empty (R's `write.csv`: `"","a","b"`) or when the header has one field fewer than
/// the records (R's `write.table`). Row names are returned, not parsed.

#include <latent/core/error.hpp>
#include <latent/core/scalar.hpp>
#include <latent/models/discrete_bayes_net/options.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace latent {

/// Whether a CSV file starts with a line of column names.
enum class csv_header {
  automatic,  ///< a header unless every field of the first line is a number or a missing token
  present,    ///< the first non-blank line is the header
  absent      ///< no header: names are V1, V2, ...
};

/// Whether the first column of a CSV file holds row names.
enum class csv_row_names {
  automatic,    ///< yes if the header's first name is empty or the header is one field short
  none,         ///< no row names
  first_column  ///< the first field of every record is its name
};

/// Options of `read_csv` / `parse_csv`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `header` | header line present, absent or detected | automatic |
/// | `delimiter` | the field separator (not '"', '\n' or '\r') | ',' |
/// | `allow_missing` | read empty fields, `na_values` tokens and "nan" as NaN; if false they are an error naming the line and column | false |
/// | `na_values` | tokens that mark a missing value (compared after trimming; an empty field is always missing) | NA, N/A, NaN, nan, null |
/// | `row_names` | first column of row names present, absent or detected | automatic |
struct csv_options {
  csv_header header = csv_header::automatic;
  char delimiter = ',';
  bool allow_missing = false;
  std::vector<std::string> na_values{"NA", "N/A", "NaN", "nan", "null"};
  csv_row_names row_names = csv_row_names::automatic;
};

/// A numeric table: `data` is d x N (row i holds the variable `names[i]`, column n the n-th
/// record of the file), in scalar type `S` (the text is parsed in double and rounded);
/// `row_names` holds the records' names if the file had a row-name column, else is empty.
template <Scalar S>
struct basic_csv_table {
  std::vector<std::string> names;
  matrix_t<S> data;
  std::vector<std::string> row_names;
};
using csv_table = basic_csv_table<double>;

/// Options of `read_categorical_csv` / `parse_categorical_csv`.
///
/// | name | meaning | default |
/// |---|---|---|
/// | `header` | header line present, absent or detected (state names are rarely numbers, so `automatic` rarely applies) | present |
/// | `delimiter` | the field separator | ',' |
/// | `allow_missing` | read empty fields and `na_values` tokens as `latent::missing`; if false they are an error | true |
/// | `na_values` | tokens that mark a missing value (an empty field is always missing) | NA, N/A, ? |
/// | `row_names` | as for `csv_options` | automatic |
/// | `states` | for a variable named here, its states in order (a value outside the list is an error); other variables get the states seen in the file, sorted | none |
struct categorical_csv_options {
  csv_header header = csv_header::present;
  char delimiter = ',';
  bool allow_missing = true;
  std::vector<std::string> na_values{"NA", "N/A", "?"};
  csv_row_names row_names = csv_row_names::automatic;
  std::map<std::string, std::vector<std::string>> states;
};

/// A categorical table for a discrete Bayesian network: `data` is variables x records, entry
/// (i, n) the index of record n's state of variable i in `states[i]`, or `latent::missing`.
struct categorical_table {
  std::vector<std::string> names;                ///< one per variable (row of `data`)
  std::vector<std::vector<std::string>> states;  ///< the state names of each variable, in index order
  Eigen::MatrixXi data;                          ///< variables x records
  std::vector<std::string> row_names;            ///< the records' names, if the file had them

  /// The number of states of each variable (what `bn_variable::states` and the network's
  /// data need).
  std::vector<int> cardinalities() const {
    std::vector<int> k;
    for (const auto& s : states) k.push_back(static_cast<int>(s.size()));
    return k;
  }
};

namespace detail {

/// Split one line into fields (quotes removed, `""` inside quotes kept as one quote, fields
/// trimmed of spaces and tabs outside quotes).
inline std::vector<std::string> split_csv_line(const std::string& line, char delimiter = ',') {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  // Trailing spaces before a delimiter are trimmed only if they were not quoted.
  std::size_t keep = 0;
  const auto finish = [&] {
    field.erase(std::max(field.find_last_not_of(" \t") + 1, keep));
    out.push_back(field);
    field.clear();
    keep = 0;
  };
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (ch == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else {
        quoted = !quoted;
      }
      keep = field.size();
    } else if (ch == delimiter && !quoted) {
      finish();
    } else if (ch == '\r' && !quoted) {
    } else if ((ch == ' ' || ch == '\t') && !quoted && field.empty()) {
      // leading blank
    } else {
      field.push_back(ch);
      if (quoted) keep = field.size();
    }
  }
  finish();
  return out;
}

inline bool csv_is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

inline bool csv_is_na(const std::string& field, const std::vector<std::string>& na_values) {
  return field.empty() || std::find(na_values.begin(), na_values.end(), field) != na_values.end();
}

/// A whole field read by strtod (no trailing text); `v` is set on success.
inline bool csv_number(const std::string& field, double& v) {
  if (field.empty() || field.find('\0') != std::string::npos) return false;
  const char* begin = field.c_str();
  char* end = nullptr;
  errno = 0;
  v = std::strtod(begin, &end);
  return end != begin && end && *end == '\0';
}

/// The shape of a CSV source once its first lines are read: names and whether the first
/// column is row names.
struct csv_scan {
  std::vector<std::string> names;
  std::vector<std::string> row_names;
  std::size_t records = 0;
};

/// Read a CSV source line by line: decide header and row names (see the file comment), then
/// call `on_record(fields, line, first_column, names)` for every record, `fields` the d data
/// fields (row name removed), `first_column` the file column of fields[0] (1 or 2) and
/// `names` the column names.
template <class OnRecord>
csv_scan scan_csv(std::istream& in, std::string_view source, std::string_view fn, csv_header header, char delimiter,
                  csv_row_names row_names, const std::vector<std::string>& na_values, OnRecord&& on_record) {
  require(delimiter != '"' && delimiter != '\n' && delimiter != '\r' && delimiter != '\0', fn,
          "option 'delimiter' must not be a quote, a line break or NUL");
  require(static_cast<unsigned>(header) <= static_cast<unsigned>(csv_header::absent), fn, "option 'header' is not a valid csv_header");
  require(static_cast<unsigned>(row_names) <= static_cast<unsigned>(csv_row_names::first_column), fn,
          "option 'row_names' is not a valid csv_row_names");
  csv_scan scan;
  std::string line;
  std::size_t lineno = 0;
  bool first = true, have_header = false, decided = false;
  int has_row_names = row_names == csv_row_names::first_column ? 1 : row_names == csv_row_names::none ? 0 : -1;
  std::size_t d = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte-order mark
    if (csv_is_blank(line)) continue;
    std::vector<std::string> fields = split_csv_line(line, delimiter);
    if (first) {
      first = false;
      bool header_here = header == csv_header::present;
      if (header == csv_header::automatic) {
        bool any_number = false, all_data = true;
        double v;
        for (const auto& f : fields) {
          if (csv_number(f, v))
            any_number = true;
          else if (!csv_is_na(f, na_values))
            all_data = false;
        }
        header_here = !(all_data && any_number);
      }
      if (header_here) {
        for (std::size_t j = 0; j < fields.size(); ++j)
          require(fields[j].find('\0') == std::string::npos, fn, source, ": line ", lineno, ", column ", j + 1,
                  ": the header name contains a NUL byte");
        scan.names = std::move(fields);
        have_header = true;
        continue;
      }
      if (has_row_names == -1) has_row_names = 0;  // no header: nothing to detect from
    }
    if (have_header && !decided) {
      // The first record settles the row names: detected from an empty first name or a
      // header one field short; a header as long as the records names the row-name column.
      decided = true;
      if (has_row_names == -1)
        has_row_names = (scan.names.size() > 1 && scan.names[0].empty()) || fields.size() == scan.names.size() + 1;
      if (has_row_names == 1 && fields.size() == scan.names.size()) scan.names.erase(scan.names.begin());
    }
    if (has_row_names == 1) {
      require(fields.size() >= 2, fn, source, ": line ", lineno, " has ", fields.size(),
              " fields, expected a row name and at least one value");
      scan.row_names.push_back(std::move(fields[0]));
      fields.erase(fields.begin());
    }
    if (!have_header && scan.records == 0) {
      for (std::size_t j = 0; j < fields.size(); ++j) scan.names.push_back(concat("V", j + 1));
    }
    d = scan.names.size();
    require(fields.size() == d, fn, source, ": line ", lineno, " has ", fields.size() + (has_row_names == 1),
            " fields, expected ", d + (has_row_names == 1));
    on_record(fields, lineno, static_cast<std::size_t>(has_row_names == 1) + 1, scan.names);
    ++scan.records;
  }
  if (have_header && !decided && row_names != csv_row_names::none && scan.names.size() > 1 && scan.names[0].empty())
    scan.names.erase(scan.names.begin());  // a header with an empty first name and no records
  require(!scan.names.empty(), fn, source, ": no header line and no records");
  return scan;
}

}  // namespace detail

/// Parse numeric CSV text (see the file comment for header, row names, quoting). Numbers are
/// read by `strtod`: values that underflow (subnormals such as 1e-310, or 1e-400, which
/// becomes 0 or the nearest subnormal) are accepted; values that overflow (1e400, or above
/// float's range for S = float) are rejected. Missing values (empty fields, `na_values`,
/// "nan") are NaN if `options.allow_missing`, else an error.
/// @throws invalid_argument naming the line and column of a field that is not a number, out
///         of range, missing (when not allowed) or contains a NUL byte, a line with the wrong
///         number of fields, or a source with no header and no records.
template <Scalar S = double>
basic_csv_table<S> parse_csv(std::istream& in, std::string_view source = "csv", const csv_options& options = {}) {
  constexpr std::string_view fn = "read_csv";
  std::vector<double> values;
  const auto on_record = [&](const std::vector<std::string>& fields, std::size_t lineno, std::size_t col0,
                             const std::vector<std::string>& names) {
    for (std::size_t j = 0; j < fields.size(); ++j) {
      const std::string& f = fields[j];
      const std::size_t col = col0 + j;
      require(f.find('\0') == std::string::npos, fn, source, ": line ", lineno, ", column ", col,
              " contains a NUL byte");
      double v = std::numeric_limits<double>::quiet_NaN();
      const bool na = detail::csv_is_na(f, options.na_values);
      const bool number = !na && detail::csv_number(f, v);
      if (na || (number && std::isnan(v))) {
        require(options.allow_missing, fn, source, ": line ", lineno, ", column ", col, ": field '", names[j],
                "' is missing ('", f, "'; set csv_options::allow_missing to read missing values as NaN)");
        values.push_back(std::numeric_limits<double>::quiet_NaN());
        continue;
      }
      require(number, fn, source, ": line ", lineno, ", column ", col, ": field '", names[j], "' is not a number: '", f,
              "'");
      // ERANGE on underflow is accepted; overflow (of double, or of S when rounded) is not.
      const bool overflow = std::isinf(v) || std::isinf(static_cast<S>(v));
      require(!overflow, fn, source, ": line ", lineno, ", column ", col, ": field '", names[j], "' is out of the range of ",
              sizeof(S) == 4 ? "float" : "double", ": '", f, "'");
      values.push_back(v);
    }
  };
  detail::csv_scan scan = detail::scan_csv(in, source, fn, options.header, options.delimiter, options.row_names,
                                           options.na_values, on_record);
  basic_csv_table<S> t;
  const auto d = static_cast<Eigen::Index>(scan.names.size());
  t.data = Eigen::Map<const Eigen::MatrixXd>(values.data(), d, static_cast<Eigen::Index>(scan.records))
               .template cast<S>();
  t.names = std::move(scan.names);
  t.row_names = std::move(scan.row_names);
  return t;
}

/// Read a numeric CSV file (see `parse_csv`).
/// @throws invalid_argument if the file cannot be opened or is malformed.
template <Scalar S = double>
basic_csv_table<S> read_csv(const std::string& path, const csv_options& options = {}) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "read_csv", "cannot open '", path, "'");
  return parse_csv<S>(in, path, options);
}

/// Parse categorical CSV text: every field is a state name (or a missing token). States are
/// numbered per variable in sorted order of their names, or in the order `options.states`
/// gives for that variable.
/// @throws invalid_argument naming the line and column of a state not in the given list, a
///         missing value when not allowed, a NUL byte, a line with the wrong number of
///         fields; naming the variable of a state list with duplicates or for a name that is
///         not a column.
inline categorical_table parse_categorical_csv(std::istream& in, std::string_view source = "csv",
                                               const categorical_csv_options& options = {}) {
  constexpr std::string_view fn = "read_categorical_csv";
  std::vector<int> cells;                                   // record-major, first-seen codes
  std::vector<std::unordered_map<std::string, int>> codes;  // per variable: state name -> code
  std::vector<std::vector<std::string>> seen;               // per variable: names in code order
  std::vector<bool> fixed;                                  // per variable: states given
  for (const auto& [name, states] : options.states) {
    require(!states.empty(), fn, "option 'states' for '", name, "' is empty");
    for (const auto& s : states)
      require(!detail::csv_is_na(s, options.na_values), fn, "option 'states' for '", name, "' lists '", s,
              "', which is a missing-value token");
  }
  // The given state lists, installed before the first record, when the names are known.
  const auto install = [&](const std::vector<std::string>& names) {
    const std::size_t d = names.size();
    codes.resize(d);
    seen.resize(d);
    fixed.assign(d, false);
    for (const auto& [name, states] : options.states) {
      const auto at = std::find(names.begin(), names.end(), name);
      require(at != names.end(), fn, source, ": option 'states' names '", name, "', which is not a column");
      const auto j = static_cast<std::size_t>(at - names.begin());
      for (const auto& s : states) {
        require(codes[j].emplace(s, static_cast<int>(seen[j].size())).second, fn, "option 'states' for '", name,
                "' lists '", s, "' twice");
        seen[j].push_back(s);
      }
      fixed[j] = true;
    }
  };
  const auto on_record = [&](const std::vector<std::string>& fields, std::size_t lineno, std::size_t col0,
                             const std::vector<std::string>& names) {
    if (codes.empty()) install(names);
    for (std::size_t j = 0; j < fields.size(); ++j) {
      const std::string& f = fields[j];
      const std::size_t col = col0 + j;
      require(f.find('\0') == std::string::npos, fn, source, ": line ", lineno, ", column ", col,
              " contains a NUL byte");
      if (detail::csv_is_na(f, options.na_values)) {
        require(options.allow_missing, fn, source, ": line ", lineno, ", column ", col, ": field '", names[j],
                "' is missing ('", f, "'; set categorical_csv_options::allow_missing to read it as latent::missing)");
        cells.push_back(missing);
        continue;
      }
      auto it = codes[j].find(f);
      if (it == codes[j].end()) {
        require(!fixed[j], fn, source, ": line ", lineno, ", column ", col, " ('", names[j], "'): '", f,
                "' is not one of the states given for this variable");
        require(seen[j].size() < static_cast<std::size_t>(std::numeric_limits<int>::max()), fn, source,
                ": too many states in column ", col);
        it = codes[j].emplace(f, static_cast<int>(seen[j].size())).first;
        seen[j].push_back(f);
      }
      cells.push_back(it->second);
    }
  };
  detail::csv_scan scan = detail::scan_csv(in, source, fn, options.header, options.delimiter, options.row_names,
                                           options.na_values, on_record);
  if (codes.empty()) install(scan.names);  // no records: still check the given states
  categorical_table t;
  const std::size_t d = scan.names.size();
  // Number the states of each variable not given in sorted order of their names.
  std::vector<std::vector<int>> recode(d);
  t.states.resize(d);
  for (std::size_t j = 0; j < d; ++j) {
    std::vector<int> order(seen[j].size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    if (!fixed[j])
      std::sort(order.begin(), order.end(), [&](int a, int b) {
        return seen[j][static_cast<std::size_t>(a)] < seen[j][static_cast<std::size_t>(b)];
      });
    recode[j].resize(order.size());
    for (std::size_t r = 0; r < order.size(); ++r) {
      recode[j][static_cast<std::size_t>(order[r])] = static_cast<int>(r);
      t.states[j].push_back(seen[j][static_cast<std::size_t>(order[r])]);
    }
  }
  t.data.resize(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(scan.records));
  for (std::size_t n = 0; n < scan.records; ++n)
    for (std::size_t j = 0; j < d; ++j) {
      const int c = cells[n * d + j];
      t.data(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(n)) = c == missing ? missing : recode[j][static_cast<std::size_t>(c)];
    }
  t.names = std::move(scan.names);
  t.row_names = std::move(scan.row_names);
  return t;
}

/// Read a categorical CSV file (see `parse_categorical_csv`).
/// @throws invalid_argument if the file cannot be opened or is malformed.
inline categorical_table read_categorical_csv(const std::string& path, const categorical_csv_options& options = {}) {
  std::ifstream in(path, std::ios::binary);
  require(static_cast<bool>(in), "read_categorical_csv", "cannot open '", path, "'");
  return parse_categorical_csv(in, path, options);
}

}  // namespace latent
