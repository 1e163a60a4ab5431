// The data behind the documentation's figures. An example given `--plot-data DIR` writes the
// numbers it would plot as whitespace-separated tables in DIR (one header line starting with
// '#'; blocks separated by two blank lines, gnuplot's `index`), and docs/figures/make_figures.sh
// renders them. Without the flag nothing is written.
#pragma once

#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace example {

/// DIR of `--plot-data DIR` among the program's arguments, or empty.
inline std::string plot_data_dir(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--plot-data") continue;
    if (i + 1 >= argc) throw std::invalid_argument("--plot-data needs a directory");
    return argv[i + 1];
  }
  return {};
}

/// One table file: `table t(dir, "name.tsv", "x y"); t.row(1.0, 2.0); t.next_block();`
class table {
 public:
  table(const std::string& dir, const std::string& name, std::string_view columns)
      : path_(dir + "/" + name), out_(path_) {
    if (!out_) throw std::runtime_error("cannot write " + path_);
    out_ << "# " << columns << '\n';
  }

  template <class... Values>
  void row(const Values&... values) {
    const char* separator = "";
    ((out_ << separator << format(values), separator = " "), ...);
    out_ << '\n';
  }

  /// Ends a block: gnuplot addresses blocks as `index 0`, `index 1`, ...
  void next_block() { out_ << "\n\n"; }

  ~table() noexcept(false) {
    out_.flush();
    if (!out_ && std::uncaught_exceptions() == 0) throw std::runtime_error("error writing " + path_);
  }

 private:
  static std::string format(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
  }
  static std::string format(std::string_view s) { return std::string(s); }
  static std::string format(const char* s) { return s; }
  template <class Int>
    requires std::is_integral_v<Int>
  static std::string format(Int v) { return std::to_string(v); }

  std::string path_;
  std::ofstream out_;
};

}  // namespace example
