// libFuzzer target for the HDF5 reader: lists the datasets of the input image and reads each
// (plus one that does not exist, for the error path), converting and summing every array.
// Only InputError may escape the reader; anything else (or a crash) is a bug. Crashes found
// inside libhdf5 itself are kept under tests/fuzz/known_hdf5_crashes/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/ndarray.h"
#include "core/io/hdf5_dataset.h"

using namespace modeldiff::core;

namespace {

// Below libFuzzer's default -rss_limit_mb / -malloc_limit_mb of 2048, so that a file declaring
// a huge dataset is refused by the reader rather than reported as an out-of-memory crash.
constexpr std::size_t kMaxBytes = std::size_t{256} << 20;
constexpr std::size_t kMaxDatasetsRead = 8;

void read_and_touch(const std::uint8_t* data, std::size_t size, const std::string& dataset) {
  try {
    const NdArray a = read_hdf5_dataset_from_image("fuzz.h5", data, size, dataset, kMaxBytes);
    const NdArray f = a.to_float32();
    float sum = 0;
    for (std::int64_t i = 0; i < f.numel(); ++i) sum += f.data_as<float>()[i];
    volatile float sink = sum;
    (void)sink;
  } catch (const InputError&) {
  }
}

}  // namespace

// libhdf5 (not instrumented) sizes metadata buffers from the file before checking them; glibc
// returns NULL for absurd sizes and HDF5 reports an error, so let ASan do the same instead of
// aborting. HDF5 1.10 leaks metadata-cache entries on its error paths; those leaks are
// suppressed (any leak whose stack passes through libhdf5), ours are still reported.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libhdf5\n";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> names;
  try {
    names = list_hdf5_datasets_from_image("fuzz.h5", data, size);
  } catch (const InputError&) {
    return 0;
  }
  for (std::size_t i = 0; i < names.size() && i < kMaxDatasetsRead; ++i)
    read_and_touch(data, size, names[i]);
  read_and_touch(data, size, "no/such/dataset");
  return 0;
}
