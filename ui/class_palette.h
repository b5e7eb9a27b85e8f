// Colours for classes (one per class, e.g. the projection plot's points) that stay apart for
// the class counts datasets have: 10 (Fashion-MNIST, CIFAR-10), 17 (Living17), 100
// (CIFAR-100). The first ten are Tableau 10, a palette made to be told apart in scatter
// plots; each further colour is the sRGB colour farthest (CIEDE2000) from every colour before
// it, among those dark enough to show on white and light enough to differ from black marks
// (L* 30..85): the greedy maximum-minimum-distance construction of Glasbey et al. (2007).
// Class k's colour is the same whatever the class count. Nothing repeats until more classes
// than the sRGB grid offers (over 3000).
#pragma once

#include <QColor>
#include <vector>

namespace modeldiff::ui {

// `count` colours, class 0 first.
std::vector<QColor> classPalette(int count);

// A colour in CIELAB (D65 white): L* in [0, 100], a*, b*.
struct Lab {
  double l = 0, a = 0, b = 0;
};
Lab toLab(const QColor& colour);  // from sRGB

// The CIEDE2000 colour difference (Sharma, Wu, Dalal 2005): about 1 is the smallest difference
// people see between large patches; small plot marks need several times more.
double colourDifference(const Lab& x, const Lab& y);
double colourDifference(const QColor& x, const QColor& y);

}  // namespace modeldiff::ui
