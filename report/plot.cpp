#include "report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace mg::report {
namespace {

struct Color {
  unsigned char r, g, b;
};
constexpr Color kWhite{255, 255, 255}, kBlack{20, 20, 20}, kGrid{225, 225, 225}, kAxis{90, 90, 90};
const Color kPalette[] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {255, 127, 14},
                          {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(size_t(w) * size_t(h) * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }

  void set(int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    unsigned char* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void rect(int x0, int y0, int x1, int y1, Color c) {
    for (int y = std::max(0, y0); y < std::min(h_, y1); ++y)
      for (int x = std::max(0, x0); x < std::min(w_, x1); ++x) set(x, y, c);
  }
  // A line `thick` pixels wide (square brush along Bresenham's path).
  void line(double x0, double y0, double x1, double y1, Color c, int thick = 1) {
    int ax = int(std::lround(x0)), ay = int(std::lround(y0)), bx = int(std::lround(x1)), by = int(std::lround(y1));
    int dx = std::abs(bx - ax), dy = -std::abs(by - ay), sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1, err = dx + dy;
    const int lo = -(thick - 1) / 2, hi = thick / 2;
    for (int guard = 0; guard < 100000; ++guard) {
      for (int oy = lo; oy <= hi; ++oy)
        for (int ox = lo; ox <= hi; ++ox) set(ax + ox, ay + oy, c);
      if (ax == bx && ay == by) break;
      int e2 = 2 * err;
      if (e2 >= dy) err += dy, ax += sx;
      if (e2 <= dx) err += dx, ay += sy;
    }
  }
  // Text at scale `s` (stb_easy_font glyphs are about 6 x 7 px at scale 1).
  void text(double x, double y, const std::string& s, Color c, int scale = 2) {
    static char buffer[200000];
    std::string t = s;
    int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buffer, sizeof buffer);
    for (int q = 0; q < quads; ++q) {
      const float* v = reinterpret_cast<const float*>(buffer + q * 64);
      float qx0 = v[0], qy0 = v[1], qx1 = v[8], qy1 = v[9];  // vertices 0 and 2 are opposite corners
      rect(int(x + qx0 * scale), int(y + qy0 * scale), int(x + qx1 * scale), int(y + qy1 * scale), c);
    }
  }
  static int text_width(const std::string& s, int scale = 2) {
    std::string t = s;
    return stb_easy_font_width(t.data()) * scale;
  }

  // Encodes the PNG in memory, then writes it atomically (core/atomic_file.h).
  void save(const std::string& path) const {
    std::string png;
    const auto append = [](void* out, void* data, int n) {
      static_cast<std::string*>(out)->append(static_cast<char*>(data), size_t(n));
    };
    if (!stbi_write_png_to_func(append, &png, w_, h_, 3, px_.data(), w_ * 3))
      throw Error("plot: cannot encode PNG for '" + path + "'");
    try {
      write_file_atomically(path, png);
    } catch (const AtomicFileError& e) {
      throw Error("plot: cannot write PNG '" + path + "': " + e.what());
    }
  }

 private:
  int w_, h_;
  std::vector<unsigned char> px_;
};

std::string fmt(double v) {
  char b[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) std::snprintf(b, sizeof b, "%.2g", v);
  else std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// "Nice" tick positions covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 6) {
  double span = hi - lo;
  if (!(span > 0)) return {lo};
  double step = std::pow(10.0, std::floor(std::log10(span / target)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (span / (step * m) <= target) {
      step *= m;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(std::abs(v) < 1e-12 * span ? 0 : v);
  return t;
}

struct Frame {
  int left = 90, right, top = 78, bottom;
  double x0, x1, y0, y1;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

void draw_axes(Canvas& c, const Frame& f, const std::string& title, const std::string& xl, const std::string& yl,
               bool x_ticks, bool log_y) {
  for (double t : ticks(f.y0, f.y1)) {
    int y = int(f.py(t));
    c.line(f.left, y, f.right, y, kGrid);
    std::string lab = log_y ? fmt(std::pow(10.0, t)) : fmt(t);
    c.text(f.left - 8 - Canvas::text_width(lab), y - 7, lab, kBlack);
  }
  if (x_ticks)
    for (double t : ticks(f.x0, f.x1)) {
      int x = int(f.px(t));
      c.line(x, f.top, x, f.bottom, kGrid);
      std::string lab = fmt(t);
      c.text(x - Canvas::text_width(lab) / 2, f.bottom + 8, lab, kBlack);
    }
  c.line(f.left, f.bottom, f.right, f.bottom, kAxis, 2);
  c.line(f.left, f.top, f.left, f.bottom, kAxis, 2);
  const int ts = Canvas::text_width(title, 3) <= c.width() - 20 ? 3 : 2;  // long titles drop a size
  c.text((c.width() - Canvas::text_width(title, ts)) / 2.0, 15, title, kBlack, ts);
  c.text((f.left + f.right - Canvas::text_width(xl)) / 2.0, f.bottom + 32, xl, kBlack);
  c.text(8, f.top - 24, yl, kBlack);
}

void legend(Canvas& c, const Frame& f, const std::vector<std::string>& names) {
  int w = 0;
  for (const auto& n : names) w = std::max(w, Canvas::text_width(n));
  int x = f.right - w - 50, y = f.top + 10;
  c.rect(x - 8, y - 6, f.right - 4, y + int(names.size()) * 22 + 2, kWhite);
  for (size_t i = 0; i < names.size(); ++i) {
    Color col = kPalette[i % 8];
    c.rect(x, y + int(i) * 22 + 3, x + 24, y + int(i) * 22 + 9, col);
    c.text(x + 32, y + int(i) * 22, names[i], kBlack);
  }
}

}  // namespace

void save_line_plot(const std::string& path, const LinePlot& p, int width, int height) {
  Canvas c(width, height);
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return p.log_y ? std::log10(y) : y; };
  for (const Series& s : p.series) {
    MG_CHECK(s.x.size() == s.y.size(), "plot '", path, "': series '", s.name, "' has ", s.x.size(), " x and ",
             s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      double y = ty(s.y[i]);
      if (!std::isfinite(s.x[i]) || !std::isfinite(y)) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (!(x0 < x1)) x0 = std::isfinite(x0) ? x0 - 1 : 0, x1 = std::isfinite(x1) ? x1 + 1 : 1;
  if (!(y0 < y1)) y0 = std::isfinite(y0) ? y0 - 1 : 0, y1 = std::isfinite(y1) ? y1 + 1 : 1;
  double pad = 0.05 * (y1 - y0);
  Frame f{90, width - 30, 78, height - 70, x0, x1, y0 - pad, y1 + pad};
  draw_axes(c, f, p.title, p.xlabel, p.ylabel, true, p.log_y);
  std::vector<std::string> names;
  for (size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    names.push_back(s.name);
    bool have = false;
    double px = 0, py = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      double y = ty(s.y[i]);
      if (!std::isfinite(s.x[i]) || !std::isfinite(y)) {
        have = false;
        continue;
      }
      double nx = f.px(s.x[i]), ny = f.py(y);
      if (have) c.line(px, py, nx, ny, kPalette[k % 8], 2);
      else c.rect(int(nx) - 1, int(ny) - 1, int(nx) + 2, int(ny) + 2, kPalette[k % 8]);
      px = nx, py = ny, have = true;
    }
  }
  legend(c, f, names);
  c.save(path);
}

void save_bar_plot(const std::string& path, const BarPlot& p, int width, int height) {
  MG_CHECK(p.values.size() == p.series_names.size(), "plot '", path, "': ", p.values.size(), " value rows for ",
           p.series_names.size(), " series");
  double vmax = 0;
  for (const auto& row : p.values) {
    MG_CHECK(row.size() == p.categories.size(), "plot '", path, "': a series has ", row.size(), " values for ",
             p.categories.size(), " categories");
    for (double v : row) vmax = std::max(vmax, std::isfinite(v) ? v : 0.0);
  }
  Canvas c(width, height);
  Frame f{90, width - 30, 78, height - 70, 0, 1, 0, vmax > 0 ? vmax * 1.1 : 1};
  draw_axes(c, f, p.title, "", p.ylabel, false, false);
  const size_t nc = p.categories.size(), ns = p.series_names.size();
  const double group = double(f.right - f.left) / double(std::max<size_t>(nc, 1));
  const double bar = group * 0.8 / double(std::max<size_t>(ns, 1));
  for (size_t ci = 0; ci < nc; ++ci) {
    double gx = f.left + group * double(ci) + group * 0.1;
    for (size_t si = 0; si < ns; ++si) {
      double v = p.values[si][ci];
      if (!std::isfinite(v)) continue;
      c.rect(int(gx + bar * double(si)), int(f.py(v)), int(gx + bar * double(si + 1)) - 2, f.bottom, kPalette[si % 8]);
      std::string lab = fmt(v);
      c.text(gx + bar * (double(si) + 0.5) - Canvas::text_width(lab, 1) / 2.0, f.py(v) - 10, lab, kBlack, 1);
    }
    c.text(gx + group * 0.4 - Canvas::text_width(p.categories[ci]) / 2.0, f.bottom + 10, p.categories[ci], kBlack);
  }
  legend(c, f, p.series_names);
  c.save(path);
}

void save_heatmap(const std::string& path, const Heatmap& m, int width, int height) {
  MG_CHECK(m.rows > 0 && m.cols > 0 && m.values.size() == size_t(m.rows) * size_t(m.cols), "heatmap '", path,
           "': ", m.values.size(), " values for ", m.rows, " x ", m.cols);
  Canvas c(width, height);
  Frame f{90, width - 30, 78, height - 70, 0, double(m.cols), 0, double(m.rows)};
  const double span = m.vmax > m.vmin ? m.vmax - m.vmin : 1;
  for (int r = 0; r < m.rows; ++r)
    for (int col = 0; col < m.cols; ++col) {
      double v = std::clamp((m.values[size_t(r) * size_t(m.cols) + size_t(col)] - m.vmin) / span, 0.0, 1.0);
      Color cl{(unsigned char)(255 - v * 224), (unsigned char)(255 - v * 136), (unsigned char)(255 - v * 75)};
      // row 0 at the top
      c.rect(int(f.px(col)), int(f.py(m.rows - r)), int(f.px(col + 1)) + 1, int(f.py(m.rows - r - 1)) + 1, cl);
    }
  const int ts = Canvas::text_width(m.title, 3) <= width - 20 ? 3 : 2;
  c.text((width - Canvas::text_width(m.title, ts)) / 2.0, 15, m.title, kBlack, ts);
  c.text((f.left + f.right - Canvas::text_width(m.xlabel)) / 2.0, f.bottom + 32, m.xlabel, kBlack);
  c.text(8, f.top - 24, m.ylabel, kBlack);
  c.line(f.left, f.bottom, f.right, f.bottom, kAxis, 2);
  c.line(f.left, f.top, f.left, f.bottom, kAxis, 2);
  for (double t : ticks(0, m.cols)) {
    std::string lab = fmt(t);
    c.text(f.px(t) - Canvas::text_width(lab) / 2.0, f.bottom + 8, lab, kBlack);
  }
  for (double t : ticks(0, m.rows)) {
    std::string lab = fmt(t);
    c.text(f.left - 8 - Canvas::text_width(lab), f.py(m.rows - t) - 7, lab, kBlack);
  }
  c.save(path);
}

}  // namespace mg::report
