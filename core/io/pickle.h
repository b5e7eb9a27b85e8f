// A safe subset of Python's unpickler: turns pickle bytes into a tree of values, never
// executing anything.
//
// torch.save writes its object tree (state dicts, OrderedDicts, tensor rebuild calls) as a
// protocol-2 pickle. This reader interprets the binary opcodes of protocols 2-5 (what Python 3
// emits) and represents what a real unpickler would have *called* as data: a global is only a
// (module, name) pair, and REDUCE / NEWOBJ / BUILD produce a kCall node holding the callable,
// its arguments and the state, plus whatever SETITEMS / APPENDS added to the object (an
// OrderedDict is "call collections.OrderedDict()" followed by SETITEMS). Interpreting those
// calls is up to the caller (torch_archive.cpp knows torch's rebuild functions).
//
// Hostile input: every length is checked against the bytes left, the stack, memo and node
// count are bounded, and the interpreter is a loop (no recursion). A pickle can still describe
// shared and even cyclic structures through its memo (a list that contains itself); the nodes
// live in one arena, so that costs no leak, but code that walks the tree must bound its depth.
// Protocol-0 text opcodes, extension codes and out-of-band buffers are refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace modeldiff::core {

namespace detail {
struct PickleArena;
}

// A handle to one node of an unpickled tree: cheap to copy; copies of a handle, and values the
// pickle shared through its memo, refer to the same node (same node_id()).
class PickleValue {
 public:
  enum class Kind {
    kNone,
    kBool,
    kInt,     // fits in int64
    kBigInt,  // a Python int beyond int64: as_string() holds its little-endian two's complement
    kFloat,
    kString,  // str (UTF-8 bytes as written)
    kBytes,   // bytes / bytearray
    kTuple,
    kList,
    kDict,          // ordered as written; keys of any kind (usually str or int)
    kSet,           // set / frozenset
    kGlobal,        // a reference to module.name (GLOBAL / STACK_GLOBAL); never resolved
    kCall,          // callable(*args) from REDUCE / NEWOBJ(_EX), with BUILD state and items
    kPersistentId,  // BINPERSID: persistent_id() is the value the pickler wrote (torch: a tuple)
  };

  Kind kind() const;
  bool is(Kind k) const { return kind() == k; }
  // Stable identity within one parse: equal for values the pickle shared through its memo.
  std::uint32_t node_id() const { return index_; }

  // Scalars; each asserts the kind (check kind() first on untrusted data).
  bool as_bool() const;                  // kBool
  std::int64_t as_int() const;           // kInt
  double as_float() const;               // kFloat
  const std::string& as_string() const;  // kString, kBytes, kBigInt

  // kGlobal.
  const std::string& global_module() const;
  const std::string& global_name() const;
  // True when this is the global module.name.
  bool is_global(std::string_view module, std::string_view name) const;

  // Sequence items: kTuple, kList, kSet, and for kCall the items APPEND(S) added.
  std::size_t item_count() const;
  PickleValue item(std::size_t i) const;

  // Mapping pairs: kDict, and for kCall the pairs SETITEM(S) added.
  std::size_t pair_count() const;
  PickleValue pair_key(std::size_t i) const;
  PickleValue pair_value(std::size_t i) const;

  // kCall.
  PickleValue callable() const;  // usually a kGlobal
  PickleValue args() const;      // usually a kTuple
  bool has_kwargs() const;       // NEWOBJ_EX only
  PickleValue kwargs() const;
  bool has_state() const;  // set by BUILD
  PickleValue state() const;
  // True when the callable is the global module.name.
  bool is_call_to(std::string_view module, std::string_view name) const;

  // kPersistentId.
  PickleValue persistent_id() const;

  // Short description for error messages, e.g. "int 3", "str 'cpu'", "tuple of 5 items",
  // "call to torch._utils._rebuild_tensor_v2". Never walks into children beyond one level.
  std::string describe() const;

 private:
  friend struct detail::PickleArena;
  friend class PickleMachine;
  PickleValue(std::shared_ptr<const detail::PickleArena> arena, std::uint32_t index)
      : arena_(std::move(arena)), index_(index) {}
  PickleValue at(std::uint32_t index) const { return PickleValue(arena_, index); }

  std::shared_ptr<const detail::PickleArena> arena_;
  std::uint32_t index_ = 0;
};

// Unpickles `data[0, size)` up to its STOP opcode and returns the value it leaves. `name`
// (usually a file path) names the input in errors. Throws InputError naming the opcode and
// byte offset for unsupported opcodes, truncated or inconsistent input, or input beyond the
// limits below.
PickleValue parse_pickle(const std::string& name, const std::byte* data, std::size_t size);

// Limits against hostile input (far above what torch.save writes: one node per opcode).
inline constexpr std::size_t kPickleMaxNodes = std::size_t{1} << 24;
inline constexpr std::size_t kPickleMaxStack = std::size_t{1} << 20;
inline constexpr std::size_t kPickleMaxMemo = std::size_t{1} << 22;

}  // namespace modeldiff::core
