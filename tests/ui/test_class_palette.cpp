// Class colours stay apart for the class counts datasets have, and the projection plot's
// legend fits its plot for 100 classes (CIFAR-100's names).
//
// The thresholds, in CIEDE2000 units (about 1 = the smallest difference people see between
// large patches): Tableau 10, a palette made for telling classes apart in scatter plots, has
// its closest pair at 18.1, and Tableau 20 at 12.1. Up to 20 classes we require 15: better
// than Tableau 20, nearly Tableau 10. At 100 classes no palette can keep that (that many
// colours in the lightness range that shows on white lie closer), so we require 8: eight
// just-noticeable differences, which the greedy construction meets (10.2) and which the
// palette this replaces (0: it cycled after ten) and an evenly spaced hue wheel (0.4 at fixed
// lightness, 1.0 with alternating lightness and saturation) fail.
#include <QDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <qcustomplot.h>
#include "analysis_plots.h"
#include "class_palette.h"
#include "run_data.h"
#include "test_classes.h"

using namespace modeldiff;

namespace {

const char* const kCifar100[] = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};

// The legend's entries (its grid may have empty cells after the last).
int legendEntries(const QCPLegend* legend) {
  int n = 0;
  for (int i = 0; i < legend->itemCount(); ++i) n += legend->item(i) != nullptr ? 1 : 0;
  return n;
}

double closestPair(const std::vector<QColor>& colours) {
  double closest = INFINITY;
  for (std::size_t i = 0; i < colours.size(); ++i)
    for (std::size_t j = i + 1; j < colours.size(); ++j)
      closest = std::min(closest, ui::colourDifference(colours[i], colours[j]));
  return closest;
}

// A run whose validation set has `classes` named classes, `per_class` examples each, and a
// comparison of all of them with random projections on two directions.
struct MadeUpRun {
  std::shared_ptr<ui::RunData> run = std::make_shared<ui::RunData>();
  ui::Comparison comparison;
};

MadeUpRun makeRun(int classes, int per_class) {
  MadeUpRun m;
  core::ImageDataset val;
  const int n = classes * per_class;
  val.source = "made-up.npy";
  val.images = core::NdArray::allocate(core::DType::kUInt8, {n, 2, 2, 1});
  for (int i = 0; i < n; ++i) val.labels.push_back(i % classes);
  for (int c = 0; c < classes; ++c)
    val.class_names.push_back(classes == 100 ? kCifar100[c] : "class " + std::to_string(c));
  m.run->val = std::make_shared<const core::ImageDataset>(std::move(val));
  m.run->is_run = true;
  auto summary = std::make_shared<core::DiffSummary>();
  summary->a_minus_b.first = "A";
  summary->a_minus_b.second = "B";
  m.comparison.summary = summary;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int i = 0; i < n; ++i) {
    m.comparison.target_rows.push_back(i);
    m.comparison.projections[0].push_back(normal(rng));
    m.comparison.projections[0].push_back(normal(rng));
  }
  m.comparison.projection_columns[0] = 2;
  return m;
}

}  // namespace

class ClassPaletteTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void colourDifferenceIsCiede2000();
  void paletteStaysDistinguishable();
  void legendFitsItsPlot();
};

// Pairs 1, 7, 17, 25 and 34 of Sharma, Wu and Dalal's CIEDE2000 test data (2005).
void ClassPaletteTest::colourDifferenceIsCiede2000() {
  const struct {
    ui::Lab x, y;
    double expected;
  } pairs[] = {
      {{50, 2.6772, -79.7751}, {50, 0, -82.7485}, 2.0425},
      {{50, 0, 0}, {50, -1, 2}, 2.3669},
      {{50, 2.5, 0}, {73, 25, -18}, 27.1492},
      {{60.2574, -34.0099, 36.2677}, {60.4626, -34.1751, 39.4387}, 1.2644},
      {{2.0776, 0.0795, -1.1350}, {0.9033, -0.0636, -0.5514}, 0.9082},
  };
  for (const auto& p : pairs) {
    QVERIFY2(std::abs(ui::colourDifference(p.x, p.y) - p.expected) < 1e-4,
             qPrintable(QString::number(ui::colourDifference(p.x, p.y), 'f', 6)));
    QVERIFY(std::abs(ui::colourDifference(p.y, p.x) - p.expected) < 1e-4);  // symmetric
  }
  // sRGB to CIELAB: white, black and sRGB red (L* 53.24, a* 80.09, b* 67.20).
  QVERIFY(std::abs(ui::toLab(Qt::white).l - 100) < 0.01);
  QVERIFY(std::abs(ui::toLab(Qt::black).l) < 0.01);
  const ui::Lab red = ui::toLab(QColor(255, 0, 0));
  QVERIFY(std::abs(red.l - 53.24) < 0.01 && std::abs(red.a - 80.09) < 0.01 &&
          std::abs(red.b - 67.20) < 0.01);
}

void ClassPaletteTest::paletteStaysDistinguishable() {
  const struct {
    int classes;
    double threshold;
  } cases[] = {{10, 15}, {17, 15}, {20, 15}, {100, 8}};
  for (const auto& c : cases) {
    const std::vector<QColor> palette = ui::classPalette(c.classes);
    QCOMPARE(static_cast<int>(palette.size()), c.classes);
    std::set<QRgb> distinct;
    for (const QColor& colour : palette) {
      distinct.insert(colour.rgb());
      // Shows on white and keeps off the black rings.
      const double l = ui::toLab(colour).l;
      QVERIFY2(l >= 30 - 1e-9 && l <= 85 + 1e-9, qPrintable(colour.name()));
    }
    QCOMPARE(static_cast<int>(distinct.size()), c.classes);
    const double closest = closestPair(palette);
    QVERIFY2(closest >= c.threshold, qPrintable(QStringLiteral("%1 classes: closest pair %2 < %3")
                                                    .arg(c.classes)
                                                    .arg(closest)
                                                    .arg(c.threshold)));
  }
  // A class keeps its colour whatever the class count; the first ten are Tableau 10's.
  const std::vector<QColor> ten = ui::classPalette(10), hundred = ui::classPalette(100);
  QVERIFY(std::equal(ten.begin(), ten.end(), hundred.begin()));
  QCOMPARE(ten.front(), QColor(0x4e, 0x79, 0xa7));
  QVERIFY(ui::classPalette(0).empty());
}

void ClassPaletteTest::legendFitsItsPlot() {
  const MadeUpRun cifar = makeRun(100, 3);
  ui::ProjectionPlot plot;
  plot.resize(900, 520);
  plot.show();
  QVERIFY(QTest::qWaitForWindowExposed(&plot));
  plot.setData(cifar.run.get(), &cifar.comparison, 0, 0, 1);
  plot.replot();

  // Every class is listed, in its palette colour, with the rings' entry.
  QCOMPARE(plot.legendClasses(), 100);
  QCOMPARE(legendEntries(plot.legend), 101);
  const std::vector<QColor> palette = ui::classPalette(100);
  for (int k = 0; k < 100; ++k) {
    auto* item = qobject_cast<QCPPlottableLegendItem*>(plot.legend->item(k));
    QVERIFY(item != nullptr);
    QCOMPARE(item->plottable()->name(), QString::fromLatin1(kCifar100[k]));
    auto* curve = qobject_cast<QCPCurve*>(item->plottable());
    QVERIFY(curve != nullptr);
    QCOMPARE(curve->scatterStyle().pen().color(), palette[static_cast<std::size_t>(k)]);
  }

  auto checkFits = [&plot]() {
    const QRect legend = plot.legend->outerRect();
    const QRect axes = plot.axisRect()->outerRect();
    QVERIFY2(plot.rect().contains(legend),
             qPrintable(QStringLiteral("legend %1,%2 %3x%4 in a %5x%6 plot")
                            .arg(legend.x())
                            .arg(legend.y())
                            .arg(legend.width())
                            .arg(legend.height())
                            .arg(plot.width())
                            .arg(plot.height())));
    QVERIFY(legend.top() >= axes.bottom());  // below the axes: it hides no point
    QVERIFY2(axes.height() >= plot.height() / 2, qPrintable(QString::number(axes.height())));
    std::vector<QRect> rects;
    for (int i = 0; i < plot.legend->itemCount(); ++i) {
      QCPAbstractLegendItem* item = plot.legend->item(i);
      if (item == nullptr) continue;  // an empty cell after the last entry
      const QRect r = item->outerRect();
      QVERIFY(legend.contains(r));
      // Not squeezed: each entry has at least the room its icon and text need.
      QVERIFY2(r.width() >= item->minimumOuterSizeHint().width() &&
                   r.height() >= item->minimumOuterSizeHint().height(),
               qPrintable(QString::number(i)));
      for (const QRect& other : rects) QVERIFY(!r.intersects(other));
      rects.push_back(r);
    }
    const int points = plot.legend->font().pointSize();
    QVERIFY(points >= 6 && points <= 7);
  };
  checkFits();
  if (QTest::currentTestFailed()) return;
  const QString dir = qEnvironmentVariable("MODELDIFF_SCREENSHOT_DIR");
  if (!dir.isEmpty()) {
    QDir().mkpath(dir);
    QVERIFY(plot.grab().save(dir + QStringLiteral("/projections_100_classes.png")));
  }

  // A small plot lists the classes that fit, and the title says so.
  plot.resize(480, 320);
  QCoreApplication::processEvents();
  plot.replot();
  QVERIFY(plot.legendClasses() > 0 && plot.legendClasses() < 100);
  QCOMPARE(legendEntries(plot.legend), plot.legendClasses() + 1);
  checkFits();
  if (QTest::currentTestFailed()) return;
  auto* title = qobject_cast<QCPTextElement*>(plot.plotLayout()->element(0, 0));
  QVERIFY(title != nullptr);
  QVERIFY2(
      title->text().contains(QStringLiteral("legend: %1 of 100 classes").arg(plot.legendClasses())),
      qPrintable(title->text()));

  // Ten classes (Fashion-MNIST's count) at the window's usual plot size: all listed.
  const MadeUpRun ten = makeRun(10, 20);
  plot.resize(760, 330);
  QCoreApplication::processEvents();
  plot.setData(ten.run.get(), &ten.comparison, 0, 0, 1);
  plot.replot();
  QCOMPARE(plot.legendClasses(), 10);
  checkFits();
  if (QTest::currentTestFailed()) return;
  QVERIFY(!title->text().contains(QStringLiteral("legend:")));
}

std::unique_ptr<QObject> modeldiff::test::makeClassPaletteTest() {
  return std::make_unique<ClassPaletteTest>();
}

#include "test_class_palette.moc"
