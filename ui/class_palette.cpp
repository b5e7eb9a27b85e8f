#include "class_palette.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <mutex>

namespace modeldiff::ui {

namespace {

constexpr double kPi = 3.14159265358979323846;
double radians(double degrees) {
  return degrees * kPi / 180.0;
}

double linear(int channel) {
  const double c = channel / 255.0;
  return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

// The candidates after Tableau 10: an sRGB grid (17 levels apart per channel) within the
// lightness range that shows on white and keeps off black.
constexpr int kGridStep = 17;
constexpr double kLightest = 85, kDarkest = 30;

// The sequence so far (grown greedily on demand) and, per candidate, its distance to the
// nearest colour of the sequence.
struct Sequence {
  std::vector<QColor> colours;
  std::vector<QColor> candidates;
  std::vector<Lab> candidate_lab;
  std::vector<double> nearest;
};

void add(Sequence& s, const QColor& colour) {
  const Lab lab = toLab(colour);
  s.colours.push_back(colour);
  for (std::size_t i = 0; i < s.candidates.size(); ++i)
    s.nearest[i] = std::min(s.nearest[i], colourDifference(s.candidate_lab[i], lab));
}

Sequence start() {
  Sequence s;
  for (int r = 0; r <= 255; r += kGridStep)
    for (int g = 0; g <= 255; g += kGridStep)
      for (int b = 0; b <= 255; b += kGridStep) {
        const QColor c(r, g, b);
        const Lab lab = toLab(c);
        if (lab.l < kDarkest || lab.l > kLightest) continue;
        s.candidates.push_back(c);
        s.candidate_lab.push_back(lab);
      }
  s.nearest.assign(s.candidates.size(), INFINITY);
  static const QRgb kTableau10[] = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                                    0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
  for (QRgb rgb : kTableau10) add(s, QColor(rgb));
  return s;
}

}  // namespace

Lab toLab(const QColor& colour) {
  const QColor rgb = colour.toRgb();
  const double r = linear(rgb.red()), g = linear(rgb.green()), b = linear(rgb.blue());
  // sRGB (D65) to XYZ, relative to the white point.
  const double x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
  const double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
  const double z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883;
  const auto f = [](double t) {
    constexpr double d = 6.0 / 29.0;
    return t > d * d * d ? std::cbrt(t) : t / (3 * d * d) + 4.0 / 29.0;
  };
  return {116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))};
}

double colourDifference(const Lab& x, const Lab& y) {
  const double c1 = std::hypot(x.a, x.b), c2 = std::hypot(y.a, y.b);
  const double c_mean7 = std::pow((c1 + c2) / 2, 7), k25_7 = std::pow(25.0, 7);
  const double g = 0.5 * (1 - std::sqrt(c_mean7 / (c_mean7 + k25_7)));
  const double a1 = (1 + g) * x.a, a2 = (1 + g) * y.a;
  const double cp1 = std::hypot(a1, x.b), cp2 = std::hypot(a2, y.b);
  const auto hue = [](double b, double a) {
    if (a == 0 && b == 0) return 0.0;
    const double h = std::atan2(b, a) * 180.0 / kPi;
    return h < 0 ? h + 360 : h;
  };
  const double h1 = hue(x.b, a1), h2 = hue(y.b, a2);
  const double dl = y.l - x.l, dc = cp2 - cp1;
  double dh = 0;
  if (cp1 * cp2 != 0) {
    dh = h2 - h1;
    if (dh > 180)
      dh -= 360;
    else if (dh < -180)
      dh += 360;
  }
  const double d_big_h = 2 * std::sqrt(cp1 * cp2) * std::sin(radians(dh / 2));
  const double l_mean = (x.l + y.l) / 2, cp_mean = (cp1 + cp2) / 2;
  double h_mean = h1 + h2;
  if (cp1 * cp2 != 0) {
    if (std::abs(h1 - h2) <= 180)
      h_mean = (h1 + h2) / 2;
    else
      h_mean = h1 + h2 < 360 ? (h1 + h2 + 360) / 2 : (h1 + h2 - 360) / 2;
  }
  const double t = 1 - 0.17 * std::cos(radians(h_mean - 30)) +
                   0.24 * std::cos(radians(2 * h_mean)) + 0.32 * std::cos(radians(3 * h_mean + 6)) -
                   0.20 * std::cos(radians(4 * h_mean - 63));
  const double d_theta = 30 * std::exp(-std::pow((h_mean - 275) / 25, 2));
  const double cp_mean7 = std::pow(cp_mean, 7);
  const double rc = 2 * std::sqrt(cp_mean7 / (cp_mean7 + k25_7));
  const double sl =
      1 + 0.015 * (l_mean - 50) * (l_mean - 50) / std::sqrt(20 + (l_mean - 50) * (l_mean - 50));
  const double sc = 1 + 0.045 * cp_mean, sh = 1 + 0.015 * cp_mean * t;
  const double rt = -std::sin(radians(2 * d_theta)) * rc;
  const double ql = dl / sl, qc = dc / sc, qh = d_big_h / sh;
  return std::sqrt(ql * ql + qc * qc + qh * qh + rt * qc * qh);
}

double colourDifference(const QColor& x, const QColor& y) {
  return colourDifference(toLab(x), toLab(y));
}

std::vector<QColor> classPalette(int count) {
  static std::mutex mutex;
  static Sequence sequence = start();
  const std::lock_guard lock(mutex);
  const auto n = static_cast<std::size_t>(std::max(count, 0));
  // Grown to `n` colours: each the candidate farthest from all before it (the first such on
  // ties, so the sequence is the same on every machine).
  while (sequence.colours.size() < n && sequence.colours.size() < sequence.candidates.size() + 10) {
    const auto best = static_cast<std::size_t>(
        std::max_element(sequence.nearest.begin(), sequence.nearest.end()) -
        sequence.nearest.begin());
    if (!(sequence.nearest[best] > 0)) break;  // every candidate taken
    add(sequence, sequence.candidates[best]);
  }
  std::vector<QColor> out;
  out.reserve(n);
  for (std::size_t k = 0; k < n; ++k) out.push_back(sequence.colours[k % sequence.colours.size()]);
  return out;
}

}  // namespace modeldiff::ui
