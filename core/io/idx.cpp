#include "core/io/idx.h"

#if MODELDIFF_HAVE_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/base/error.h"
#include "core/base/mapped_file.h"

namespace modeldiff::core {
namespace {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#if MODELDIFF_HAVE_ZLIB
// Deflate cannot expand beyond 1032:1 (a 258-byte match coded in 2 bits; see the zlib FAQ), so a
// header declaring more than 1032 times the compressed size is a lie we can refuse up front.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
constexpr std::size_t kGrowStep = std::size_t{1} << 20;
#endif
// Far above any IDX data set in use (EMNIST, the largest, is under 1 GB); stops absurd requests.
constexpr std::uint64_t kMaxIdxBytes = std::uint64_t{16} << 30;

struct Header {
  DType dtype;
  std::vector<std::int64_t> shape;
  std::size_t header_bytes;  // 4 + 4 * ndims
  std::size_t data_bytes;
};

std::string hex_byte(unsigned v) {
  static const char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[(v >> 4) & 15] + kHex[v & 15];
}

std::uint32_t be32(const std::byte* p) {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) |
         (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}

// Checks the 4 magic bytes; returns the element type and sets `ndims`.
DType decode_magic(const std::string& name, const std::byte* m, std::size_t* ndims) {
  if (m[0] != std::byte{0} || m[1] != std::byte{0}) {
    throw InputError(name, "not an IDX file (the first two bytes must be zero)")
        .found(hex_byte(std::to_integer<unsigned>(m[0])) + " " +
               hex_byte(std::to_integer<unsigned>(m[1])));
  }
  const unsigned code = std::to_integer<unsigned>(m[2]);
  DType dtype;
  switch (code) {
    case 0x08:
      dtype = DType::kUInt8;
      break;
    case 0x09:
      dtype = DType::kInt8;
      break;
    case 0x0B:
      dtype = DType::kInt16;
      break;
    case 0x0C:
      dtype = DType::kInt32;
      break;
    case 0x0D:
      dtype = DType::kFloat32;
      break;
    case 0x0E:
      dtype = DType::kFloat64;
      break;
    default:
      throw InputError(name, "unknown IDX element type")
          .expected("0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e")
          .found(hex_byte(code));
  }
  *ndims = std::to_integer<std::size_t>(m[3]);
  if (*ndims == 0) throw InputError(name, "IDX header declares 0 dimensions");
  return dtype;
}

// `dims` holds 4 * ndims bytes.
Header decode_dims(const std::string& name, DType dtype, std::size_t ndims, const std::byte* dims) {
  Header h{dtype, {}, 4 + 4 * ndims, 0};
  for (std::size_t i = 0; i < ndims; ++i) h.shape.push_back(be32(dims + 4 * i));
  const std::int64_t numel = checked_numel(h.shape);
  if (numel < 0 || static_cast<std::uint64_t>(numel) > kMaxIdxBytes / dtype_size(dtype)) {
    throw InputError(name, "IDX data too large")
        .expected("at most " + std::to_string(kMaxIdxBytes) + " bytes")
        .found(shape_to_string(h.shape) + " " + dtype_name(dtype));
  }
  h.data_bytes = static_cast<std::size_t>(numel) * dtype_size(dtype);
  return h;
}

// Converts big-endian elements to the host's order.
void to_host_order(std::byte* data, std::size_t bytes, std::size_t elem) {
  if (!kHostLittleEndian || elem == 1) return;
  for (std::size_t i = 0; i + elem <= bytes; i += elem) std::reverse(data + i, data + i + elem);
}

#if MODELDIFF_HAVE_ZLIB
// Inflates a gzip file (one or more members, as gzip(1) allows) on demand.
class GzipReader {
 public:
  GzipReader(const std::string& name, const std::byte* data, std::size_t size)
      : name_(name), data_(data), size_(size) {
    std::memset(&zs_, 0, sizeof(zs_));
    // 15 + 32: maximum window, detect the gzip header (and check its CRC and length).
    if (inflateInit2(&zs_, 15 + 32) != Z_OK) throw std::bad_alloc();
  }
  ~GzipReader() { inflateEnd(&zs_); }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;

  // Fills up to `n` bytes at `out`; returns fewer only when the gzip data has ended.
  std::size_t read(std::byte* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !finished_) {
      if (zs_.avail_in == 0) {
        if (in_pos_ == size_) {
          throw InputError(name_, "truncated gzip data (the compressed stream ends early)");
        }
        const std::size_t chunk = std::min<std::size_t>(size_ - in_pos_, UINT_MAX);
        zs_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(data_ + in_pos_));
        zs_.avail_in = static_cast<uInt>(chunk);
        in_pos_ += chunk;
      }
      const std::size_t want = std::min<std::size_t>(n - done, UINT_MAX);
      zs_.next_out = reinterpret_cast<Bytef*>(out + done);
      zs_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      done += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        next_member();
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        throw InputError(name_, std::string("corrupt gzip data: ") +
                                    (zs_.msg != nullptr ? zs_.msg : "inflate failed"));
      }
    }
    return done;
  }

 private:
  // After a member's end: another member may follow; zero padding is ignored, as by gzip(1).
  void next_member() {
    const std::size_t rest = zs_.avail_in + (size_ - in_pos_);
    const std::byte* p = data_ + (size_ - rest);
    if (rest >= 2 && p[0] == std::byte{0x1f} && p[1] == std::byte{0x8b}) {
      if (inflateReset(&zs_) != Z_OK) throw std::bad_alloc();
      return;
    }
    if (std::all_of(p, p + rest, [](std::byte b) { return b == std::byte{0}; })) {
      finished_ = true;
      return;
    }
    throw InputError(name_, "unexpected bytes after the end of the gzip data")
        .found(std::to_string(rest) + " bytes");
  }

  const std::string& name_;
  const std::byte* data_;
  std::size_t size_;
  std::size_t in_pos_ = 0;  // input handed to zlib so far
  z_stream zs_;
  bool finished_ = false;
};

NdArray parse_gzip(const std::string& name, const std::byte* data, std::size_t size) {
  GzipReader gz(name, data, size);
  std::byte head[4 + 4 * 255];
  if (gz.read(head, 4) < 4) {
    throw InputError(name, "truncated IDX header (after decompression)");
  }
  std::size_t ndims = 0;
  const DType dtype = decode_magic(name, head, &ndims);
  if (gz.read(head + 4, 4 * ndims) < 4 * ndims) {
    throw InputError(name, "truncated IDX header (after decompression)")
        .expected(std::to_string(ndims) + " dims");
  }
  const Header h = decode_dims(name, dtype, ndims, head + 4);
  const std::uint64_t total = h.header_bytes + static_cast<std::uint64_t>(h.data_bytes);
  if (total / kMaxDeflateRatio > size) {
    throw InputError(name,
                     "truncated IDX data: the gzip file is too small to hold what the "
                     "header declares")
        .expected(std::to_string(h.data_bytes) + " data bytes for " + shape_to_string(h.shape))
        .found(std::to_string(size) + " compressed bytes");
  }
  // Grow as data arrives rather than trusting the header with one large allocation.
  auto buffer = std::make_shared<std::vector<std::byte>>();
  std::size_t got = 0;
  while (got < h.data_bytes) {
    buffer->resize(std::min(h.data_bytes, std::max(2 * got, kGrowStep)));
    const std::size_t want = buffer->size() - got;
    const std::size_t n = gz.read(buffer->data() + got, want);
    got += n;
    if (n < want) {
      throw InputError(name, "truncated IDX data")
          .expected(std::to_string(h.data_bytes) + " data bytes for " + shape_to_string(h.shape))
          .found(std::to_string(got) + " bytes after decompression");
    }
  }
  std::byte extra;
  if (gz.read(&extra, 1) != 0) {
    throw InputError(name, "the gzip data holds more bytes than the IDX header declares")
        .expected(std::to_string(h.data_bytes) + " data bytes for " + shape_to_string(h.shape));
  }
  to_host_order(buffer->data(), buffer->size(), dtype_size(dtype));
  const std::byte* p = buffer->data();
  return NdArray(dtype, h.shape, std::move(buffer), p);
}
#else
NdArray parse_gzip(const std::string& name, const std::byte*, std::size_t) {
  throw InputError(name,
                   "a gzipped IDX file, but this build of modeldiff has no gzip support (built "
                   "without zlib)")
      .expected("an uncompressed IDX file: gunzip it first");
}
#endif

// `owner`, when set, keeps `data` alive so that byte arrays can borrow it.
NdArray parse_idx(const std::string& name, const std::byte* data, std::size_t size,
                  std::shared_ptr<const void> owner) {
  if (size == 0) throw InputError(name, "empty file; expected an IDX file");
  if (size >= 2 && data[0] == std::byte{0x1f} && data[1] == std::byte{0x8b}) {
    return parse_gzip(name, data, size);
  }
  if (size < 4) throw InputError(name, "truncated IDX header");
  std::size_t ndims = 0;
  const DType dtype = decode_magic(name, data, &ndims);
  if (size < 4 + 4 * ndims) {
    throw InputError(name, "truncated IDX header")
        .expected(std::to_string(4 + 4 * ndims) + " header bytes for " + std::to_string(ndims) +
                  " dims")
        .found(std::to_string(size) + " bytes");
  }
  const Header h = decode_dims(name, dtype, ndims, data + 4);
  const std::size_t available = size - h.header_bytes;
  if (available < h.data_bytes) {
    throw InputError(name, "truncated IDX data")
        .expected(std::to_string(h.data_bytes) + " data bytes for " + shape_to_string(h.shape))
        .found(std::to_string(available) + " bytes");
  }
  if (available > h.data_bytes) {
    throw InputError(name, "the file holds more bytes than the IDX header declares")
        .expected(std::to_string(h.data_bytes) + " data bytes for " + shape_to_string(h.shape))
        .found(std::to_string(available) + " bytes");
  }
  const std::byte* src = data + h.header_bytes;
  if (dtype_size(dtype) == 1 && owner) return NdArray(dtype, h.shape, std::move(owner), src);
  NdArray out = NdArray::allocate(dtype, h.shape);
  if (h.data_bytes > 0) std::memcpy(out.mutable_data(), src, h.data_bytes);
  to_host_order(out.mutable_data(), h.data_bytes, dtype_size(dtype));
  return out;
}

}  // namespace

NdArray read_idx(const std::string& path) {
  const auto file = MappedFile::open(path);
  return parse_idx(path, file->data(), file->size(), file);
}

NdArray parse_idx_bytes(const std::string& name, const std::byte* data, std::size_t size) {
  return parse_idx(name, data, size, nullptr);
}

}  // namespace modeldiff::core
