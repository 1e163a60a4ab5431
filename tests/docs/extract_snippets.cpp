// Turns the ```cpp blocks of a Markdown page into one C++ translation unit, so that the test
// suite compiles every code example of the documentation.
//
// Usage: extract_snippets <page.md> <out.cpp>
//
// Rules (docs/testing.md): `#include` lines move to the top of the file; top-level
// declarations (struct, class, template, using, namespace, enum, static_assert, int main) stay
// at namespace scope, in page order, so later blocks see earlier ones; every other line is a
// statement and goes into a function of its own per block. Single-line HTML comments
// `<!-- snippet-context: ... -->` declare names a page's examples assume (its data `x`, an
// engine `rng`, ...): invisible when the page is rendered, compiled first. Blocks fenced as
// ```text (signatures, pseudo-code) are not compiled.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

bool is_top_level_start(const std::string& line) {
  for (const char* p : {"struct ", "class ", "template", "using ", "namespace ", "enum ", "static_assert", "int main("})
    if (starts_with(line, p)) return true;
  return false;
}

int brace_delta(const std::string& line) {
  int d = 0;
  bool in_string = false, in_char = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (!in_string && !in_char && c == '/' && i + 1 < line.size() && line[i + 1] == '/') break;
    if (c == '\\') {
      ++i;
      continue;
    }
    if (!in_char && c == '"') in_string = !in_string;
    else if (!in_string && c == '\'') in_char = !in_char;
    else if (!in_string && !in_char && c == '{') ++d;
    else if (!in_string && !in_char && c == '}') --d;
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: extract_snippets <page.md> <out.cpp>\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "extract_snippets: cannot open " << argv[1] << '\n';
    return 2;
  }
  std::vector<std::string> includes, context;
  std::ostringstream body;
  std::string line;
  int block = 0, line_number = 0;
  bool in_cpp = false, in_other = false;
  std::vector<std::string> statements;
  int depth = 0;          // brace depth of the current top-level declaration
  bool in_decl = false;   // inside a top-level declaration
  const std::string context_tag = "<!-- snippet-context:";
  while (std::getline(in, line)) {
    ++line_number;
    if (!in_cpp && !in_other) {
      if (starts_with(line, "```cpp")) {
        in_cpp = true;
        ++block;
        statements.clear();
        body << "// block " << block << " (line " << line_number << ")\n";
      } else if (starts_with(line, "```")) {
        in_other = true;
      } else if (starts_with(line, context_tag)) {
        const auto end = line.find("-->");
        context.push_back(line.substr(context_tag.size(), end == std::string::npos ? std::string::npos
                                                                                     : end - context_tag.size()));
      }
      continue;
    }
    if (in_other) {
      if (starts_with(line, "```")) in_other = false;
      continue;
    }
    if (starts_with(line, "```")) {  // end of a cpp block: its statements become a function
      in_cpp = false;
      if (!statements.empty()) {
        body << "[[maybe_unused]] void snippet_" << block << "() {\n";
        for (const auto& s : statements) body << "  " << s << '\n';
        body << "}\n";
      }
      continue;
    }
    if (starts_with(line, "#include")) {
      includes.push_back(line);
      continue;
    }
    if (!in_decl && is_top_level_start(line)) {
      in_decl = true;
      depth = 0;
      std::string l = line;
      if (starts_with(l, "int main(")) l = "[[maybe_unused]] int snippet_main_" + std::to_string(block) + l.substr(8);
      line = l;
    }
    if (in_decl) {
      body << line << '\n';
      depth += brace_delta(line);
      const auto last = line.find_last_not_of(" \t");
      const bool ends = depth == 0 && last != std::string::npos && (line[last] == ';' || line[last] == '}');
      if (ends) in_decl = false;
      continue;
    }
    statements.push_back(line);
  }
  std::ofstream out(argv[2]);
  out << "// Generated from " << argv[1] << " by extract_snippets: do not edit.\n";
  out << "#include <latent/latent.hpp>\n#include <Eigen/Dense>\n#include <iostream>\n#include <random>\n";
  for (const auto& i : includes) out << i << '\n';
  out << "namespace {\n";
  for (const auto& c : context) out << c << '\n';
  out << body.str() << "}  // namespace\n";
  return out ? 0 : 1;
}
