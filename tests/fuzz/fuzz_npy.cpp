// libFuzzer target for the NPY reader: every array returned is converted and summed, and its raw
// bytes are read, so that a view reaching outside the input is caught by AddressSanitizer.
// Only InputError may escape the reader; anything else (or a crash) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/base/ndarray.h"
#include "core/io/npy.h"

using namespace modeldiff::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const NdArray a = parse_npy(MappedFile::from_bytes("fuzz.npy", data, size));
    unsigned bytes = 0;
    for (std::size_t i = 0; i < a.nbytes(); ++i) bytes += std::to_integer<unsigned>(a.data()[i]);
    const NdArray f = a.to_float32();
    float sum = 0;
    for (std::int64_t i = 0; i < f.numel(); ++i) sum += f.data_as<float>()[i];
    volatile float sink = sum + static_cast<float>(bytes);
    (void)sink;
  } catch (const InputError&) {
  }
  return 0;
}
