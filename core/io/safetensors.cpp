#include "core/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "core/base/error.h"

namespace modeldiff::core {

namespace {

using Json = nlohmann::ordered_json;  // keeps the header's order of tensors

// The format's own limit on the header (safetensors refuses larger ones too).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

bool dtype_from_code(const std::string& code, DType* dtype) {
  static const std::pair<const char*, DType> kCodes[] = {
      {"F16", DType::kFloat16}, {"BF16", DType::kBFloat16}, {"F32", DType::kFloat32},
      {"F64", DType::kFloat64}, {"I8", DType::kInt8},       {"U8", DType::kUInt8},
      {"I16", DType::kInt16},   {"I32", DType::kInt32},     {"I64", DType::kInt64},
      {"BOOL", DType::kBool},
  };
  for (const auto& [name, d] : kCodes) {
    if (code == name) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

std::string json_kind(const Json& j) {
  if (j.is_number()) return "the number " + j.dump();
  return std::string("a JSON ") + j.type_name();
}

struct Header {
  Json json;
  const std::byte* data = nullptr;  // start of the tensor bytes
  std::uint64_t data_size = 0;
};

Header parse_header(const MappedFile& file) {
  const std::string& path = file.path();
  const std::size_t size = file.size();
  if (size < 8) {
    throw InputError(path, "not a safetensors file: too short")
        .expected("at least 8 bytes")
        .found(std::to_string(size) + " bytes");
  }
  std::uint64_t n = 0;
  for (int k = 0; k < 8; ++k)
    n |= std::uint64_t(std::to_integer<unsigned>(file.data()[k])) << (8 * k);
  if (n > size - 8 || n > kMaxHeaderBytes) {
    throw InputError(path, "not a safetensors file: bad header length")
        .expected("at most " + std::to_string(std::min<std::uint64_t>(size - 8, kMaxHeaderBytes)) +
                  " bytes")
        .found(std::to_string(n));
  }
  const char* text = reinterpret_cast<const char*>(file.data() + 8);
  if (n == 0 || text[0] != '{') {
    throw InputError(path, "not a safetensors file: the header is not a JSON object");
  }
  Header h;
  std::set<std::string> seen;
  std::string duplicate;
  // Duplicate names would silently overwrite each other in the parsed object.
  const Json::parser_callback_t check_keys = [&](int depth, Json::parse_event_t event,
                                                 Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    h.json = Json::parse(text, text + n, check_keys);
  } catch (const Json::exception& e) {
    throw InputError(path, std::string("invalid JSON header: ") + e.what());
  }
  if (!duplicate.empty()) {
    throw InputError(path, "tensor listed twice in the header").key(duplicate);
  }
  if (!h.json.is_object()) {
    throw InputError(path, "not a safetensors file: the header is not a JSON object");
  }
  h.data = file.data() + 8 + n;
  h.data_size = size - 8 - n;
  return h;
}

std::uint64_t unsigned_value(const MappedFile& file, const std::string& name, const Json& j,
                             const char* what) {
  if (!j.is_number_unsigned() ||
      j.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
    throw InputError(file.path(), std::string("bad ") + what)
        .key(name)
        .expected("a non-negative integer")
        .found(json_kind(j));
  }
  return j.get<std::uint64_t>();
}

// Borrows the mapped bytes when they are aligned for the dtype (always so in files the
// safetensors library writes: it pads the header to 8 bytes and orders tensors by alignment),
// else copies them into an aligned buffer, so that data_as<T>() is valid on every result.
NdArray view_or_copy(DType dtype, std::vector<std::int64_t> shape,
                     const std::shared_ptr<const MappedFile>& file, const std::byte* data) {
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(dtype) == 0) {
    return NdArray(dtype, std::move(shape), file, data);
  }
  NdArray copy = NdArray::allocate(dtype, std::move(shape));
  if (copy.nbytes() > 0) std::memcpy(copy.mutable_data(), data, copy.nbytes());
  return copy;
}

}  // namespace

std::vector<NamedArray> parse_safetensors(std::shared_ptr<const MappedFile> file) {
  MD_ASSERT(file != nullptr);
  const std::string& path = file->path();
  const Header h = parse_header(*file);

  struct Span {
    std::uint64_t begin, end;
    std::size_t index;
  };
  std::vector<Span> spans;
  std::vector<NamedArray> out;
  for (const auto& [name, entry] : h.json.items()) {
    if (name == "__metadata__") continue;
    if (!entry.is_object()) {
      throw InputError(path, "bad tensor entry")
          .key(name)
          .expected("a JSON object with dtype, shape and data_offsets")
          .found(json_kind(entry));
    }
    const auto dt = entry.find("dtype");
    const auto sh = entry.find("shape");
    const auto off = entry.find("data_offsets");
    if (dt == entry.end() || sh == entry.end() || off == entry.end()) {
      throw InputError(path, "bad tensor entry")
          .key(name)
          .expected("keys dtype, shape and data_offsets");
    }
    DType dtype;
    if (!dt->is_string() || !dtype_from_code(dt->get<std::string>(), &dtype)) {
      throw InputError(path, "unsupported dtype")
          .key(name)
          .expected("F16, BF16, F32, F64, I8, U8, I16, I32, I64 or BOOL")
          .found(dt->is_string() ? dt->get<std::string>() : json_kind(*dt));
    }
    if (!sh->is_array() || sh->size() > 64) {
      throw InputError(path, "bad shape")
          .key(name)
          .expected("a list of dims")
          .found(json_kind(*sh));
    }
    std::vector<std::int64_t> shape;
    for (const Json& d : *sh)
      shape.push_back(std::int64_t(unsigned_value(*file, name, d, "shape")));
    if (!off->is_array() || off->size() != 2) {
      throw InputError(path, "bad data_offsets")
          .key(name)
          .expected("[begin, end]")
          .found(json_kind(*off));
    }
    const std::uint64_t begin = unsigned_value(*file, name, (*off)[0], "data_offsets");
    const std::uint64_t end = unsigned_value(*file, name, (*off)[1], "data_offsets");
    const std::int64_t numel = checked_numel(shape);
    const std::size_t item = dtype_size(dtype);
    if (numel < 0 || std::uint64_t(numel) > std::numeric_limits<std::uint64_t>::max() / item) {
      throw InputError(path, "shape overflows").key(name).found(shape_to_string(shape));
    }
    const std::uint64_t bytes = std::uint64_t(numel) * item;
    if (begin > end || end > h.data_size) {
      throw InputError(path, "data_offsets outside the data")
          .key(name)
          .expected("0 <= begin <= end <= " + std::to_string(h.data_size))
          .found("[" + std::to_string(begin) + ", " + std::to_string(end) + "]");
    }
    if (end - begin != bytes) {
      throw InputError(path, "data_offsets do not match the shape")
          .key(name)
          .expected(shape_to_string(shape) + " x " + dtype_name(dtype) + " = " +
                    std::to_string(bytes) + " bytes")
          .found(std::to_string(end - begin) + " bytes");
    }
    if (end > begin) spans.push_back({begin, end, out.size()});
    out.push_back({name, view_or_copy(dtype, std::move(shape), file,
                                      h.data + static_cast<std::size_t>(begin))});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by begin and disjoint so far, the previous span reaches furthest. Zero-size tensors
  // own no bytes and are not in `spans`.
  for (std::size_t k = 1; k < spans.size(); ++k) {
    if (spans[k].begin < spans[k - 1].end) {
      throw InputError(path, "tensors overlap in the data")
          .key(out[spans[k].index].name)
          .found("bytes shared with " + out[spans[k - 1].index].name);
    }
  }
  return out;
}

std::vector<NamedArray> read_safetensors(const std::string& path) {
  return parse_safetensors(MappedFile::open(path));
}

std::vector<std::pair<std::string, std::string>> read_safetensors_metadata(
    std::shared_ptr<const MappedFile> file) {
  MD_ASSERT(file != nullptr);
  const Header h = parse_header(*file);
  std::vector<std::pair<std::string, std::string>> out;
  const auto meta = h.json.find("__metadata__");
  if (meta == h.json.end()) return out;
  if (!meta->is_object()) {
    throw InputError(file->path(), "bad __metadata__")
        .expected("a JSON object of strings")
        .found(json_kind(*meta));
  }
  for (const auto& [key, value] : meta->items()) {
    if (!value.is_string()) {
      throw InputError(file->path(), "bad __metadata__ value")
          .key(key)
          .expected("a string")
          .found(json_kind(value));
    }
    out.emplace_back(key, value.get<std::string>());
  }
  return out;
}

}  // namespace modeldiff::core
