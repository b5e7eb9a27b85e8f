// libFuzzer target for torch.save archives. Every tensor returned is converted and summed so
// that any read outside its storage is caught by AddressSanitizer.
//
// Inputs starting with "PK" are whole archives. Mutating those mostly breaks the zip CRCs, so
// the tensor-rebuilding code behind them would stay unexplored; every other input is therefore
// wrapped into a valid archive by this harness:
//   byte 0: a marker (not "PK" with byte 1)   byte 1: k (number of storages, mod 17)
//   k little-endian u16 sizes   then data.pkl (the rest)
// giving `archive/data.pkl` and `archive/data/0` .. `archive/data/<k-1>` filled with a byte
// pattern. tests/fuzz/corpus/fuzz_torch_archive holds both kinds of seeds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/torch_archive.h"

using namespace modeldiff::core;

namespace {

std::uint32_t crc32(const std::string& s) {
  std::uint32_t c = 0xffffffffu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void put(std::string& out, std::uint32_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

// A zip archive of stored (uncompressed) entries.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint32_t crc = crc32(data);
    const auto size = static_cast<std::uint32_t>(data.size());
    const auto name_len = static_cast<std::uint32_t>(name.size());
    put(out, 0x04034b50u, 4);
    put(out, 20, 2);  // version needed
    put(out, 0, 2);   // flags
    put(out, 0, 2);   // stored
    put(out, 0, 4);   // time, date
    put(out, crc, 4);
    put(out, size, 4);
    put(out, size, 4);
    put(out, name_len, 2);
    put(out, 0, 2);  // extra
    out += name + data;
    put(central, 0x02014b50u, 4);
    put(central, 20, 2);
    put(central, 20, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 4);
    put(central, crc, 4);
    put(central, size, 4);
    put(central, size, 4);
    put(central, name_len, 2);
    put(central, 0, 2);  // extra
    put(central, 0, 2);  // comment
    put(central, 0, 2);  // disk
    put(central, 0, 2);  // internal attributes
    put(central, 0, 4);  // external attributes
    put(central, offset, 4);
    central += name;
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put(out, 0x06054b50u, 4);
  put(out, 0, 4);  // disk numbers
  put(out, static_cast<std::uint32_t>(entries.size()), 2);
  put(out, static_cast<std::uint32_t>(entries.size()), 2);
  put(out, static_cast<std::uint32_t>(central.size()), 4);
  put(out, cd_offset, 4);
  put(out, 0, 2);  // comment
  return out;
}

std::string wrap_pickle(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return std::string(reinterpret_cast<const char*>(data), size);
  const std::size_t k = data[1] % 17;
  std::size_t pos = 2;
  std::vector<std::pair<std::string, std::string>> entries;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < k && pos + 2 <= size; ++i, pos += 2) {
    sizes.push_back(data[pos] | (std::size_t{data[pos + 1]} << 8));
  }
  entries.emplace_back("archive/data.pkl",
                       std::string(reinterpret_cast<const char*>(data + pos), size - pos));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string bytes(sizes[i], '\0');
    for (std::size_t j = 0; j < bytes.size(); ++j) bytes[j] = static_cast<char>(j * 7 + i);
    entries.emplace_back("archive/data/" + std::to_string(i), std::move(bytes));
  }
  entries.emplace_back("archive/version", "3\n");
  return make_zip(entries);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool whole_archive = size >= 2 && data[0] == 'P' && data[1] == 'K';
  const std::string bytes = whole_archive ? std::string(reinterpret_cast<const char*>(data), size)
                                          : wrap_pickle(data, size);
  try {
    std::vector<NamedArray> arrays =
        parse_torch_archive(MappedFile::from_bytes("fuzz.pt", bytes.data(), bytes.size()));
    float sum = 0;
    for (const NamedArray& a : arrays) {
      const NdArray f = a.array.to_float32();
      for (std::int64_t i = 0; i < f.numel(); ++i) sum += f.data_as<float>()[i];
      sum += static_cast<float>(a.name.size());
    }
    std::string prefix;
    sum += static_cast<float>(select_state_dict(std::move(arrays), &prefix).size());
    volatile float sink = sum;
    (void)sink;
  } catch (const InputError&) {
  }
  return 0;
}
