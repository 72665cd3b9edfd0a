#pragma once
// PNG figures for reports: line charts (loss curves), grouped bar charts (retrieval accuracy) and
// heatmaps (per-position recovery). Drawn on a plain RGB raster with stb_easy_font text and written
// with stb_image_write, so they need no plotting dependency. Writes are atomic (temp + rename).
#include <string>
#include <vector>

namespace mg::report {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool log_y = false;
};

struct BarPlot {
  std::string title, ylabel;
  std::vector<std::string> categories;   // groups along x
  std::vector<std::string> series_names;  // bars within a group
  std::vector<std::vector<double>> values;  // [series][category]
};

struct Heatmap {
  std::string title, xlabel, ylabel;
  int rows = 0, cols = 0;
  std::vector<double> values;  // row-major [rows][cols], drawn on a white (min) to blue (max) scale
  double vmin = 0, vmax = 1;
};

// Throws mg::Error naming the path when it cannot be written or the data are inconsistent.
void save_line_plot(const std::string& path, const LinePlot& plot, int width = 900, int height = 560);
void save_bar_plot(const std::string& path, const BarPlot& plot, int width = 900, int height = 560);
void save_heatmap(const std::string& path, const Heatmap& map, int width = 900, int height = 560);

}  // namespace mg::report
