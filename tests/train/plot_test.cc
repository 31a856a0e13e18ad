// The loss/LR plot: a well-formed SVG with one polyline per series and the
// right number of points, bucket averaging of long series, and non-finite
// values left out.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>

#include "train/plot.h"

namespace illada::train {
namespace {

// The number of "x,y" pairs in the polyline of class `cls` (-1 if there is
// none).
int polyline_points(const std::string &svg, const std::string &cls) {
  const size_t at = svg.find("<polyline class=\"" + cls + "\"");
  if (at == std::string::npos)
    return -1;
  const size_t p = svg.find("points=\"", at) + 8;
  const std::string pts = svg.substr(p, svg.find('"', p) - p);
  const std::regex pair(R"((-?[0-9.]+),(-?[0-9.]+))");
  return static_cast<int>(
      std::distance(std::sregex_iterator(pts.begin(), pts.end(), pair),
                    std::sregex_iterator()));
}

int count(const std::string &s, const std::string &what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

TEST(TrainingPlot, PanelsSeriesTicksAndLabels) {
  TrainingCurves c{.title = "run <a&b>"};
  for (int s = 0; s < 300; ++s) {
    c.train_loss.push_back({double(s), 6.0 * std::exp(-s / 80.0) + 2.0});
    c.lr.push_back({double(s), s < 30 ? 3e-3 * (s + 1) / 30 : 3e-3});
  }
  for (int s = 0; s <= 300; s += 100)
    c.eval_loss.push_back({double(s), 7.0 * std::exp(-s / 90.0) + 2.2});
  const std::string svg = training_plot_svg(c);
  ASSERT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(polyline_points(svg, "train-loss"), 300);
  EXPECT_EQ(polyline_points(svg, "lr"), 300);
  EXPECT_EQ(polyline_points(svg, "eval-loss"), 4);
  EXPECT_EQ(count(svg, "<polyline"), 3);
  EXPECT_NE(svg.find("run &lt;a&amp;b&gt;"),
            std::string::npos); // escaped title
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">learning rate</text>"), std::string::npos);
  EXPECT_NE(svg.find(">masked-diffusion loss (log scale)</text>"),
            std::string::npos);
  EXPECT_NE(svg.find(">300</text>"), std::string::npos);   // a step tick label
  EXPECT_NE(svg.find(">0.003</text>"), std::string::npos); // an LR tick label
  EXPECT_NE(svg.find(">held-out loss</text>"), std::string::npos);
  // Every element is closed: as many '<' as '>' and no stray NaN coordinates.
  EXPECT_EQ(count(svg, "<"), count(svg, ">"));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(TrainingPlot, LongSeriesAreAveragedAndNonFiniteValuesDropped) {
  TrainingCurves c;
  const int n = 5 * static_cast<int>(kPlotMaxPoints) + 3;
  for (int s = 0; s < n; ++s)
    c.train_loss.push_back({double(s), s == 7 ? NAN : 3.0});
  c.lr.push_back({0, INFINITY});
  const std::string svg = training_plot_svg(c);
  // n - 1 finite points in buckets of 6 (ceil((n - 1) / 2000)).
  EXPECT_EQ(polyline_points(svg, "train-loss"), (n - 1 + 5) / 6);
  EXPECT_EQ(polyline_points(svg, "lr"), -1);
  EXPECT_EQ(polyline_points(svg, "eval-loss"), -1);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  // An empty run still gives a valid image.
  const std::string empty = training_plot_svg({});
  EXPECT_EQ(empty.rfind("<svg", 0), 0u);
  EXPECT_EQ(count(empty, "<polyline"), 0);
}

} // namespace
} // namespace illada::train
