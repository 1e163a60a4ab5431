#include "common.hpp"

#include <latent/io/csv.hpp>

#include <cstdio>
#include <iostream>

namespace latent_cli {

namespace {
Eigen::Index parse_count(const std::string& text, const std::string& option) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v <= 0)
    throw usage_error(option + ": '" + text + "' is not a positive whole number");
  return static_cast<Eigen::Index>(v);
}
}  // namespace

std::vector<Eigen::Index> parse_counts(const std::string& text, const std::string& option) {
  std::vector<Eigen::Index> out;
  const auto colon = text.find(':');
  if (colon != std::string::npos) {
    const Eigen::Index lo = parse_count(text.substr(0, colon), option);
    const Eigen::Index hi = parse_count(text.substr(colon + 1), option);
    if (hi < lo) throw usage_error(option + ": the range '" + text + "' is empty (" + std::to_string(hi) + " < " +
                                   std::to_string(lo) + ")");
    if (hi - lo >= 1000) throw usage_error(option + ": the range '" + text + "' has more than 1000 values");
    for (Eigen::Index k = lo; k <= hi; ++k) out.push_back(k);
    return out;
  }
  std::size_t begin = 0;
  while (true) {
    const auto comma = text.find(',', begin);
    out.push_back(parse_count(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin),
                              option));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

table read_table(const std::string& path) {
  latent::csv_table t = latent::read_csv(path);
  if (t.data.cols() == 0) throw usage_error(path + ": no records after the header line");
  return {std::move(t.names), std::move(t.data)};
}

void progress::line(const std::string& text) const {
  if (quiet_) return;
  char buf[32];
  std::snprintf(buf, sizeof buf, "[%7.2f s] ", seconds());
  std::cerr << buf << text << '\n';
}

std::string number(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

}  // namespace latent_cli
