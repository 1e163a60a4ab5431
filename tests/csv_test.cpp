// CSV reading (io/csv.hpp): header detection, delimiters, missing values, R's row names,
// errors with line and column, and the categorical reader for discrete Bayesian networks.
#include <latent/io/csv.hpp>
#include <latent/models/discrete_bayes_net/data.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

using Catch::Contains;
using strings = std::vector<std::string>;

namespace {

latent::csv_table parse(const std::string& text, const latent::csv_options& o = {}) {
  std::istringstream in(text);
  return latent::parse_csv(in, "t.csv", o);
}

latent::categorical_table parse_cat(const std::string& text, const latent::categorical_csv_options& o = {}) {
  std::istringstream in(text);
  return latent::parse_categorical_csv(in, "c.csv", o);
}

}  // namespace

TEST_CASE("CSV header: present, absent, and detected from a numeric first line", "[csv]") {
  // Without a header the first record used to be taken as names and lost: now it is data.
  const auto t = parse("1,2\n3,4\n5,6\n");
  CHECK(t.names == strings{"V1", "V2"});
  REQUIRE(t.data.cols() == 3);
  CHECK(t.data(0, 0) == 1.0);
  CHECK(t.data(1, 2) == 6.0);
  // A header is detected as soon as one field is not a number or a missing token.
  const auto h = parse("a,2b\n1,2\n");
  CHECK(h.names == strings{"a", "2b"});
  CHECK(h.data.cols() == 1);
  // A first line of numbers and missing tokens is data (when missing values are allowed).
  const auto m = parse("NA,2\n3,\n", {.allow_missing = true});
  CHECK(m.names == strings{"V1", "V2"});
  CHECK(std::isnan(m.data(0, 0)));
  CHECK(std::isnan(m.data(1, 1)));
  // Explicit choices override detection: numeric names, or text that is not a header.
  CHECK(parse("1,2\n3,4\n", {.header = latent::csv_header::present}).names == strings{"1", "2"});
  CHECK_THROWS_WITH(parse("a,b\n1,2\n", {.header = latent::csv_header::absent}),
                    Contains("t.csv: line 1, column 1: field 'V1' is not a number: 'a'"));
  // Only a header: names and no records.
  const auto empty = parse("x,y\n");
  CHECK(empty.names == strings{"x", "y"});
  CHECK(empty.data.cols() == 0);
  CHECK_THROWS_WITH(parse("\n\n"), Contains("no header line and no records"));
}

TEST_CASE("CSV delimiters, quoting and trimming", "[csv]") {
  const auto t = parse("\"a;1\"; b \n 1.5 ;\"2\"\n", {.delimiter = ';'});
  CHECK(t.names == strings{"a;1", "b"});
  CHECK(t.data(0, 0) == 1.5);
  CHECK(t.data(1, 0) == 2.0);
  const auto tab = parse("a\tb\n1\t2\n", {.delimiter = '\t'});
  CHECK(tab.data(1, 0) == 2.0);
  const auto q = parse("\"say \"\"hi\"\"\",b\n1,2\n");
  CHECK(q.names[0] == "say \"hi\"");
  CHECK_THROWS_WITH(parse("a\n1\n", {.delimiter = '"'}), Contains("option 'delimiter'"));
}

TEST_CASE("CSV missing values: NaN when allowed, else an error naming line and column", "[csv]") {
  const std::string text = "a,b,c\n1,NA,3\n4,,nan\n N/A ,8,9\n";
  const auto t = parse(text, {.allow_missing = true});
  REQUIRE(t.data.cols() == 3);
  CHECK(std::isnan(t.data(1, 0)));
  CHECK(std::isnan(t.data(1, 1)));
  CHECK(std::isnan(t.data(2, 1)));
  CHECK(std::isnan(t.data(0, 2)));
  CHECK(t.data(0, 1) == 4.0);
  CHECK(t.data(2, 2) == 9.0);
  CHECK((t.data.array().isNaN()).count() == 4);
  CHECK_THROWS_WITH(parse(text), Contains("t.csv: line 2, column 2: field 'b' is missing ('NA'") &&
                                     Contains("allow_missing"));
  CHECK_THROWS_WITH(parse("a,b\n1,2\n3,\n"), Contains("line 3, column 2: field 'b' is missing"));
  // Custom tokens replace the defaults: "NA" is then not missing but not a number either.
  CHECK(std::isnan(parse("a\n-999\n", {.allow_missing = true, .na_values = {"-999"}}).data(0, 0)));
  CHECK_THROWS_WITH(parse("a\n1\nNA\n", {.allow_missing = true, .na_values = {"-999"}}),
                    Contains("line 3, column 1: field 'a' is not a number: 'NA'"));
}

TEST_CASE("CSV row names: R's write.csv and write.table layouts, forced or off", "[csv]") {
  // write.csv: an empty first name; row names quoted.
  const auto r = parse("\"\",\"x\",\"y\"\n\"1\",0.5,2\n\"2\",1.5,NA\n", {.allow_missing = true});
  CHECK(r.names == strings{"x", "y"});
  CHECK(r.row_names == strings{"1", "2"});
  CHECK(r.data(0, 1) == 1.5);
  CHECK(std::isnan(r.data(1, 1)));
  // write.table: the header is one field short.
  const auto w = parse("x y\nobs1 1 2\nobs2 3 4\n", {.delimiter = ' '});
  CHECK(w.names == strings{"x", "y"});
  CHECK(w.row_names == strings{"obs1", "obs2"});
  CHECK(w.data(1, 1) == 4.0);
  // A named id column, forced; and the same file read with row names off.
  const auto id = parse("id,x\nA,1\nB,2\n", {.row_names = latent::csv_row_names::first_column});
  CHECK(id.names == strings{"x"});
  CHECK(id.row_names == strings{"A", "B"});
  CHECK_THROWS_WITH(parse("id,x\nA,1\n", {.row_names = latent::csv_row_names::none}),
                    Contains("line 2, column 1: field 'id' is not a number: 'A'"));
  // Columns in messages count the row-name column.
  CHECK_THROWS_WITH(parse("\"\",x,y\nr1,1,z\n"), Contains("line 2, column 3: field 'y' is not a number: 'z'"));
  // Without a header, forced row names.
  const auto nh = parse("r1,1,2\nr2,3,4\n",
                        {.header = latent::csv_header::absent, .row_names = latent::csv_row_names::first_column});
  CHECK(nh.names == strings{"V1", "V2"});
  CHECK(nh.row_names == strings{"r1", "r2"});
}

TEST_CASE("CSV errors give the file's line and column; read_csv(path) still works", "[csv]") {
  CHECK_THROWS_WITH(parse("a,b\n\n1,2\n3\n"), Contains("t.csv: line 4 has 1 fields, expected 2"));
  CHECK_THROWS_WITH(parse("a,b\n1,2\n3,1e400\n"), Contains("line 3, column 2: field 'b' is out of the range of double"));
  CHECK_THROWS_WITH(parse("a,b\n1,2\n3,inf\n"), Contains("line 3, column 2"));
  CHECK_THROWS_WITH(latent::read_csv("/nonexistent/file.csv"), Contains("cannot open"));
  std::istringstream f("a\n1e39\n");
  CHECK_THROWS_WITH(latent::parse_csv<float>(f), Contains("out of the range of float"));
}

TEST_CASE("categorical CSV: named states, missing tokens, given state orders", "[csv][categorical]") {
  const std::string text =
      "\"\",weather,play,wind\n"
      "1,sunny,no,weak\n"
      "2,rain,yes,?\n"
      "3,overcast,yes,strong\n"
      "4,sunny,NA,weak\n";
  const auto t = parse_cat(text);
  CHECK(t.names == strings{"weather", "play", "wind"});
  CHECK(t.row_names == strings{"1", "2", "3", "4"});
  // States sorted by name unless given.
  CHECK(t.states[0] == strings{"overcast", "rain", "sunny"});
  CHECK(t.states[1] == strings{"no", "yes"});
  CHECK(t.cardinalities() == std::vector<int>{3, 2, 2});
  Eigen::MatrixXi expected(3, 4);
  expected << 2, 1, 0, 2,                    //
      0, 1, 1, latent::missing,              //
      1, latent::missing, 0, 1;
  CHECK(t.data == expected);
  // The records go straight into a network's data, missing values included.
  const latent::discrete_bayes_net_data data(t.data, t.names, t.cardinalities());
  CHECK(data.missing_weight() == 2.0);

  // A given order, including a state the file never uses; a value outside it is an error.
  latent::categorical_csv_options o;
  o.states["play"] = {"yes", "no", "maybe"};
  const auto g = parse_cat(text, o);
  CHECK(g.states[1] == strings{"yes", "no", "maybe"});
  CHECK(g.data(1, 0) == 1);
  CHECK(g.data(1, 1) == 0);
  CHECK(g.cardinalities()[1] == 3);
  o.states["play"] = {"yes"};
  CHECK_THROWS_WITH(parse_cat(text, o), Contains("c.csv: line 2, column 3 ('play'): 'no' is not one of the states"));
  o.states = {{"temperature", {"hot"}}};
  CHECK_THROWS_WITH(parse_cat(text, o), Contains("option 'states' names 'temperature', which is not a column"));
  o.states = {{"play", {"yes", "yes"}}};
  CHECK_THROWS_WITH(parse_cat(text, o), Contains("lists 'yes' twice"));
  // Missing values refused when not allowed, naming line and column.
  latent::categorical_csv_options strict;
  strict.allow_missing = false;
  CHECK_THROWS_WITH(parse_cat(text, strict),
                    Contains("line 3, column 4: field 'wind' is missing ('?'"));
  CHECK_THROWS_WITH(parse_cat("a,b\nx,y\nz\n"), Contains("line 3 has 1 fields, expected 2"));
}
