// `modeldiff-gui`: the desktop application. modeldiff-gui [PROJECT.json | RUN_DIR | RESULT_DIR]
#include <QApplication>
#include <QCommandLineParser>

#include "core/base/blas_check.h"
#include "main_window.h"

int main(int argc, char** argv) {
  modeldiff::core::configure_process_environment(argv);  // may re-execute once
  Q_INIT_RESOURCE(resources);                            // the icons live in the static ui library
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("ModelDiff Studio"));
  QApplication::setOrganizationName(QStringLiteral("ModelDiff Studio"));
  QApplication::setApplicationVersion(QStringLiteral(MODELDIFF_VERSION));
  QApplication::setDesktopFileName(QStringLiteral("io.modeldiff.Studio"));

  QCommandLineParser parser;
  parser.setApplicationDescription(QStringLiteral("Explore how two training algorithms differ."));
  parser.addHelpOption();
  parser.addVersionOption();
  parser.addPositionalArgument(
      QStringLiteral("path"),
      QStringLiteral("A project file (JSON; its results open when it has been run), a run "
                     "folder (`modeldiff run`, `modeldiff demo`) or a result folder "
                     "(`modeldiff diff`)."));
  parser.process(app);

  modeldiff::ui::MainWindow window;
  window.show();
  if (!parser.positionalArguments().isEmpty()) window.open(parser.positionalArguments().front());
  return QApplication::exec();
}
