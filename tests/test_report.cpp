// report/: PNG plots, CSV logs, progress formatting.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.h"
#include "report/csv.h"
#include "report/plot.h"
#include "report/progress.h"
#include "tests/temp_dir.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

using namespace mg;
using namespace mg::report;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("mg_report_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Counts pixels close to the given colour.
int count_color(const std::string& path, int r, int g, int b, int* w = nullptr, int* h = nullptr) {
  int x, y, n;
  unsigned char* px = stbi_load(path.c_str(), &x, &y, &n, 3);
  REQUIRE(px != nullptr);
  if (w) *w = x;
  if (h) *h = y;
  int c = 0;
  for (int i = 0; i < x * y; ++i)
    c += std::abs(px[3 * i] - r) < 8 && std::abs(px[3 * i + 1] - g) < 8 && std::abs(px[3 * i + 2] - b) < 8;
  stbi_image_free(px);
  return c;
}
}  // namespace

TEST_CASE("line plot: a decodable PNG of the requested size with each series drawn") {
  fs::path d = temp_dir();
  LinePlot p{"loss", "step", "nats", {{"a", {0, 1, 2, 3}, {4, 3, 2.5, 2}}, {"b", {0, 1, 2, 3}, {4, 3.5, 3, 2.8}}}, false};
  std::string path = (d / "line.png").string();
  save_line_plot(path, p, 640, 400);
  int w = 0, h = 0;
  int blue = count_color(path, 31, 119, 180, &w, &h);
  CHECK(w == 640);
  CHECK(h == 400);
  CHECK(blue > 200);                             // series 0 (plus its legend swatch)
  CHECK(count_color(path, 214, 39, 40) > 200);  // series 1
  CHECK(test::atomic_temp_files(path).empty());
  p.series[0].y.pop_back();
  CHECK_THROWS_WITH_AS(save_line_plot(path, p), doctest::Contains("has 4 x and 3 y values"), Error);
  fs::remove_all(d);
}

TEST_CASE("bar plot and heatmap") {
  fs::path d = temp_dir();
  BarPlot b{"acc", "%", {"32", "128"}, {"m", "t"}, {{90, 80}, {70, 60}}};
  save_bar_plot((d / "bar.png").string(), b);
  CHECK(count_color((d / "bar.png").string(), 31, 119, 180) > 1000);
  b.values[1].pop_back();
  CHECK_THROWS_AS(save_bar_plot((d / "bar.png").string(), b), Error);
  Heatmap hm{"h", "pos", "row", 2, 3, {0, 0.5, 1, 1, 0.5, 0}, 0, 1};
  save_heatmap((d / "heat.png").string(), hm);
  CHECK(count_color((d / "heat.png").string(), 31, 119, 180) > 1000);  // max-valued cells are the darkest blue
  hm.values.pop_back();
  CHECK_THROWS_WITH_AS(save_heatmap((d / "heat.png").string(), hm), doctest::Contains("5 values for 2 x 3"), Error);
  CHECK_THROWS_WITH_AS(save_line_plot("/nonexistent-dir/x.png", LinePlot{}), doctest::Contains("/nonexistent-dir/x.png"),
                       Error);
  fs::remove_all(d);
}

TEST_CASE("csv: quoted fields round trip, append checks the header") {
  fs::path d = temp_dir();
  std::string path = (d / "log.csv").string();
  {
    CsvWriter w(path, {"step", "note"});
    w.row({"1", "plain"});
    w.row({"2", "with, comma and \"quotes\""});
    CHECK_THROWS_WITH_AS(w.row({"3"}), doctest::Contains("row has 1 values for 2 columns"), Error);
  }
  {
    CsvWriter w(path, {"step", "note"}, /*append=*/true);
    w.row({csv_num(3.5), "x"});
  }
  CsvTable t = read_csv(path);
  CHECK(t.columns == std::vector<std::string>{"step", "note"});
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[1][1] == "with, comma and \"quotes\"");
  CHECK(t.rows[2][0] == "3.5");
  CHECK(t.column("note") == 1);
  CHECK_THROWS_WITH_AS(CsvWriter(path, {"other"}, true), doctest::Contains("differs"), Error);
  std::ofstream(path, std::ios::app) << "1,2,3\n";
  CHECK_THROWS_WITH_AS(read_csv(path), doctest::Contains("line 5: 3 fields"), Error);
  fs::remove_all(d);
}

TEST_CASE("csv: write_csv replaces a log atomically with the rows kept") {
  fs::path d = temp_dir();
  std::string path = (d / "log.csv").string();
  {
    CsvWriter w(path, {"step", "note"});
    for (int s = 1; s <= 4; ++s) w.row({std::to_string(s), s == 2 ? "a, \"b\"" : "x"});
  }
  CsvTable t = read_csv(path);
  t.rows.resize(2);  // keep steps 1 and 2
  write_csv(path, t);
  CHECK(test::atomic_temp_files(path).empty());
  const CsvTable back = read_csv(path);
  CHECK(back.columns == t.columns);
  CHECK(back.rows == t.rows);
  {
    CsvWriter w(path, {"step", "note"}, /*append=*/true);  // a rewritten log can be extended
    w.row({"3", "y"});
  }
  CHECK(read_csv(path).rows.size() == 3);
  t.rows.push_back({"only one"});
  CHECK_THROWS_WITH_AS(write_csv(path, t), doctest::Contains("row has 1 values for 2 columns"), Error);
  CHECK(read_csv(path).rows.size() == 3);  // untouched
  t.rows.pop_back();
  CHECK_THROWS_WITH_AS(write_csv("/nonexistent-dir/x.csv", t), doctest::Contains("cannot create temporary file"), Error);
  fs::remove_all(d);
}

TEST_CASE("progress durations") {
  CHECK(ProgressBar::format_duration(5.25) == "5.2s");
  CHECK(ProgressBar::format_duration(250) == "4m10s");
  CHECK(ProgressBar::format_duration(3725) == "1h02m");
  CHECK(ProgressBar::format_duration(-1) == "?");
}
