// Hand-written SVG for the loss/LR plot (see plot.h).
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "util/file.h"

namespace illada::train {
namespace {

// Canvas and panel geometry, in SVG user units.
constexpr double kWidth = 900, kHeight = 640;
constexpr double kLeft = 90, kRight = 30;
struct Panel {
  double top, bottom; // pixel rows of the plotting area
};
constexpr Panel kLossPanel{50, 390};
constexpr Panel kLrPanel{450, 580};

struct Range {
  double lo = 0, hi = 1;
};

// A tick spacing of 1, 2 or 5 times a power of ten giving about `target`
// intervals.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

// The data range widened to whole ticks; `ticks` receives the tick values.
Range nice_range(double lo, double hi, int target, std::vector<double> &ticks) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(hi - lo, target);
  const int64_t k0 = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const int64_t k1 = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  ticks.clear();
  for (int64_t k = k0; k <= k1; ++k)
    ticks.push_back(static_cast<double>(k) * step + 0.0);
  return {static_cast<double>(k0) * step, static_cast<double>(k1) * step};
}

// A logarithmic axis over [lo, hi] (both > 0): ticks at 1, 2, 5 x 10^k, or at
// every digit when that gives fewer than three, or linear nice ticks over a
// very narrow range.
Range log_range(double lo, double hi, std::vector<double> &ticks) {
  const Range r{lo / 1.08, hi * 1.08};
  for (const std::vector<double> &mant :
       {std::vector<double>{1, 2, 5},
        std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    ticks.clear();
    for (int k = static_cast<int>(std::floor(std::log10(r.lo)));
         k <= static_cast<int>(std::ceil(std::log10(r.hi))); ++k) {
      for (double m : mant) {
        const double t = m * std::pow(10.0, k);
        if (t >= r.lo && t <= r.hi)
          ticks.push_back(t);
      }
    }
    if (ticks.size() >= 3)
      return r;
  }
  std::vector<double> lin;
  nice_range(r.lo, r.hi, 4, lin);
  ticks.clear();
  for (double t : lin) {
    if (t >= r.lo && t <= r.hi)
      ticks.push_back(t);
  }
  return r;
}

std::string fmt(const char *f, double v) {
  char b[64];
  std::snprintf(b, sizeof(b), f, v);
  return b;
}

std::string label(double v) { return fmt("%.3g", v == 0 ? 0.0 : v); }

std::string xml_escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
    case '&':
      o += "&amp;";
      break;
    case '<':
      o += "&lt;";
      break;
    case '>':
      o += "&gt;";
      break;
    case '"':
      o += "&quot;";
      break;
    default:
      if (static_cast<unsigned char>(c) >= 0x20 || c == '\t')
        o += c;
    }
  }
  return o;
}

// Finite points, averaged over equal buckets when there are more than
// kPlotMaxPoints.
std::vector<PlotPoint> reduce(const std::vector<PlotPoint> &in) {
  std::vector<PlotPoint> pts;
  for (const PlotPoint &p : in) {
    if (std::isfinite(p.step) && std::isfinite(p.value))
      pts.push_back(p);
  }
  if (pts.size() <= kPlotMaxPoints)
    return pts;
  const size_t bucket = (pts.size() + kPlotMaxPoints - 1) / kPlotMaxPoints;
  std::vector<PlotPoint> out;
  for (size_t i = 0; i < pts.size(); i += bucket) {
    const size_t e = std::min(pts.size(), i + bucket);
    PlotPoint a{0, 0};
    for (size_t j = i; j < e; ++j) {
      a.step += pts[j].step;
      a.value += pts[j].value;
    }
    a.step /= static_cast<double>(e - i);
    a.value /= static_cast<double>(e - i);
    out.push_back(a);
  }
  return out;
}

struct Axes {
  Range x, y;
  Panel panel;
  bool log_y = false;
  double px(double v) const {
    return kLeft + (v - x.lo) / (x.hi - x.lo) * (kWidth - kLeft - kRight);
  }
  double py(double v) const {
    const double f = log_y ? std::log(v / y.lo) / std::log(y.hi / y.lo)
                           : (v - y.lo) / (y.hi - y.lo);
    return panel.bottom - f * (panel.bottom - panel.top);
  }
};

void polyline(std::string &svg, const Axes &a,
              const std::vector<PlotPoint> &pts, const char *cls,
              const char *color, double width) {
  if (pts.empty())
    return;
  svg += std::string("<polyline class=\"") + cls +
         "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"" +
         fmt("%g", width) + "\" points=\"";
  for (size_t i = 0; i < pts.size(); ++i) {
    if (i)
      svg += ' ';
    svg +=
        fmt("%.1f", a.px(pts[i].step)) + "," + fmt("%.1f", a.py(pts[i].value));
  }
  svg += "\"/>\n";
}

void text(std::string &svg, double x, double y, const std::string &s,
          const char *anchor, const char *extra = "") {
  svg += "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y) +
         "\" text-anchor=\"" + anchor + "\"" + extra + ">" + xml_escape(s) +
         "</text>\n";
}

// Frame, grid, ticks and labels of one panel.
void frame(std::string &svg, const Axes &a, const std::vector<double> &xt,
           const std::vector<double> &yt, const std::string &ylabel,
           bool xlabels) {
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = a.panel.top,
               y1 = a.panel.bottom;
  svg += "<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
  for (double t : xt)
    svg += "<line x1=\"" + fmt("%.1f", a.px(t)) + "\" y1=\"" + fmt("%.1f", y0) +
           "\" x2=\"" + fmt("%.1f", a.px(t)) + "\" y2=\"" + fmt("%.1f", y1) +
           "\"/>\n";
  for (double t : yt)
    svg += "<line x1=\"" + fmt("%.1f", x0) + "\" y1=\"" + fmt("%.1f", a.py(t)) +
           "\" x2=\"" + fmt("%.1f", x1) + "\" y2=\"" + fmt("%.1f", a.py(t)) +
           "\"/>\n";
  svg += "</g>\n";
  svg += "<rect x=\"" + fmt("%.1f", x0) + "\" y=\"" + fmt("%.1f", y0) +
         "\" width=\"" + fmt("%.1f", x1 - x0) + "\" height=\"" +
         fmt("%.1f", y1 - y0) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg += "<g class=\"ticks\" stroke=\"#333\">\n";
  for (double t : xt)
    svg += "<line x1=\"" + fmt("%.1f", a.px(t)) + "\" y1=\"" + fmt("%.1f", y1) +
           "\" x2=\"" + fmt("%.1f", a.px(t)) + "\" y2=\"" +
           fmt("%.1f", y1 + 5) + "\"/>\n";
  for (double t : yt)
    svg += "<line x1=\"" + fmt("%.1f", x0 - 5) + "\" y1=\"" +
           fmt("%.1f", a.py(t)) + "\" x2=\"" + fmt("%.1f", x0) + "\" y2=\"" +
           fmt("%.1f", a.py(t)) + "\"/>\n";
  svg += "</g>\n";
  if (xlabels) {
    for (double t : xt)
      text(svg, a.px(t), y1 + 19, label(t), "middle");
    text(svg, (x0 + x1) / 2, y1 + 40, "step", "middle");
  }
  for (double t : yt)
    text(svg, x0 - 8, a.py(t) + 4, label(t), "end");
  const std::string cx = fmt("%.1f", 22.0), cy = fmt("%.1f", (y0 + y1) / 2);
  text(svg, 22, (y0 + y1) / 2, ylabel, "middle",
       (" transform=\"rotate(-90 " + cx + " " + cy + ")\"").c_str());
}

void legend_entry(std::string &svg, double x, double y, const char *color,
                  const std::string &name) {
  svg += "<line x1=\"" + fmt("%.1f", x) + "\" y1=\"" + fmt("%.1f", y) +
         "\" x2=\"" + fmt("%.1f", x + 24) + "\" y2=\"" + fmt("%.1f", y) +
         "\" stroke=\"" + color + "\" stroke-width=\"2.5\"/>\n";
  text(svg, x + 30, y + 4, name, "start");
}

} // namespace

std::string training_plot_svg(const TrainingCurves &c) {
  const std::vector<PlotPoint> train = reduce(c.train_loss),
                               eval = reduce(c.eval_loss), lr = reduce(c.lr);

  double xmax = 1, lmin = INFINITY, lmax = -INFINITY, rmax = 0;
  for (const auto *s : {&train, &eval, &lr}) {
    for (const PlotPoint &p : *s)
      xmax = std::max(xmax, p.step);
  }
  for (const auto *s : {&train, &eval}) {
    for (const PlotPoint &p : *s) {
      lmin = std::min(lmin, p.value);
      lmax = std::max(lmax, p.value);
    }
  }
  if (!(lmin <= lmax))
    lmin = 0, lmax = 1;
  for (const PlotPoint &p : lr)
    rmax = std::max(rmax, p.value);

  std::vector<double> xt, lt, rt;
  const Range xr = nice_range(0, xmax, 8, xt);
  // The loss falls by an order of magnitude from a random start (the 1/t
  // weights make the first steps' loss large), so its axis is logarithmic
  // whenever every value is positive.
  const bool log_loss = lmin > 0 && lmax > lmin;
  const Axes loss{
      xr, log_loss ? log_range(lmin, lmax, lt) : nice_range(lmin, lmax, 6, lt),
      kLossPanel, log_loss};
  const Axes rate{xr, nice_range(0, rmax > 0 ? rmax : 1e-3, 3, rt), kLrPanel};

  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         fmt("%g", kWidth) + "\" height=\"" + fmt("%g", kHeight) +
         "\" viewBox=\"0 0 " + fmt("%g", kWidth) + " " + fmt("%g", kHeight) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  text(svg, kWidth / 2, 28, c.title.empty() ? "training" : c.title, "middle",
       " font-size=\"15\"");
  frame(svg, loss, xt, lt,
        log_loss ? "masked-diffusion loss (log scale)"
                 : "masked-diffusion loss",
        false);
  frame(svg, rate, xt, rt, "learning rate", true);
  polyline(svg, loss, train, "train-loss", "#4c78a8", 1.2);
  polyline(svg, loss, eval, "eval-loss", "#e45756", 2.0);
  for (const PlotPoint &p : eval) {
    svg += "<circle cx=\"" + fmt("%.1f", loss.px(p.step)) + "\" cy=\"" +
           fmt("%.1f", loss.py(p.value)) + "\" r=\"3\" fill=\"#e45756\"/>\n";
  }
  polyline(svg, rate, lr, "lr", "#54a24b", 1.5);
  const double lx = kWidth - kRight - 170;
  svg += "<rect x=\"" + fmt("%.1f", lx - 8) + "\" y=\"" +
         fmt("%.1f", kLossPanel.top + 8) +
         "\" width=\"170\" height=\"46\" fill=\"white\" fill-opacity=\"0.85\" "
         "stroke=\"#999\"/>\n";
  legend_entry(svg, lx, kLossPanel.top + 22, "#4c78a8", "training loss");
  legend_entry(svg, lx, kLossPanel.top + 42, "#e45756", "held-out loss");
  svg += "</svg>\n";
  return svg;
}

void write_training_plot(const std::string &path,
                         const TrainingCurves &curves) {
  write_file_atomic(path, training_plot_svg(curves));
}

} // namespace illada::train
