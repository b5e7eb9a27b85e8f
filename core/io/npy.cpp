#include "core/io/npy.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/atomic_file.h"
#include "core/base/error.h"

namespace modeldiff::core {
namespace {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
// numpy refuses arrays with more dims (NPY_MAXDIMS); refusing them here too means every file
// we accept or write is one numpy can load.
constexpr std::size_t kMaxDims = 32;
constexpr std::size_t kArrayAlign = 64;  // numpy's ARRAY_ALIGN
// numpy leaves room after the header dict so that the growth axis can be rewritten in place
// (GROWTH_AXIS_MAX_DIGITS in numpy/lib/format.py); the writer must do the same to match it.
constexpr std::size_t kGrowthAxisMaxDigits = 21;

// How elements of the file's dtype become elements of an NdArray dtype.
enum class Widen { kNone, kU16ToI32, kU32ToI64, kU64ToI64 };

struct ElementType {
  DType dtype;            // what the NdArray holds
  std::size_t file_size;  // bytes per element in the file
  bool swap;              // file byte order differs from the host's
  Widen widen;
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

// Text of (part of) a header for error messages, with non-printable bytes escaped.
std::string printable(std::string_view s, std::size_t max_len = 120) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_len; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

// Parses the header dict, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// numpy itself uses ast.literal_eval, so keys may come in any order, with any whitespace and
// an optional trailing comma, and strings in either quote. Only the subset numpy writes (and
// Python 2 numpy wrote: '3L' dims) is accepted; anything else is an InputError.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, std::string_view text, bool allow_long_suffix)
      : path_(path), text_(text), allow_long_suffix_(allow_long_suffix) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    skip_ws();
    while (!consume('}')) {
      const std::string key = parse_string("a quoted key");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        h.descr = parse_descr();
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) fail("duplicate key 'fortran_order'");
        h.fortran_order = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        h.shape = parse_shape();
        have_shape = true;
      } else {
        // numpy.load refuses any key beyond these three.
        fail("unexpected key '" + printable(key) + "'");
      }
      skip_ws();
      if (consume(',')) {
        skip_ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}' after the value of '" + key + "'");
      }
    }
    skip_ws();
    if (pos_ != text_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(path_, "malformed .npy header: " + what)
        .found("'" + printable(text_) + "' (error at byte " + std::to_string(pos_) + ")");
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  void skip_ws() {
    while (!at_end() && std::strchr(" \t\n\r\f\v", text_[pos_]) != nullptr && text_[pos_] != '\0')
      ++pos_;
  }

  bool consume(char c) {
    if (!at_end() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  std::string parse_string(const char* what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail(std::string("expected ") + what);
    ++pos_;
    std::string s;
    while (!at_end() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') {
        ++pos_;  // numpy's descrs never need escapes; keep the escaped character as is
        if (at_end()) break;
      }
      s += text_[pos_++];
    }
    if (at_end()) fail("unterminated string");
    ++pos_;
    return s;
  }

  std::string parse_descr() {
    const char c = peek();
    if (c == '\'' || c == '"') return parse_string("a dtype string");
    if (c == '[' || c == '(') {
      // A list of fields: a structured dtype. Report it by its text.
      const std::size_t start = pos_;
      skip_balanced();
      throw InputError(path_, "structured dtypes are not supported")
          .key("descr")
          .expected("a plain numeric dtype such as '<f4'")
          .found(printable(text_.substr(start, pos_ - start)));
    }
    fail("expected a dtype string for 'descr'");
  }

  // Skips a bracketed value, strings inside it included.
  void skip_balanced() {
    int depth = 0;
    while (!at_end()) {
      const char c = text_[pos_];
      if (c == '\'' || c == '"') {
        parse_string("a string");
        continue;
      }
      ++pos_;
      if (c == '[' || c == '(') ++depth;
      if ((c == ']' || c == ')') && --depth == 0) return;
    }
    fail("unbalanced brackets in 'descr'");
  }

  bool parse_bool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("'fortran_order' must be True or False");
  }

  std::int64_t parse_dim() {
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++pos_;
      skip_ws();
    }
    if (peek() < '0' || peek() > '9') fail("expected an integer dimension in 'shape'");
    std::int64_t v = 0;
    bool overflow = false;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = text_[pos_++] - '0';
      if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) overflow = true;
      if (!overflow) v = v * 10 + digit;
    }
    if (allow_long_suffix_ && (peek() == 'L' || peek() == 'l')) ++pos_;
    if (negative && v != 0) fail("negative dimension in 'shape'");
    if (overflow) fail("dimension in 'shape' does not fit in 64 bits");
    return v;
  }

  std::vector<std::int64_t> parse_shape() {
    if (!consume('(')) fail("'shape' must be a tuple such as (3, 4), (5,) or ()");
    std::vector<std::int64_t> shape;
    skip_ws();
    bool trailing_comma = false;
    while (!consume(')')) {
      if (!shape.empty() && !trailing_comma) fail("expected ',' or ')' in 'shape'");
      shape.push_back(parse_dim());
      if (shape.size() > kMaxDims) fail("'shape' has more than 32 dimensions");
      skip_ws();
      trailing_comma = consume(',');
      skip_ws();
    }
    // "(5)" is the integer 5 in Python, not a tuple; numpy refuses it, so do we.
    if (shape.size() == 1 && !trailing_comma) fail("'shape' (n) is not a tuple; expected (n,)");
    return shape;
  }

  const std::string& path_;
  std::string_view text_;
  bool allow_long_suffix_;
  std::size_t pos_ = 0;
};

ElementType element_type(const std::string& path, const std::string& descr) {
  auto unsupported = [&](const std::string& why) {
    return InputError(path, why)
        .key("descr")
        .expected("one of |b1 |u1 |i1 <i2 <i4 <i8 <u2 <u4 <u8 <f2 <f4 <f8 (< or >)")
        .found("'" + printable(descr) + "'");
  };
  std::size_t i = 0;
  char order = '=';
  if (!descr.empty() && std::strchr("<>|=", descr[0]) != nullptr && descr[0] != '\0')
    order = descr[i++];
  if (i >= descr.size()) throw unsupported("unsupported dtype");
  const char kind = descr[i++];
  switch (kind) {
    case 'c':
      throw unsupported("complex dtypes are not supported");
    case 'U':
    case 'S':
    case 'a':
      throw unsupported("string dtypes are not supported");
    case 'M':
    case 'm':
      throw unsupported("datetime dtypes are not supported");
    case 'O':
      throw unsupported("object arrays (pickled Python objects) are not supported");
    case 'V':
      throw unsupported("void (raw bytes) dtypes are not supported");
    default:
      break;
  }
  const std::string size_text = descr.substr(i);
  if (size_text.empty() || size_text.size() > 2 ||
      size_text.find_first_not_of("0123456789") != std::string::npos) {
    throw unsupported("unsupported dtype");
  }
  const std::size_t size = static_cast<std::size_t>(std::stoi(size_text));
  struct Known {
    char kind;
    std::size_t size;
    DType dtype;
    Widen widen;
  };
  static constexpr Known kKnown[] = {
      {'b', 1, DType::kBool, Widen::kNone},      {'u', 1, DType::kUInt8, Widen::kNone},
      {'i', 1, DType::kInt8, Widen::kNone},      {'i', 2, DType::kInt16, Widen::kNone},
      {'i', 4, DType::kInt32, Widen::kNone},     {'i', 8, DType::kInt64, Widen::kNone},
      {'f', 2, DType::kFloat16, Widen::kNone},   {'f', 4, DType::kFloat32, Widen::kNone},
      {'f', 8, DType::kFloat64, Widen::kNone},   {'u', 2, DType::kInt32, Widen::kU16ToI32},
      {'u', 4, DType::kInt64, Widen::kU32ToI64}, {'u', 8, DType::kInt64, Widen::kU64ToI64},
  };
  const Known* known = nullptr;
  for (const Known& k : kKnown) {
    if (k.kind == kind && k.size == size) known = &k;
  }
  if (known == nullptr) {
    throw unsupported(kind == 'f' ? "unsupported floating-point width" : "unsupported dtype");
  }
  // '|' ("not applicable") and '=' mean native order; numpy only writes '|' for 1-byte types.
  const bool file_little = order == '<' || ((order == '|' || order == '=') && kHostLittleEndian);
  const bool swap = size > 1 && file_little != kHostLittleEndian;
  return {known->dtype, size, swap, known->widen};
}

template <typename U>
U load_unsigned(const std::byte* p, bool swap) {
  U v;
  std::memcpy(&v, p, sizeof(U));
  if (!swap) return v;
  if constexpr (sizeof(U) == 2) return __builtin_bswap16(v);
  if constexpr (sizeof(U) == 4) return __builtin_bswap32(v);
  if constexpr (sizeof(U) == 8) return __builtin_bswap64(v);
  return v;
}

void swap_in_place(std::byte* data, std::size_t count, std::size_t size) {
  for (std::size_t i = 0; i < count; ++i) {
    std::byte* p = data + i * size;
    if (size == 2) {
      const auto v = load_unsigned<std::uint16_t>(p, true);
      std::memcpy(p, &v, 2);
    } else if (size == 4) {
      const auto v = load_unsigned<std::uint32_t>(p, true);
      std::memcpy(p, &v, 4);
    } else if (size == 8) {
      const auto v = load_unsigned<std::uint64_t>(p, true);
      std::memcpy(p, &v, 8);
    }
  }
}

// Converts `count` file elements at `src` into the NdArray element type; the linear order is
// kept (it is still Fortran order for a Fortran-order file).
NdArray convert_elements(const std::string& path, const ElementType& et,
                         const std::vector<std::int64_t>& shape, const std::byte* src,
                         std::size_t count) {
  NdArray out = NdArray::allocate(et.dtype, shape);
  std::byte* dst = out.mutable_data();
  switch (et.widen) {
    case Widen::kNone:
      if (count > 0) std::memcpy(dst, src, count * et.file_size);
      if (et.swap) swap_in_place(dst, count, et.file_size);
      break;
    case Widen::kU16ToI32: {
      auto* d = reinterpret_cast<std::int32_t*>(dst);
      for (std::size_t i = 0; i < count; ++i)
        d[i] = load_unsigned<std::uint16_t>(src + 2 * i, et.swap);
      break;
    }
    case Widen::kU32ToI64: {
      auto* d = reinterpret_cast<std::int64_t*>(dst);
      for (std::size_t i = 0; i < count; ++i)
        d[i] = load_unsigned<std::uint32_t>(src + 4 * i, et.swap);
      break;
    }
    case Widen::kU64ToI64: {
      auto* d = reinterpret_cast<std::int64_t*>(dst);
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t v = load_unsigned<std::uint64_t>(src + 8 * i, et.swap);
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          throw InputError(path, "uint64 value too large for int64")
              .key("element " + std::to_string(i) + " in file order")
              .expected("values up to 9223372036854775807")
              .found(std::to_string(v));
        }
        d[i] = static_cast<std::int64_t>(v);
      }
      break;
    }
  }
  return out;
}

// `linear` holds the elements of an array of shape `shape` in Fortran (column-major) order;
// returns the same array in C (row-major) order.
NdArray fortran_to_c_order(const NdArray& linear, const std::vector<std::int64_t>& shape) {
  const std::size_t k = shape.size();
  const std::int64_t n = checked_numel(shape);
  std::size_t non_trivial = 0;
  for (std::int64_t d : shape) non_trivial += d > 1 ? 1 : 0;
  // With at most one dim above 1 the two orders coincide.
  if (n == 0 || non_trivial <= 1) return linear.reshaped(shape);
  if (k == 2) return linear.reshaped({shape[1], shape[0]}).transposed2d();

  NdArray out = NdArray::allocate(linear.dtype(), shape);
  const std::size_t es = dtype_size(linear.dtype());
  const std::byte* src = linear.data();
  std::byte* dst = out.mutable_data();
  // Element (i0, ..., i{k-1}) is at sum_j i_j * fstride[j] in the Fortran-ordered source.
  std::vector<std::int64_t> fstride(k, 1), idx(k, 0);
  for (std::size_t j = 1; j < k; ++j) fstride[j] = fstride[j - 1] * shape[j - 1];
  const std::int64_t inner = shape[k - 1], inner_stride = fstride[k - 1];
  std::int64_t s = 0;  // source element of idx
  for (std::int64_t o = 0; o < n; o += inner) {
    for (std::int64_t c = 0; c < inner; ++c)
      std::memcpy(dst + static_cast<std::size_t>(o + c) * es,
                  src + static_cast<std::size_t>(s + c * inner_stride) * es, es);
    for (std::size_t j = k - 1; j-- > 0;) {  // odometer over all dims but the last
      if (++idx[j] < shape[j]) {
        s += fstride[j];
        break;
      }
      s -= (shape[j] - 1) * fstride[j];
      idx[j] = 0;
    }
  }
  return out;
}

std::uint32_t read_le(const std::byte* p, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

std::string descr_of(const std::string& path, DType dtype) {
  const char order = kHostLittleEndian ? '<' : '>';
  switch (dtype) {
    case DType::kBool:
      return "|b1";
    case DType::kUInt8:
      return "|u1";
    case DType::kInt8:
      return "|i1";
    case DType::kInt16:
      return std::string(1, order) + "i2";
    case DType::kInt32:
      return std::string(1, order) + "i4";
    case DType::kInt64:
      return std::string(1, order) + "i8";
    case DType::kFloat16:
      return std::string(1, order) + "f2";
    case DType::kFloat32:
      return std::string(1, order) + "f4";
    case DType::kFloat64:
      return std::string(1, order) + "f8";
    case DType::kBFloat16:
      break;
  }
  throw InputError(path, "bfloat16 has no NumPy dtype; convert the array to float32 first");
}

// The header numpy.save writes for this array: magic, version 1.0, length, dict, padding.
std::string npy_header(const std::string& path, const NdArray& array) {
  if (array.shape().size() > kMaxDims) {
    throw InputError(path, "numpy cannot load arrays with more than 32 dimensions")
        .found(std::to_string(array.shape().size()) + " dimensions");
  }
  // Same text as numpy: keys sorted, repr() of each value, ", " after each, Python tuple repr.
  std::string dict =
      "{'descr': '" + descr_of(path, array.dtype()) + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < array.shape().size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(array.shape()[i]);
  }
  if (array.shape().size() == 1) dict += ",";
  dict += "), }";
  if (!array.shape().empty()) {
    const std::size_t digits = std::to_string(array.shape()[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  // Preamble is magic (6) + version (2) + uint16 length (2); the dict is followed by spaces
  // and '\n' so that the data starts on a 64-byte boundary (numpy adds a full 64 when the
  // unpadded header already ends on one). With <= 32 dims the dict stays far below 64 KiB,
  // so version 1.0 always suffices, as numpy would also choose.
  const std::size_t hlen = dict.size() + 1;
  const std::size_t padlen = kArrayAlign - ((kMagicLen + 2 + 2 + hlen) % kArrayAlign);
  const std::size_t header_len = hlen + padlen;
  MD_ASSERT(header_len <= 0xffff);
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header_len & 0xff);
  out += static_cast<char>(header_len >> 8);
  out += dict;
  out.append(padlen, ' ');
  out += '\n';
  return out;
}

}  // namespace

NdArray parse_npy(std::shared_ptr<const MappedFile> file) {
  const std::string& path = file->path();
  const std::byte* bytes = file->data();
  const std::size_t size = file->size();
  if (size == 0) throw InputError(path, "empty file; expected a NumPy .npy file");
  if (size < kMagicLen || std::memcmp(bytes, kMagic, kMagicLen) != 0) {
    const std::string head(reinterpret_cast<const char*>(bytes), size < 8 ? size : 8);
    if (head.compare(0, 4, "PK\x03\x04") == 0) {
      throw InputError(path, "this is a zip archive (.npz or torch.save), not a .npy file");
    }
    throw InputError(path, "not a NumPy .npy file (bad magic)")
        .expected("'\\x93NUMPY'")
        .found("'" + printable(head) + "'");
  }
  if (size < kMagicLen + 2) throw InputError(path, "truncated .npy header (no version)");
  const int major = std::to_integer<int>(bytes[6]);
  const int minor = std::to_integer<int>(bytes[7]);
  if (minor != 0 || major < 1 || major > 3) {
    throw InputError(path, "unsupported .npy format version")
        .expected("1.0, 2.0 or 3.0")
        .found(std::to_string(major) + "." + std::to_string(minor));
  }
  // Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one (3.0: UTF-8 text).
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = kMagicLen + 2 + len_bytes;
  if (size < preamble) throw InputError(path, "truncated .npy header (no header length)");
  const std::size_t header_len = read_le(bytes + kMagicLen + 2, len_bytes);
  if (header_len > size - preamble) {
    throw InputError(path, "truncated .npy header: header length runs past the end of the file")
        .expected(std::to_string(preamble + header_len) + " bytes or more")
        .found(std::to_string(size) + " bytes");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes + preamble), header_len);
  const Header h = HeaderParser(path, text, major < 3).parse();
  const ElementType et = element_type(path, h.descr);

  const std::int64_t numel = checked_numel(h.shape);
  if (numel < 0 ||
      static_cast<std::uint64_t>(numel) > std::numeric_limits<std::size_t>::max() / et.file_size) {
    throw InputError(path, "array size overflows").key("shape").found(shape_to_string(h.shape));
  }
  const std::size_t count = static_cast<std::size_t>(numel);
  const std::size_t data_bytes = count * et.file_size;
  const std::size_t offset = preamble + header_len;
  if (data_bytes > size - offset) {
    throw InputError(path, "truncated .npy data")
        .expected(std::to_string(data_bytes) + " data bytes for " + shape_to_string(h.shape) + " " +
                  h.descr)
        .found(std::to_string(size - offset) + " bytes");
  }
  const std::byte* data = bytes + offset;

  const bool aligned = reinterpret_cast<std::uintptr_t>(data) % et.file_size == 0;
  const bool multi_dim_fortran = h.fortran_order && h.shape.size() > 1;
  if (et.widen == Widen::kNone && !et.swap && !multi_dim_fortran && aligned) {
    return NdArray(et.dtype, h.shape, std::shared_ptr<const void>(file), data);
  }
  NdArray linear = convert_elements(path, et, h.shape, data, count);
  return multi_dim_fortran ? fortran_to_c_order(linear, h.shape) : linear;
}

NdArray read_npy(const std::string& path) {
  return parse_npy(MappedFile::open(path));
}

void write_npy(const std::string& path, const NdArray& array) {
  const std::string header = npy_header(path, array);

  write_file_atomically(path, {{header.data(), header.size()}, {array.data(), array.nbytes()}});
}

}  // namespace modeldiff::core
