// libFuzzer target for the JSON side of traker save_dirs: the input is experiments.json and
// metadata.json separated by the first NUL byte (the .mmap score files are NPY: fuzz_npy).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/base/error.h"
#include "core/io/traker_savedir.h"

using namespace modeldiff::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(text, '\0', size);
  const std::size_t split =
      nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - text) : size;
  const std::string experiments(text, split);
  const std::string metadata = split < size ? std::string(text + split + 1, size - split - 1) : "";
  try {
    std::size_t sum = 0;
    for (const TrakerExperiment& e : parse_traker_experiments("experiments.json", experiments)) {
      sum += e.name.size() + e.scores_path.size() + static_cast<std::size_t>(e.num_targets) +
             (e.finalized ? 1 : 0);
    }
    volatile std::size_t sink = sum;
    (void)sink;
  } catch (const InputError&) {
  }
  try {
    volatile std::int64_t n = parse_traker_train_set_size("metadata.json", metadata);
    (void)n;
  } catch (const InputError&) {
  }
  return 0;
}
