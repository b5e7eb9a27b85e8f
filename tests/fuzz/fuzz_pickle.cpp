// libFuzzer target for the pickle subset: parses, then walks the resulting tree (shared and
// cyclic structures are visited once) through every accessor.
#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "core/base/error.h"
#include "core/io/pickle.h"

using modeldiff::core::PickleValue;
using Kind = PickleValue::Kind;

namespace {

std::size_t touch(const PickleValue& root) {
  std::size_t sum = 0;
  std::unordered_set<std::uint32_t> seen;
  std::vector<PickleValue> todo{root};
  while (!todo.empty() && seen.size() < 100000) {
    const PickleValue v = todo.back();
    todo.pop_back();
    if (!seen.insert(v.node_id()).second) continue;
    sum += v.describe().size();
    switch (v.kind()) {
      case Kind::kInt:
        sum += static_cast<std::size_t>(v.as_int());
        break;
      case Kind::kString:
      case Kind::kBytes:
      case Kind::kBigInt:
        sum += v.as_string().size();
        break;
      case Kind::kGlobal:
        sum += v.global_module().size() + v.global_name().size();
        break;
      case Kind::kPersistentId:
        todo.push_back(v.persistent_id());
        break;
      case Kind::kCall:
        todo.push_back(v.callable());
        todo.push_back(v.args());
        if (v.has_state()) todo.push_back(v.state());
        if (v.has_kwargs()) todo.push_back(v.kwargs());
        [[fallthrough]];
      case Kind::kDict:
        for (std::size_t i = 0; i < v.pair_count(); ++i) {
          todo.push_back(v.pair_key(i));
          todo.push_back(v.pair_value(i));
        }
        if (v.kind() == Kind::kDict) break;
        [[fallthrough]];
      case Kind::kTuple:
      case Kind::kList:
      case Kind::kSet:
        for (std::size_t i = 0; i < v.item_count(); ++i) todo.push_back(v.item(i));
        break;
      default:
        break;
    }
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const PickleValue v =
        modeldiff::core::parse_pickle("fuzz.pkl", reinterpret_cast<const std::byte*>(data), size);
    volatile std::size_t sink = touch(v);
    (void)sink;
  } catch (const modeldiff::core::InputError&) {
  }
  return 0;
}
