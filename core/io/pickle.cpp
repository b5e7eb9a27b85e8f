#include "core/io/pickle.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/base/error.h"

namespace modeldiff::core {

namespace {
constexpr std::uint32_t kNoRef = 0xffffffffu;
using Kind = PickleValue::Kind;
}  // namespace

namespace detail {

struct PickleArena {
  struct Node {
    Kind kind = Kind::kNone;
    std::int64_t i = 0;
    double f = 0.0;
    std::string s;   // str / bytes / big int bytes / global module
    std::string s2;  // global name
    std::vector<std::uint32_t> items;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> pairs;
    // kCall: a = callable, b = args, c = kwargs; kPersistentId: a = the id.
    std::uint32_t a = kNoRef, b = kNoRef, c = kNoRef, state = kNoRef;
  };
  std::vector<Node> nodes;
};

}  // namespace detail

namespace {

// Opcode names as in Python's pickletools, for error messages.
const char* opcode_name(std::uint8_t op) {
  switch (op) {
    case '(':
      return "MARK";
    case '.':
      return "STOP";
    case '0':
      return "POP";
    case '1':
      return "POP_MARK";
    case '2':
      return "DUP";
    case 'F':
      return "FLOAT";
    case 'I':
      return "INT";
    case 'J':
      return "BININT";
    case 'K':
      return "BININT1";
    case 'L':
      return "LONG";
    case 'M':
      return "BININT2";
    case 'N':
      return "NONE";
    case 'P':
      return "PERSID";
    case 'Q':
      return "BINPERSID";
    case 'R':
      return "REDUCE";
    case 'S':
      return "STRING";
    case 'T':
      return "BINSTRING";
    case 'U':
      return "SHORT_BINSTRING";
    case 'V':
      return "UNICODE";
    case 'X':
      return "BINUNICODE";
    case 'a':
      return "APPEND";
    case 'b':
      return "BUILD";
    case 'c':
      return "GLOBAL";
    case 'd':
      return "DICT";
    case '}':
      return "EMPTY_DICT";
    case 'e':
      return "APPENDS";
    case 'g':
      return "GET";
    case 'h':
      return "BINGET";
    case 'i':
      return "INST";
    case 'j':
      return "LONG_BINGET";
    case 'l':
      return "LIST";
    case ']':
      return "EMPTY_LIST";
    case 'o':
      return "OBJ";
    case 'p':
      return "PUT";
    case 'q':
      return "BINPUT";
    case 'r':
      return "LONG_BINPUT";
    case 's':
      return "SETITEM";
    case 't':
      return "TUPLE";
    case ')':
      return "EMPTY_TUPLE";
    case 'u':
      return "SETITEMS";
    case 'G':
      return "BINFLOAT";
    case 0x80:
      return "PROTO";
    case 0x81:
      return "NEWOBJ";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 0x85:
      return "TUPLE1";
    case 0x86:
      return "TUPLE2";
    case 0x87:
      return "TUPLE3";
    case 0x88:
      return "NEWTRUE";
    case 0x89:
      return "NEWFALSE";
    case 0x8a:
      return "LONG1";
    case 0x8b:
      return "LONG4";
    case 'B':
      return "BINBYTES";
    case 'C':
      return "SHORT_BINBYTES";
    case 0x8c:
      return "SHORT_BINUNICODE";
    case 0x8d:
      return "BINUNICODE8";
    case 0x8e:
      return "BINBYTES8";
    case 0x8f:
      return "EMPTY_SET";
    case 0x90:
      return "ADDITEMS";
    case 0x91:
      return "FROZENSET";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x93:
      return "STACK_GLOBAL";
    case 0x94:
      return "MEMOIZE";
    case 0x95:
      return "FRAME";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
    default:
      return nullptr;
  }
}

std::string opcode_text(std::uint8_t op) {
  static const char* kHex = "0123456789abcdef";
  std::string s = "0x";
  s += kHex[op >> 4];
  s += kHex[op & 15];
  if (const char* n = opcode_name(op)) {
    s += " (";
    s += n;
    s += ")";
  }
  return s;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kBigInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kSet:
      return "set";
    case Kind::kGlobal:
      return "global";
    case Kind::kCall:
      return "object";
    case Kind::kPersistentId:
      return "persistent id";
  }
  return "?";
}

}  // namespace

// The interpreter. Python's unpickler keeps a stack of stacks (MARK pushes a fresh one); here
// one stack plus the positions of open marks, where values below the innermost mark are out of
// reach just as in Python.
class PickleMachine {
 public:
  PickleMachine(const std::string& name, const std::byte* data, std::size_t size)
      : name_(name), data_(reinterpret_cast<const std::uint8_t*>(data)), size_(size) {
    arena_ = std::make_shared<detail::PickleArena>();
    arena_->nodes.reserve(std::min<std::size_t>(size / 4 + 16, 1u << 16));
    new_node(Kind::kNone);        // 0: None
    new_node(Kind::kBool).i = 1;  // 1: True
    new_node(Kind::kBool).i = 0;  // 2: False
  }

  PickleValue run() {
    if (size_ == 0) throw InputError(name_, "empty pickle");
    while (true) {
      if (pos_ >= size_) {
        op_offset_ = pos_;
        fail("pickle ends without a STOP opcode");
      }
      op_offset_ = pos_;
      const std::uint8_t op = data_[pos_++];
      if (op == '.') {
        if (!marks_.empty()) fail("STOP with an unclosed MARK");
        if (stack_.size() != 1) {
          fail("STOP with " + std::to_string(stack_.size()) + " values on the stack", "exactly 1");
        }
        return PickleValue(arena_, stack_.back());
      }
      step(op);
    }
  }

 private:
  using Node = detail::PickleArena::Node;

  [[noreturn]] void fail(const std::string& problem, const std::string& expected = {}) const {
    InputError e(name_, problem + " at byte " + std::to_string(op_offset_) + " of the pickle");
    if (!expected.empty()) e.expected(expected);
    throw e;
  }

  // --- reading ---
  void need(std::size_t n) const {
    if (n > size_ - pos_) {
      fail("pickle truncated: opcode " + opcode_text(data_[op_offset_]) + " needs " +
           std::to_string(n) + " more bytes, " + std::to_string(size_ - pos_) + " left");
    }
  }
  std::uint64_t read_le(std::size_t n) {
    need(n);
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= std::uint64_t{data_[pos_ + k]} << (8 * k);
    pos_ += n;
    return v;
  }
  std::string read_bytes(std::uint64_t n) {
    if (n > size_ - pos_) {
      fail("pickle truncated: opcode " + opcode_text(data_[op_offset_]) + " announces " +
           std::to_string(n) + " bytes, " + std::to_string(size_ - pos_) + " left");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string read_line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (nl == nullptr) fail("pickle truncated: GLOBAL name without end of line");
    const std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data_);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }

  // --- nodes and stack ---
  Node& new_node(Kind kind) {
    if (arena_->nodes.size() >= kPickleMaxNodes) fail("pickle has too many objects");
    arena_->nodes.emplace_back();
    arena_->nodes.back().kind = kind;
    last_ = static_cast<std::uint32_t>(arena_->nodes.size() - 1);
    return arena_->nodes.back();
  }
  Node& node(std::uint32_t ref) { return arena_->nodes[ref]; }

  std::size_t frame_base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(std::uint32_t ref) {
    if (stack_.size() >= kPickleMaxStack) fail("pickle stack too deep");
    stack_.push_back(ref);
  }
  std::uint32_t top() const {
    if (stack_.size() <= frame_base()) fail("stack underflow");
    return stack_.back();
  }
  std::uint32_t pop() {
    const std::uint32_t v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<std::uint32_t> pop_mark() {
    if (marks_.empty()) fail("opcode " + opcode_text(data_[op_offset_]) + " without a MARK");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<std::uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void push_new(Kind kind) {
    new_node(kind);
    push(last_);
  }
  void push_int(std::int64_t v) {
    new_node(Kind::kInt).i = v;
    push(last_);
  }
  void push_string(Kind kind, std::string s) {
    new_node(kind).s = std::move(s);
    push(last_);
  }
  void push_tuple(std::vector<std::uint32_t> items) {
    new_node(Kind::kTuple).items = std::move(items);
    push(last_);
  }
  void push_call(std::uint32_t callable, std::uint32_t args, std::uint32_t kwargs) {
    Node& n = new_node(Kind::kCall);
    n.a = callable;
    n.b = args;
    n.c = kwargs;
    push(last_);
  }

  // A Python int from `bytes` (little-endian two's complement, as LONG1/LONG4 write it).
  void push_long(const std::string& bytes) {
    const std::size_t n = bytes.size();
    if (n == 0) return push_int(0);
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(bytes[k]); };
    const bool negative = (byte(n - 1) & 0x80) != 0;
    bool fits = true;
    if (n > 8) {
      const std::uint8_t fill = negative ? 0xff : 0x00;
      for (std::size_t k = 8; k < n && fits; ++k) fits = byte(k) == fill;
      fits = fits && (((byte(7) & 0x80) != 0) == negative);
    }
    if (!fits) return push_string(Kind::kBigInt, bytes);
    std::uint64_t v = 0;
    const std::size_t m = n < 8 ? n : 8;
    for (std::size_t k = 0; k < m; ++k) v |= std::uint64_t{byte(k)} << (8 * k);
    if (negative && m < 8) v |= ~std::uint64_t{0} << (8 * m);
    std::int64_t s;
    std::memcpy(&s, &v, sizeof s);
    push_int(s);
  }

  void memo_put(std::uint64_t index) {
    const std::uint32_t v = top();
    if (memo_.size() >= kPickleMaxMemo && memo_.find(index) == memo_.end()) {
      fail("pickle memo too large");
    }
    memo_[index] = v;
  }
  void memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo key " + std::to_string(index) + " was never stored");
    push(it->second);
  }

  // The object a SETITEM(S) / APPEND(S) / BUILD / ADDITEMS applies to.
  Node& target(std::initializer_list<Kind> kinds) {
    const std::uint32_t ref = top();
    Node& n = node(ref);
    for (Kind k : kinds) {
      if (n.kind == k) return n;
    }
    fail(std::string("opcode ") + opcode_text(data_[op_offset_]) + " applied to a " +
         kind_name(n.kind));
  }

  void add_pairs(const std::vector<std::uint32_t>& kv) {
    if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of values");
    Node& n = target({Kind::kDict, Kind::kCall});
    for (std::size_t k = 0; k < kv.size(); k += 2) n.pairs.emplace_back(kv[k], kv[k + 1]);
  }

  void step(std::uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const auto proto = read_le(1);
        if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto), "2 to 5");
        protocol_ = static_cast<int>(proto);
        return;
      }
      case 0x95: {  // FRAME: an I/O hint; the frame must lie within the data.
        const std::uint64_t len = read_le(8);
        if (len > size_ - pos_) {
          fail("pickle truncated: FRAME of " + std::to_string(len) + " bytes, " +
               std::to_string(size_ - pos_) + " left");
        }
        return;
      }
      case '(':  // MARK
        if (marks_.size() >= kPickleMaxStack) fail("too many nested MARKs");
        marks_.push_back(stack_.size());
        return;
      case '0':  // POP: as in Python, pops a MARK when the current frame is empty
        if (stack_.size() > frame_base()) {
          stack_.pop_back();
        } else {
          pop_mark();
        }
        return;
      case '1':  // POP_MARK
        pop_mark();
        return;
      case '2':  // DUP
        push(top());
        return;

      // --- scalars ---
      case 'N':
        return push(0);
      case 0x88:
        return push(1);  // NEWTRUE
      case 0x89:
        return push(2);  // NEWFALSE
      case 'J': {        // BININT: signed 32-bit
        const auto v = static_cast<std::uint32_t>(read_le(4));
        std::int32_t s;
        std::memcpy(&s, &v, sizeof s);
        return push_int(s);
      }
      case 'K':
        return push_int(static_cast<std::int64_t>(read_le(1)));  // BININT1
      case 'M':
        return push_int(static_cast<std::int64_t>(read_le(2)));  // BININT2
      case 0x8a: {                                               // LONG1
        const auto n = read_le(1);
        return push_long(read_bytes(n));
      }
      case 0x8b: {  // LONG4: signed 32-bit length
        const auto n = static_cast<std::uint32_t>(read_le(4));
        if (n & 0x80000000u) fail("LONG4 with a negative length");
        return push_long(read_bytes(n));
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8);
        std::uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | data_[pos_ + static_cast<std::size_t>(k)];
        pos_ += 8;
        double d;
        std::memcpy(&d, &bits, sizeof d);
        new_node(Kind::kFloat).f = d;
        return push(last_);
      }

      // --- strings and bytes ---
      case 'X':
        return push_string(Kind::kString, read_bytes(read_le(4)));  // BINUNICODE
      case 0x8c:
        return push_string(Kind::kString, read_bytes(read_le(1)));  // SHORT_BINUNICODE
      case 0x8d:
        return push_string(Kind::kString, read_bytes(read_le(8)));  // BINUNICODE8
      case 'U':
        return push_string(Kind::kString, read_bytes(read_le(1)));  // SHORT_BINSTRING
      case 'T': {                                                   // BINSTRING
        const auto n = static_cast<std::uint32_t>(read_le(4));
        if (n & 0x80000000u) fail("BINSTRING with a negative length");
        return push_string(Kind::kString, read_bytes(n));
      }
      case 'C':
        return push_string(Kind::kBytes, read_bytes(read_le(1)));  // SHORT_BINBYTES
      case 'B':
        return push_string(Kind::kBytes, read_bytes(read_le(4)));  // BINBYTES
      case 0x8e:
        return push_string(Kind::kBytes, read_bytes(read_le(8)));  // BINBYTES8
      case 0x96:
        return push_string(Kind::kBytes, read_bytes(read_le(8)));  // BYTEARRAY8

      // --- containers ---
      case ')':
        return push_tuple({});  // EMPTY_TUPLE
      case 0x85: {              // TUPLE1
        const std::uint32_t a = pop();
        return push_tuple({a});
      }
      case 0x86: {  // TUPLE2
        const std::uint32_t b = pop();
        const std::uint32_t a = pop();
        return push_tuple({a, b});
      }
      case 0x87: {  // TUPLE3
        const std::uint32_t c = pop();
        const std::uint32_t b = pop();
        const std::uint32_t a = pop();
        return push_tuple({a, b, c});
      }
      case 't':
        return push_tuple(pop_mark());  // TUPLE
      case ']':
        return push_new(Kind::kList);  // EMPTY_LIST
      case 'l': {                      // LIST
        auto items = pop_mark();
        new_node(Kind::kList).items = std::move(items);
        return push(last_);
      }
      case '}':
        return push_new(Kind::kDict);  // EMPTY_DICT
      case 'd': {                      // DICT
        auto kv = pop_mark();
        push_new(Kind::kDict);
        return add_pairs(kv);
      }
      case 0x8f:
        return push_new(Kind::kSet);  // EMPTY_SET
      case 0x91: {                    // FROZENSET
        auto items = pop_mark();
        new_node(Kind::kSet).items = std::move(items);
        return push(last_);
      }
      case 'a': {  // APPEND
        const std::uint32_t v = pop();
        target({Kind::kList, Kind::kCall}).items.push_back(v);
        return;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        auto& dst = target({Kind::kList, Kind::kCall}).items;
        dst.insert(dst.end(), items.begin(), items.end());
        return;
      }
      case 0x90: {  // ADDITEMS
        auto items = pop_mark();
        auto& dst = target({Kind::kSet}).items;
        dst.insert(dst.end(), items.begin(), items.end());
        return;
      }
      case 's': {  // SETITEM
        const std::uint32_t v = pop();
        const std::uint32_t k = pop();
        add_pairs({k, v});
        return;
      }
      case 'u':
        return add_pairs(pop_mark());  // SETITEMS

      // --- memo ---
      case 'q':
        return memo_put(read_le(1));  // BINPUT
      case 'r':
        return memo_put(read_le(4));  // LONG_BINPUT
      case 0x94:
        return memo_put(memo_.size());  // MEMOIZE
      case 'h':
        return memo_get(read_le(1));  // BINGET
      case 'j':
        return memo_get(read_le(4));  // LONG_BINGET

      // --- globals and calls: recorded, never performed ---
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module = read_line();
        std::string qualname = read_line();
        // Python 3 writes Python 2 module names below protocol 3 (fix_imports) and maps them
        // back when loading; the two that matter for data are mapped here too.
        if (protocol_ < 3 && module == "__builtin__") module = "builtins";
        if (protocol_ < 3 && module == "copy_reg") module = "copyreg";
        Node& n = new_node(Kind::kGlobal);
        n.s = std::move(module);
        n.s2 = std::move(qualname);
        return push(last_);
      }
      case 0x93: {  // STACK_GLOBAL
        const std::uint32_t qualname = pop();
        const std::uint32_t module = pop();
        if (node(module).kind != Kind::kString || node(qualname).kind != Kind::kString) {
          fail("STACK_GLOBAL needs two strings");
        }
        std::string m = node(module).s, q = node(qualname).s;
        Node& n = new_node(Kind::kGlobal);
        n.s = std::move(m);
        n.s2 = std::move(q);
        return push(last_);
      }
      case 'R': {  // REDUCE
        const std::uint32_t args = pop();
        const std::uint32_t callable = pop();
        return push_call(callable, args, kNoRef);
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        const std::uint32_t args = pop();
        const std::uint32_t cls = pop();
        return push_call(cls, args, kNoRef);
      }
      case 0x92: {  // NEWOBJ_EX
        const std::uint32_t kwargs = pop();
        const std::uint32_t args = pop();
        const std::uint32_t cls = pop();
        return push_call(cls, args, kwargs);
      }
      case 'b': {  // BUILD
        const std::uint32_t state = pop();
        target({Kind::kCall}).state = state;
        return;
      }
      case 'Q': {  // BINPERSID
        const std::uint32_t id = pop();
        new_node(Kind::kPersistentId).a = id;
        return push(last_);
      }

      case 'I':
      case 'L':
      case 'F':
      case 'S':
      case 'V':
      case 'P':
      case 'g':
      case 'p':
      case 'i':
      case 'o':
        fail("unsupported pickle opcode " + opcode_text(op) +
             ": protocol 0 text opcodes are not supported; save with protocol 2 or later");
      case 0x82:
      case 0x83:
      case 0x84:
        fail("unsupported pickle opcode " + opcode_text(op) + " (copyreg extension codes)");
      case 0x97:
      case 0x98:
        fail("unsupported pickle opcode " + opcode_text(op) + " (out-of-band buffers)");
      default:
        fail("unsupported pickle opcode " + opcode_text(op));
    }
  }

  const std::string& name_;
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::size_t op_offset_ = 0;
  int protocol_ = 0;  // from PROTO; 0 when absent
  std::shared_ptr<detail::PickleArena> arena_;
  std::uint32_t last_ = 0;  // index of the node new_node() made last
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, std::uint32_t> memo_;
};

PickleValue parse_pickle(const std::string& name, const std::byte* data, std::size_t size) {
  PickleMachine machine(name, data, size);
  return machine.run();
}

// --- PickleValue accessors ---

namespace {
const detail::PickleArena::Node& node_of(const detail::PickleArena& arena, std::uint32_t i) {
  return arena.nodes[i];
}
}  // namespace

#define PICKLE_NODE node_of(*arena_, index_)

PickleValue::Kind PickleValue::kind() const {
  return PICKLE_NODE.kind;
}

bool PickleValue::as_bool() const {
  MD_ASSERT(kind() == Kind::kBool);
  return PICKLE_NODE.i != 0;
}

std::int64_t PickleValue::as_int() const {
  MD_ASSERT(kind() == Kind::kInt);
  return PICKLE_NODE.i;
}

double PickleValue::as_float() const {
  MD_ASSERT(kind() == Kind::kFloat);
  return PICKLE_NODE.f;
}

const std::string& PickleValue::as_string() const {
  MD_ASSERT(kind() == Kind::kString || kind() == Kind::kBytes || kind() == Kind::kBigInt);
  return PICKLE_NODE.s;
}

const std::string& PickleValue::global_module() const {
  MD_ASSERT(kind() == Kind::kGlobal);
  return PICKLE_NODE.s;
}

const std::string& PickleValue::global_name() const {
  MD_ASSERT(kind() == Kind::kGlobal);
  return PICKLE_NODE.s2;
}

bool PickleValue::is_global(std::string_view module, std::string_view name) const {
  return kind() == Kind::kGlobal && PICKLE_NODE.s == module && PICKLE_NODE.s2 == name;
}

std::size_t PickleValue::item_count() const {
  const Kind k = kind();
  MD_ASSERT(k == Kind::kTuple || k == Kind::kList || k == Kind::kSet || k == Kind::kCall);
  return PICKLE_NODE.items.size();
}

PickleValue PickleValue::item(std::size_t i) const {
  MD_ASSERT(i < item_count());
  return at(PICKLE_NODE.items[i]);
}

std::size_t PickleValue::pair_count() const {
  MD_ASSERT(kind() == Kind::kDict || kind() == Kind::kCall);
  return PICKLE_NODE.pairs.size();
}

PickleValue PickleValue::pair_key(std::size_t i) const {
  MD_ASSERT(i < pair_count());
  return at(PICKLE_NODE.pairs[i].first);
}

PickleValue PickleValue::pair_value(std::size_t i) const {
  MD_ASSERT(i < pair_count());
  return at(PICKLE_NODE.pairs[i].second);
}

PickleValue PickleValue::callable() const {
  MD_ASSERT(kind() == Kind::kCall);
  return at(PICKLE_NODE.a);
}

PickleValue PickleValue::args() const {
  MD_ASSERT(kind() == Kind::kCall);
  return at(PICKLE_NODE.b);
}

bool PickleValue::has_kwargs() const {
  return kind() == Kind::kCall && PICKLE_NODE.c != kNoRef;
}

PickleValue PickleValue::kwargs() const {
  MD_ASSERT(has_kwargs());
  return at(PICKLE_NODE.c);
}

bool PickleValue::has_state() const {
  return kind() == Kind::kCall && PICKLE_NODE.state != kNoRef;
}

PickleValue PickleValue::state() const {
  MD_ASSERT(has_state());
  return at(PICKLE_NODE.state);
}

bool PickleValue::is_call_to(std::string_view module, std::string_view name) const {
  return kind() == Kind::kCall && callable().is_global(module, name);
}

PickleValue PickleValue::persistent_id() const {
  MD_ASSERT(kind() == Kind::kPersistentId);
  return at(PICKLE_NODE.a);
}

std::string PickleValue::describe() const {
  const auto& n = PICKLE_NODE;
  switch (n.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return n.i ? "True" : "False";
    case Kind::kInt:
      return "int " + std::to_string(n.i);
    case Kind::kBigInt:
      return "int of " + std::to_string(n.s.size()) + " bytes";
    case Kind::kFloat:
      return "float " + std::to_string(n.f);
    case Kind::kString: {
      std::string shown = n.s.size() > 40 ? n.s.substr(0, 40) + "..." : n.s;
      for (char& ch : shown) {
        if (static_cast<unsigned char>(ch) < 0x20) ch = '?';
      }
      return "str '" + shown + "'";
    }
    case Kind::kBytes:
      return "bytes of length " + std::to_string(n.s.size());
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kSet:
      return std::string(kind_name(n.kind)) + " of " + std::to_string(n.items.size()) + " items";
    case Kind::kDict:
      return "dict of " + std::to_string(n.pairs.size()) + " items";
    case Kind::kGlobal:
      return "global " + n.s + "." + n.s2;
    case Kind::kCall: {
      const auto& c = node_of(*arena_, n.a);
      if (c.kind == Kind::kGlobal) return "object made by " + c.s + "." + c.s2;
      return std::string("object made by a ") + kind_name(c.kind);
    }
    case Kind::kPersistentId:
      return "persistent id";
  }
  return "?";
}

#undef PICKLE_NODE

}  // namespace modeldiff::core
