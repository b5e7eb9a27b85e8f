#include "core/io/torch_archive.h"

#if MODELDIFF_HAVE_LIBZIP
#include <zip.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/base/error.h"
#include "core/io/pickle.h"
#include "core/io/zip_reader.h"

namespace modeldiff::core {

namespace {

using Kind = PickleValue::Kind;

// Limits against hostile archives, far above real checkpoints.
constexpr int kMaxDepth = 100;                                // nesting of dicts/lists
constexpr std::size_t kMaxVisits = std::size_t{1} << 20;      // values visited (shared ones count)
constexpr std::size_t kMaxTensors = std::size_t{1} << 20;     // tensors returned
constexpr std::size_t kMaxNameBytes = std::size_t{64} << 20;  // all names together
constexpr std::size_t kMaxNameLength = 4096;
// Tensors with overlapping strides (e.g. expand()) hold more elements than their storage; the
// bytes such tensors add when made contiguous are capped per file.
constexpr std::uint64_t kMaxExpansionBytes = std::uint64_t{256} << 20;
#if MODELDIFF_HAVE_LIBZIP
// Deflate cannot compress better than about 1032:1.
constexpr std::uint64_t kMaxDeflateRatio = 1100;
#endif

// The byte sequence torch.save's legacy format starts with: PROTO 2, LONG1 of 10 bytes holding
// the magic number 0x1950a86a20f9469cfc6c.
bool is_legacy_torch_file(const std::byte* data, std::size_t size) {
  static const unsigned char kMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return size >= 2 + sizeof kMagic && data[0] == std::byte{0x80} &&
         std::memcmp(data + 2, kMagic, sizeof kMagic) == 0;
}

#if MODELDIFF_HAVE_LIBZIP
struct ZipDeleter {
  void operator()(zip_t* z) const { zip_discard(z); }
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
#endif

struct Storage {
  std::shared_ptr<std::byte[]> bytes;
  std::uint64_t size = 0;
};

struct DTypeOfStorage {
  const char* name;
  DType dtype;
};
constexpr DTypeOfStorage kStorageTypes[] = {
    {"FloatStorage", DType::kFloat32}, {"DoubleStorage", DType::kFloat64},
    {"HalfStorage", DType::kFloat16},  {"BFloat16Storage", DType::kBFloat16},
    {"LongStorage", DType::kInt64},    {"IntStorage", DType::kInt32},
    {"ShortStorage", DType::kInt16},   {"CharStorage", DType::kInt8},
    {"ByteStorage", DType::kUInt8},    {"BoolStorage", DType::kBool},
};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

class TorchArchive {
 public:
  explicit TorchArchive(std::shared_ptr<const MappedFile> file)
      : file_(std::move(file)), path_(file_->path()) {}

  std::vector<NamedArray> read() {
    check_format();
    open_zip();
    find_entries();
    const std::string pkl_name = prefix_ + "data.pkl";
    const Storage pkl = read_entry(entries_.at(pkl_name), pkl_name);
    PickleValue root = parse(pkl, pkl_name);
    walk(root, 0);
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { throw InputError(path_, problem); }

  void check_format() const {
    const std::byte* d = file_->data();
    const std::size_t n = file_->size();
    if (is_legacy_torch_file(d, n)) {
      fail(
          "written by torch.save in the legacy (pre-1.6) format, which is not supported; "
          "re-save it with the default zip format: torch.save(torch.load(path), path)");
    }
    if (n < 4 || std::memcmp(d, "PK\x03\x04", 4) != 0) {
      throw InputError(path_, "not a torch.save file")
          .expected("a zip archive (starting with PK\\3\\4)")
          .found(n < 4 ? "a file of " + std::to_string(n) + " bytes" : "other bytes");
    }
  }

#if MODELDIFF_HAVE_LIBZIP
  void open_zip() {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(file_->data(), file_->size(), 0, &err);
    if (src == nullptr) {
      const std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      fail("cannot read the zip archive: " + msg);
    }
    zip_t* z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (z == nullptr) {
      zip_source_free(src);
      const std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      fail("not a valid torch.save zip archive: " + msg);
    }
    zip_error_fini(&err);
    zip_.reset(z);
  }

  // The names of the archive's entries, by index (null where libzip has none).
  std::vector<const char*> entry_names() const {
    std::vector<const char*> names;
    const zip_int64_t n = zip_get_num_entries(zip_.get(), 0);
    for (zip_int64_t i = 0; i < n; ++i)
      names.push_back(zip_get_name(zip_.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW));
    return names;
  }
#else
  // Without libzip: our own reader of the central directory (stored entries only, which is
  // what torch.save writes).
  void open_zip() {
    zip_ = std::make_unique<ZipReader>(path_, file_->data(), file_->size());
  }

  std::vector<const char*> entry_names() const {
    std::vector<const char*> names;
    for (const ZipEntry& e : zip_->entries()) names.push_back(e.name.c_str());
    return names;
  }
#endif

  // Finds `<prefix>/data.pkl` (the prefix is the archive's top folder, named after the file
  // torch.save wrote first) and indexes all entries by name.
  void find_entries() {
    const std::vector<const char*> names = entry_names();
    std::string pkl;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == nullptr) continue;
      const std::string s(names[i]);
      entries_.emplace(s, static_cast<std::uint64_t>(i));  // first of duplicates wins
      const auto slash = s.find('/');
      const bool top_level = slash == std::string::npos || s.find('/', slash + 1) == s.npos;
      if (pkl.empty() && top_level &&
          (s == "data.pkl" || (slash != s.npos && s.compare(slash, s.npos, "/data.pkl") == 0))) {
        pkl = s;
      }
    }
    if (pkl.empty()) {
      throw InputError(path_, "not a torch.save archive: no data.pkl entry")
          .expected("<name>/data.pkl inside the zip");
    }
    prefix_ = pkl.substr(0, pkl.size() - std::strlen("data.pkl"));
    if (entries_.count(prefix_ + "constants.pkl") != 0 ||
        std::any_of(entries_.begin(), entries_.end(),
                    [&](const auto& e) { return starts_with(e.first, prefix_ + "code/"); })) {
      fail(
          "a TorchScript archive (torch.jit.save), not a torch.save checkpoint; pass it as "
          "--model");
    }
    const auto order = entries_.find(prefix_ + "byteorder");
    if (order != entries_.end()) {
      const Storage s = read_entry(order->second, order->first, 16);
      const std::string text(reinterpret_cast<const char*>(s.bytes.get()), s.size);
      if (text != "little") {
        throw InputError(path_, "unsupported byte order")
            .key(order->first)
            .expected("little")
            .found(text);
      }
    }
  }

  // The uncompressed bytes of entry `index`; refuses entries larger than `max_size` and sizes
  // the compressed data cannot hold.
#if MODELDIFF_HAVE_LIBZIP
  Storage read_entry(std::uint64_t index, const std::string& name,
                     std::uint64_t max_size = std::numeric_limits<std::uint64_t>::max()) const {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip_.get(), index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_SIZE) || !(st.valid & ZIP_STAT_COMP_METHOD)) {
      throw InputError(path_, "cannot read zip entry").key(name);
    }
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
      throw InputError(path_, "unsupported zip compression method")
          .key(name)
          .expected("stored or deflate")
          .found("method " + std::to_string(st.comp_method));
    }
    const std::uint64_t limit =
        st.comp_method == ZIP_CM_STORE ? st.comp_size : st.comp_size * kMaxDeflateRatio + 64;
    if (st.comp_size > file_->size() || st.size > limit || st.size > max_size) {
      throw InputError(path_, "zip entry has an impossible size")
          .key(name)
          .found(std::to_string(st.size) + " bytes from " + std::to_string(st.comp_size) +
                 " compressed");
    }
    std::unique_ptr<zip_file_t, ZipDeleter> f(zip_fopen_index(zip_.get(), index, 0));
    if (!f) {
      throw InputError(path_, std::string("cannot open zip entry: ") + zip_strerror(zip_.get()))
          .key(name);
    }
    Storage s;
    s.size = st.size;
    s.bytes = std::shared_ptr<std::byte[]>(new std::byte[st.size > 0 ? st.size : 1]);
    std::uint64_t done = 0;
    while (done < st.size) {
      const zip_int64_t got = zip_fread(f.get(), s.bytes.get() + done, st.size - done);
      if (got < 0) {
        throw InputError(path_, std::string("corrupt zip entry: ") + zip_file_strerror(f.get()))
            .key(name);
      }
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    if (done != st.size) {
      throw InputError(path_, "zip entry is truncated")
          .key(name)
          .expected(std::to_string(st.size) + " bytes")
          .found(std::to_string(done));
    }
    // libzip checks an entry's CRC-32 only when a read reaches the entry's end, which the loop
    // above stops short of: one more read, which must find nothing, makes it check.
    std::byte past;
    const zip_int64_t more = zip_fread(f.get(), &past, 1);
    if (more != 0) {
      throw InputError(path_, std::string("corrupt zip entry: ") +
                                  (more < 0 ? zip_file_strerror(f.get()) : "longer than its size"))
          .key(name);
    }
    return s;
  }
#else
  Storage read_entry(std::uint64_t index, const std::string& name,
                     std::uint64_t max_size = std::numeric_limits<std::uint64_t>::max()) const {
    const ZipEntry& entry = zip_->entries().at(static_cast<std::size_t>(index));
    if (entry.size > max_size) {
      throw InputError(path_, "zip entry has an impossible size")
          .key(name)
          .found(std::to_string(entry.size) + " bytes");
    }
    const ZipBytes bytes = zip_->read(entry);
    Storage s;
    s.size = bytes.size;
    s.bytes = std::shared_ptr<std::byte[]>(new std::byte[bytes.size > 0 ? bytes.size : 1]);
    if (bytes.size > 0)
      std::memcpy(s.bytes.get(), bytes.data, static_cast<std::size_t>(bytes.size));
    return s;
  }
#endif

  PickleValue parse(const Storage& pkl, const std::string& name) const {
    try {
      return parse_pickle(path_, pkl.bytes.get(), static_cast<std::size_t>(pkl.size));
    } catch (InputError& e) {
      throw e.key(name);
    }
  }

  // --- walking the object tree ---

  std::string current_name() const {
    std::string s;
    for (std::size_t k = 0; k < parts_.size(); ++k) {
      if (k) s += '.';
      s.append(parts_[k].data(), parts_[k].size());
    }
    return s;
  }

  [[noreturn]] void fail_at(const std::string& problem) const {
    std::string name = current_name();
    if (name.size() > 200) name = name.substr(0, 200) + "...";
    throw InputError(path_, problem).key(name.empty() ? "the top-level object" : name);
  }

  // Walks child `v` under key `part`; `int_slot` holds `part`'s text when it was a number.
  void walk_child(const PickleValue& v, std::string_view part, int depth) {
    parts_.push_back(part);
    walk(v, depth + 1);
    parts_.pop_back();
  }

  void walk_items(const PickleValue& v, int depth) {
    std::string& slot = number_slots_[static_cast<std::size_t>(depth)];
    for (std::size_t i = 0; i < v.item_count(); ++i) {
      slot = std::to_string(i);
      walk_child(v.item(i), slot, depth);
    }
  }

  void walk_pairs(const PickleValue& v, int depth) {
    std::string& slot = number_slots_[static_cast<std::size_t>(depth)];
    for (std::size_t i = 0; i < v.pair_count(); ++i) {
      const PickleValue key = v.pair_key(i);
      std::string_view part;
      switch (key.kind()) {
        case Kind::kString:
        case Kind::kBytes:
          part = key.as_string();
          break;
        case Kind::kInt:
          part = slot = std::to_string(key.as_int());
          break;
        case Kind::kBool:
          part = key.as_bool() ? "True" : "False";
          break;
        case Kind::kNone:
          part = "None";
          break;
        default:
          part = slot = std::to_string(i);
          break;  // e.g. tuple keys: named by position
      }
      walk_child(v.pair_value(i), part, depth);
    }
  }

  void walk(const PickleValue& v, int depth) {
    if (depth > kMaxDepth) fail_at("objects nested too deeply (or a recursive structure)");
    if (++visits_ > kMaxVisits) fail_at("too many objects in the pickle");
    switch (v.kind()) {
      case Kind::kDict:
        return walk_pairs(v, depth);
      case Kind::kList:
      case Kind::kTuple:
        return walk_items(v, depth);
      case Kind::kCall:
        break;
      default:
        return;  // scalars, strings, sets, globals: not tensors
    }
    if (is_tensor(v)) return emit(tensor(v));
    const PickleValue callable = v.callable();
    if (callable.is(Kind::kGlobal) && callable.global_module() == "torch._utils" &&
        starts_with(callable.global_name(), "_rebuild_")) {
      fail_at("unsupported kind of tensor (" + callable.global_name() +
              "): only dense CPU tensors of real dtypes can be read");
    }
    // LibTorch's torch::pickle_save wraps typed containers as restore_type_tag(obj, "Dict[...]"):
    // the contents are the first argument.
    if (v.is_call_to("torch.jit._pickle", "restore_type_tag")) {
      const PickleValue args = v.args();
      if (args.is(Kind::kTuple) && args.item_count() >= 1) return walk(args.item(0), depth + 1);
    }
    // OrderedDict([(key, value), ...]) form (the usual form is OrderedDict() + SETITEMS).
    if (v.is_call_to("collections", "OrderedDict")) {
      const PickleValue args = v.args();
      if (args.is(Kind::kTuple) && args.item_count() == 1 &&
          (args.item(0).is(Kind::kList) || args.item(0).is(Kind::kTuple))) {
        walk_pair_list(args.item(0), depth);
      }
    }
    // Dict and list subclasses (OrderedDict, defaultdict, ...) carry their contents as
    // SETITEMS / APPENDS on the object; other objects' state is not looked into.
    walk_pairs(v, depth);
    walk_items(v, depth);
  }

  void walk_pair_list(const PickleValue& list, int depth) {
    std::string& slot = number_slots_[static_cast<std::size_t>(depth)];
    for (std::size_t i = 0; i < list.item_count(); ++i) {
      const PickleValue pair = list.item(i);
      if (!pair.is(Kind::kTuple) && !pair.is(Kind::kList)) continue;
      if (pair.item_count() != 2) continue;
      const PickleValue key = pair.item(0);
      std::string_view part;
      if (key.is(Kind::kString)) {
        part = key.as_string();
      } else if (key.is(Kind::kInt)) {
        part = slot = std::to_string(key.as_int());
      } else {
        part = slot = std::to_string(i);
      }
      walk_child(pair.item(1), part, depth);
    }
  }

  void emit(NdArray array) {
    std::string name = current_name();
    if (name.size() > kMaxNameLength) fail_at("tensor name too long");
    name_bytes_ += name.size();
    if (out_.size() >= kMaxTensors || name_bytes_ > kMaxNameBytes) {
      fail_at("too many tensors in the archive");
    }
    out_.push_back({std::move(name), std::move(array)});
  }

  static bool is_tensor_rebuild(const PickleValue& v) {
    return v.is_call_to("torch._utils", "_rebuild_tensor_v2") ||
           v.is_call_to("torch._utils", "_rebuild_tensor");
  }
  static bool is_parameter_rebuild(const PickleValue& v) {
    return v.is_call_to("torch._utils", "_rebuild_parameter") ||
           v.is_call_to("torch._utils", "_rebuild_parameter_with_state");
  }
  static bool is_tensor(const PickleValue& v) {
    return is_tensor_rebuild(v) || is_parameter_rebuild(v);
  }

  // --- tensors ---

  std::int64_t int_arg(const PickleValue& v, const char* what) const {
    if (!v.is(Kind::kInt)) {
      throw InputError(path_, std::string("malformed tensor: ") + what + " is not an integer")
          .key(current_name())
          .found(v.describe());
    }
    return v.as_int();
  }

  std::vector<std::int64_t> int_tuple(const PickleValue& v, const char* what) const {
    if (!v.is(Kind::kTuple) && !v.is(Kind::kList)) {
      throw InputError(path_, std::string("malformed tensor: ") + what + " is not a tuple")
          .key(current_name())
          .found(v.describe());
    }
    if (v.item_count() > 64) fail_at(std::string("malformed tensor: too many dims in ") + what);
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < v.item_count(); ++i) {
      const std::int64_t x = int_arg(v.item(i), what);
      if (x < 0) fail_at(std::string("malformed tensor: negative value in ") + what);
      out.push_back(x);
    }
    return out;
  }

  NdArray tensor(const PickleValue& v) {
    const auto cached = tensors_.find(v.node_id());
    if (cached != tensors_.end()) return cached->second;
    NdArray t;
    if (is_parameter_rebuild(v)) {
      // _rebuild_parameter(data, requires_grad, backward_hooks[, state])
      const PickleValue args = v.args();
      if (!args.is(Kind::kTuple) || args.item_count() < 1 || !is_tensor_rebuild(args.item(0))) {
        fail_at("malformed parameter: its first argument is not a tensor");
      }
      t = tensor(args.item(0));
    } else {
      t = rebuild_tensor(v);
    }
    tensors_.emplace(v.node_id(), t);
    return t;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
  // [, metadata]) and the older _rebuild_tensor(storage, storage_offset, size, stride).
  NdArray rebuild_tensor(const PickleValue& v) {
    const PickleValue args = v.args();
    if (!args.is(Kind::kTuple) || args.item_count() < 4) {
      throw InputError(path_, "malformed tensor: expected (storage, offset, size, stride, ...)")
          .key(current_name())
          .found(args.describe());
    }
    DType dtype;
    std::uint64_t storage_numel;
    const Storage& storage = load_storage(args.item(0), &dtype, &storage_numel);
    const std::int64_t offset = int_arg(args.item(1), "storage offset");
    if (offset < 0) fail_at("malformed tensor: negative storage offset");
    std::vector<std::int64_t> shape = int_tuple(args.item(2), "size");
    std::vector<std::int64_t> stride = int_tuple(args.item(3), "stride");
    if (shape.size() != stride.size()) {
      throw InputError(path_, "malformed tensor: size and stride differ in length")
          .key(current_name())
          .found(std::to_string(shape.size()) + " and " + std::to_string(stride.size()));
    }
    const std::int64_t numel = checked_numel(shape);
    if (numel < 0) fail_at("malformed tensor: size overflows");
    const std::size_t item = dtype_size(dtype);

    // Every element must lie inside the storage: offset + sum (size_i - 1) * stride_i < numel.
    if (numel > 0) {
      std::uint64_t last = static_cast<std::uint64_t>(offset);
      bool overflow = false;
      for (std::size_t d = 0; d < shape.size(); ++d) {
        const auto span = static_cast<std::uint64_t>(shape[d] - 1);
        const auto s = static_cast<std::uint64_t>(stride[d]);
        if (s != 0 && span > (std::numeric_limits<std::uint64_t>::max() - last) / s) {
          overflow = true;
          break;
        }
        last += span * s;
      }
      if (overflow || last >= storage_numel) {
        throw InputError(path_, "tensor reaches outside its storage")
            .key(current_name())
            .expected("elements below " + std::to_string(storage_numel))
            .found(overflow
                       ? std::string("an overflowing extent")
                       : "element " + std::to_string(last) + " (offset " + std::to_string(offset) +
                             ", size " + shape_to_string(shape) + ")");
      }
    }
    if (static_cast<std::uint64_t>(numel) > storage_numel) {
      // Only overlapping strides give more elements than the storage holds.
      if (static_cast<std::uint64_t>(numel) > kMaxExpansionBytes / item ||
          (expansion_bytes_ += static_cast<std::uint64_t>(numel) * item) > kMaxExpansionBytes) {
        fail_at("tensors with overlapping strides (expand) would need over 256 MiB");
      }
    }
    if (numel == 0) return NdArray(dtype, std::move(shape), storage.bytes, storage.bytes.get());

    // Strides of dims of size 1 never matter (and may be anything).
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) stride[d] = 0;
    }
    bool contiguous = true;
    std::int64_t expect = 1;
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (shape[d] != 1 && stride[d] != expect) contiguous = false;
      expect *= shape[d];
    }
    const std::byte* base = storage.bytes.get() + static_cast<std::size_t>(offset) * item;
    if (contiguous) return NdArray(dtype, std::move(shape), storage.bytes, base);

    NdArray out = NdArray::allocate(dtype, shape);
    std::byte* dst = out.mutable_data();
    // Odometer over all indices; the innermost dim is copied element by element.
    const std::size_t nd = shape.size();
    std::vector<std::int64_t> index(nd, 0);
    const std::int64_t inner = shape[nd - 1];
    const std::int64_t inner_stride = stride[nd - 1];
    std::int64_t src = 0;  // element offset from base of index[0..nd-2], 0
    for (std::int64_t done = 0; done < numel; done += inner) {
      for (std::int64_t k = 0; k < inner; ++k) {
        std::memcpy(dst, base + static_cast<std::size_t>(src + k * inner_stride) * item, item);
        dst += item;
      }
      for (std::size_t d = nd - 1; d-- > 0;) {
        src += stride[d];
        if (++index[d] < shape[d]) break;
        src -= stride[d] * shape[d];
        index[d] = 0;
      }
    }
    return out;
  }

  // The persistent id ('storage', storage_type, key, location, numel).
  const Storage& load_storage(const PickleValue& pid, DType* dtype, std::uint64_t* numel) {
    if (!pid.is(Kind::kPersistentId)) {
      throw InputError(path_, "malformed tensor: storage is not a persistent id")
          .key(current_name())
          .found(pid.describe());
    }
    const PickleValue id = pid.persistent_id();
    if (!id.is(Kind::kTuple) || id.item_count() != 5 || !id.item(0).is(Kind::kString) ||
        id.item(0).as_string() != "storage") {
      throw InputError(path_, "malformed storage reference")
          .key(current_name())
          .expected("('storage', type, key, location, numel)")
          .found(id.describe());
    }
    const PickleValue type = id.item(1);
    bool known = false;
    if (type.is(Kind::kGlobal) && type.global_module() == "torch") {
      for (const auto& st : kStorageTypes) {
        if (type.global_name() == st.name) {
          *dtype = st.dtype;
          known = true;
        }
      }
    }
    if (!known) {
      throw InputError(path_, "unsupported tensor dtype")
          .key(current_name())
          .expected("a float, integer or bool storage")
          .found(type.is(Kind::kGlobal) ? type.global_module() + "." + type.global_name()
                                        : type.describe());
    }
    const PickleValue key = id.item(2);
    std::string key_text;
    if (key.is(Kind::kString)) {
      key_text = key.as_string();
    } else if (key.is(Kind::kInt)) {
      key_text = std::to_string(key.as_int());
    } else {
      throw InputError(path_, "malformed storage reference: bad key")
          .key(current_name())
          .found(key.describe());
    }
    const std::int64_t n = int_arg(id.item(4), "storage size");
    const std::size_t item = dtype_size(*dtype);
    if (n < 0 || static_cast<std::uint64_t>(n) > std::numeric_limits<std::uint64_t>::max() / item) {
      fail_at("malformed storage reference: bad size " + std::to_string(n));
    }
    *numel = static_cast<std::uint64_t>(n);
    const std::uint64_t bytes = *numel * item;
    const std::string entry = prefix_ + "data/" + key_text;

    auto it = storages_.find(entry);
    if (it == storages_.end()) {
      const auto e = entries_.find(entry);
      if (e == entries_.end()) {
        throw InputError(path_, "storage missing from the archive")
            .key(current_name())
            .expected("zip entry " + entry);
      }
      Storage s = read_entry(e->second, entry);
      it = storages_.emplace(entry, std::move(s)).first;
    }
    if (it->second.size != bytes) {
      throw InputError(path_, "storage has the wrong size")
          .key(current_name())
          .expected(entry + " of " + std::to_string(*numel) + " x " + dtype_name(*dtype) + " = " +
                    std::to_string(bytes) + " bytes")
          .found(std::to_string(it->second.size) + " bytes");
    }
    return it->second;
  }

  std::shared_ptr<const MappedFile> file_;
  const std::string& path_;
#if MODELDIFF_HAVE_LIBZIP
  std::unique_ptr<zip_t, ZipDeleter> zip_;
#else
  std::unique_ptr<ZipReader> zip_;
#endif
  std::string prefix_;                            // "<top folder>/" or ""
  std::map<std::string, std::uint64_t> entries_;  // name -> index
  std::map<std::string, Storage> storages_;
  std::unordered_map<std::uint32_t, NdArray> tensors_;  // by pickle node: shared tensors
  std::vector<std::string_view> parts_;                 // the name of what walk() is at
  std::string number_slots_[kMaxDepth + 2];             // text of numeric keys, per depth
  std::size_t visits_ = 0;
  std::size_t name_bytes_ = 0;
  std::uint64_t expansion_bytes_ = 0;
  std::vector<NamedArray> out_;
};

}  // namespace

std::vector<NamedArray> parse_torch_archive(std::shared_ptr<const MappedFile> file) {
  MD_ASSERT(file != nullptr);
  TorchArchive archive(std::move(file));
  return archive.read();
}

std::vector<NamedArray> read_torch_file(const std::string& path) {
  return parse_torch_archive(MappedFile::open(path));
}

std::vector<NamedArray> select_state_dict(std::vector<NamedArray> all, std::string* chosen_prefix) {
  static const char* const kNestingKeys[] = {"state_dict", "model_state_dict", "model", "net",
                                             "module"};
  std::string chosen;
  for (const char* key : kNestingKeys) {
    const std::string dotted = std::string(key) + ".";
    if (std::any_of(all.begin(), all.end(),
                    [&](const NamedArray& a) { return starts_with(a.name, dotted); })) {
      chosen = key;
      break;
    }
  }
  std::vector<NamedArray> out;
  if (chosen.empty()) {
    out = std::move(all);
  } else {
    const std::string dotted = chosen + ".";
    for (NamedArray& a : all) {
      if (starts_with(a.name, dotted)) {
        out.push_back({a.name.substr(dotted.size()), std::move(a.array)});
      }
    }
  }
  for (NamedArray& a : out) {
    if (starts_with(a.name, "module.")) a.name.erase(0, std::strlen("module."));
  }
  if (chosen_prefix != nullptr) *chosen_prefix = chosen;
  return out;
}

}  // namespace modeldiff::core
