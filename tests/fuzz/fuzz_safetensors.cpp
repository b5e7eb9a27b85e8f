// libFuzzer target for safetensors: every tensor returned is converted and summed so that any
// view reaching outside the file is caught by AddressSanitizer.
#include <cstddef>
#include <cstdint>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/safetensors.h"

using namespace modeldiff::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = MappedFile::from_bytes("fuzz.safetensors", data, size);
  try {
    float sum = 0;
    for (const NamedArray& a : parse_safetensors(file)) {
      const NdArray f = a.array.to_float32();
      for (std::int64_t i = 0; i < f.numel(); ++i) sum += f.data_as<float>()[i];
    }
    volatile float sink = sum;
    (void)sink;
  } catch (const InputError&) {
  }
  try {
    volatile std::size_t n = read_safetensors_metadata(file).size();
    (void)n;
  } catch (const InputError&) {
  }
  return 0;
}
