// Data-driven test: every shared/testdata/templates/*.expected.json case must render exactly as
// Python Jinja2 (transformers' configuration) did; error cases must fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "modu/chat/jinja.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::chrono::system_clock::time_point parse_utc(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// Where two strings first differ, with a little context from each.
std::string describe_diff(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 60 ? i - 60 : 0;
  std::ostringstream os;
  os << "first difference at byte " << i << " (expected " << want.size() << " bytes, got " << got.size() << ")\n"
     << "  expected: " << ordered_json(want.substr(from, 160)).dump() << "\n"
     << "  got:      " << ordered_json(got.substr(from, 160)).dump();
  return os.str();
}

TEST(JinjaTemplates, AllSharedCasesRenderExactly) {
  const fs::path dir = fs::path(MODU_SHARED_DIR) / "testdata" / "templates";
  ASSERT_TRUE(fs::exists(dir)) << "no shared templates at " << dir << ": the shared test data must sit beside the repo";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().string().size() > 14 && e.path().string().ends_with(".expected.json")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());

  int passed = 0, total = 0, error_cases = 0, error_ok = 0;
  for (const auto& file : files) {
    ordered_json spec = ordered_json::parse(read_file(file));
    const fs::path tpath = dir / spec["template_file"].get<std::string>();
    auto tmpl = modu::jinja::Template::parse(read_file(tpath));
    modu::jinja::RenderOptions opts;
    opts.now = parse_utc(spec["now_utc"].get<std::string>());
    for (const auto& c : spec["cases"]) {
      const std::string name = tpath.filename().string() + " / " + c["name"].get<std::string>();
      if (c.contains("error")) {
        ++error_cases;
        if (!tmpl.ok()) { ++error_ok; continue; }
        auto r = tmpl->render(c["context"], opts);
        EXPECT_FALSE(r.ok()) << name << ": reference failed with " << c["error"] << " but we rendered";
        if (r.ok()) continue;
        const std::string err = c["error"].get<std::string>();
        const std::string raised = "TemplateError: ";
        if (err.rfind(raised, 0) == 0) {
          EXPECT_EQ(r.status().message(), err.substr(raised.size())) << name << ": raise_exception message";
          if (r.status().message() != err.substr(raised.size())) continue;
        }
        ++error_ok;
        continue;
      }
      ++total;
      if (!tmpl.ok()) {
        ADD_FAILURE() << name << ": parse failed: " << tmpl.status().to_string();
        continue;
      }
      auto r = tmpl->render(c["context"], opts);
      if (!r.ok()) {
        ADD_FAILURE() << name << ": render failed: " << r.status().to_string();
        continue;
      }
      const std::string want = c["expected"].get<std::string>();
      if (*r == want) {
        ++passed;
      } else {
        ADD_FAILURE() << name << ": output differs\n" << describe_diff(want, *r);
      }
    }
  }
  std::printf("[templates] %d of %d cases render exactly; %d of %d error cases fail as expected\n", passed, total,
              error_ok, error_cases);
  EXPECT_EQ(passed, total);
}

}  // namespace
