#include "core/io/zip_reader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "core/base/error.h"

namespace modeldiff::core {
namespace {

// Record signatures and fixed sizes (PKWARE APPNOTE.TXT 6.3, sections 4.3.7 - 4.3.16).
constexpr std::uint32_t kLocalHeader = 0x04034b50;
constexpr std::uint32_t kCentralHeader = 0x02014b50;
constexpr std::uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr std::uint32_t kZip64End = 0x06064b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::size_t kLocalHeaderSize = 30;
constexpr std::size_t kCentralHeaderSize = 46;
constexpr std::size_t kEndSize = 22;
constexpr std::size_t kZip64EndSize = 56;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::uint16_t kZip64ExtraId = 0x0001;

std::uint64_t le(const std::byte* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}
std::uint16_t u16(const std::byte* p) {
  return static_cast<std::uint16_t>(le(p, 2));
}
std::uint32_t u32(const std::byte* p) {
  return static_cast<std::uint32_t>(le(p, 4));
}
std::uint64_t u64(const std::byte* p) {
  return le(p, 8);
}

// CRC-32 tables for slicing by 8 (reflected polynomial 0xEDB88320).
struct CrcTables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  CrcTables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::size_t s = 1; s < 8; ++s)
      for (std::size_t i = 0; i < 256; ++i)
        t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xffu];
  }
};

}  // namespace

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc) {
  static const CrcTables tables;
  const auto& t = tables.t;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (; size >= 8; p += 8, size -= 8) {
    const std::uint32_t lo = c ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 |
                                  std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; size > 0; ++p, --size) c = t[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return ~c;
}

ZipReader::ZipReader(std::string path, const std::byte* data, std::size_t size)
    : path_(std::move(path)), data_(data), size_(size) {
  const auto bad = [&](const std::string& problem) {
    return InputError(path_, "not a valid zip archive: " + problem);
  };
  if (size_ < kEndSize) throw bad("too short for an end of central directory record");
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes: the last
  // signature whose comment length reaches exactly the end of the file, or failing that any
  // whose comment fits (some writers leave bytes after the comment).
  std::size_t end = std::numeric_limits<std::size_t>::max(), loose = end;
  const std::size_t lowest = size_ - kEndSize > 65535 ? size_ - kEndSize - 65535 : 0;
  for (std::size_t pos = size_ - kEndSize + 1; pos-- > lowest;) {
    if (u32(data_ + pos) != kEndOfCentralDirectory) continue;
    const std::size_t tail = kEndSize + u16(data_ + pos + 20);
    if (pos + tail == size_) {
      end = pos;
      break;
    }
    if (pos + tail < size_ && loose == std::numeric_limits<std::size_t>::max()) loose = pos;
  }
  if (end == std::numeric_limits<std::size_t>::max()) end = loose;
  if (end == std::numeric_limits<std::size_t>::max())
    throw bad("no end of central directory record");

  const std::byte* e = data_ + end;
  std::uint64_t disk = u16(e + 4), cd_disk = u16(e + 6);
  std::uint64_t count_here = u16(e + 8), count = u16(e + 10);
  std::uint64_t cd_size = u32(e + 12), cd_offset = u32(e + 16);
  std::uint64_t cd_limit = end;  // the central directory ends before the end records
  // ZIP64: the locator sits right before the end record and points at the ZIP64 end record.
  if (end >= kZip64LocatorSize && u32(data_ + end - kZip64LocatorSize) == kZip64Locator) {
    const std::byte* loc = data_ + end - kZip64LocatorSize;
    const std::uint64_t z64 = u64(loc + 8);
    if (u32(loc + 16) > 1) throw bad("spans several disks");
    if (z64 > end - kZip64LocatorSize || end - kZip64LocatorSize - z64 < kZip64EndSize ||
        u32(data_ + z64) != kZip64End)
      throw bad("the ZIP64 end of central directory locator points at no ZIP64 end record");
    const std::byte* r = data_ + z64;
    disk = u32(r + 16);
    cd_disk = u32(r + 20);
    count_here = u64(r + 24);
    count = u64(r + 32);
    cd_size = u64(r + 40);
    cd_offset = u64(r + 48);
    cd_limit = z64;
  } else if (count == 0xffff || cd_size == 0xffffffffu || cd_offset == 0xffffffffu) {
    throw bad("ZIP64 sizes without a ZIP64 end of central directory locator");
  }
  if (disk != 0 || cd_disk != 0 || count_here != count) throw bad("spans several disks");
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
    throw InputError(path_, "not a valid zip archive: the central directory lies outside the file")
        .expected("at most " + std::to_string(cd_limit) + " bytes before the end records")
        .found(std::to_string(cd_size) + " bytes at offset " + std::to_string(cd_offset));
  if (count > cd_size / kCentralHeaderSize)
    throw bad("the central directory is too small for " + std::to_string(count) + " entries");

  entries_.reserve(static_cast<std::size_t>(count));
  const std::byte* p = data_ + cd_offset;
  const std::byte* const cd_end = p + cd_size;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (static_cast<std::size_t>(cd_end - p) < kCentralHeaderSize || u32(p) != kCentralHeader)
      throw bad("central directory entry " + std::to_string(i) + " is damaged");
    ZipEntry z;
    z.flags = u16(p + 8);
    z.method = u16(p + 10);
    z.crc32 = u32(p + 16);
    z.compressed_size = u32(p + 20);
    z.size = u32(p + 24);
    const std::size_t name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
    std::uint64_t disk_start = u16(p + 34);
    z.local_header_offset = u32(p + 42);
    if (static_cast<std::size_t>(cd_end - p) <
        kCentralHeaderSize + name_len + extra_len + comment_len)
      throw bad("central directory entry " + std::to_string(i) + " runs past the directory");
    z.name.assign(reinterpret_cast<const char*>(p + kCentralHeaderSize), name_len);
    // The ZIP64 extra field holds, in this order, exactly the fields whose 32-bit (16-bit for
    // the disk) value above is all ones.
    const std::byte* x = p + kCentralHeaderSize + name_len;
    const std::byte* const x_end = x + extra_len;
    while (x_end - x >= 4) {
      const std::uint16_t id = u16(x), len = u16(x + 2);
      if (x_end - x - 4 < len)
        throw InputError(path_, "not a valid zip archive: damaged extra field").key(z.name);
      if (id == kZip64ExtraId) {
        const std::byte* f = x + 4;
        const std::byte* const f_end = f + len;
        const auto take64 = [&](std::uint64_t* v) {
          if (*v != 0xffffffffu) return;
          if (f_end - f < 8)
            throw InputError(path_, "not a valid zip archive: short ZIP64 extra field").key(z.name);
          *v = u64(f);
          f += 8;
        };
        take64(&z.size);
        take64(&z.compressed_size);
        take64(&z.local_header_offset);
        if (disk_start == 0xffff && f_end - f >= 4) disk_start = u32(f);
      }
      x += 4 + len;
    }
    if (disk_start != 0) throw bad("spans several disks");
    entries_.push_back(std::move(z));
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

ZipBytes ZipReader::read(const ZipEntry& entry, bool verify_crc) const {
  const auto fail = [&](const std::string& problem) {
    return InputError(path_, problem).key(entry.name);
  };
  if (entry.flags & 1u) throw fail("encrypted zip entry");
  if (entry.method != 0) {
    throw fail(
        "compressed zip entry; this build of modeldiff reads only stored (uncompressed) "
        "entries, as torch.save writes them (it has no libzip)")
        .expected("method 0 (stored)")
        .found("method " + std::to_string(entry.method) + (entry.method == 8 ? " (deflate)" : ""));
  }
  if (entry.compressed_size != entry.size)
    throw fail("zip entry is stored but its compressed and uncompressed sizes differ")
        .found(std::to_string(entry.compressed_size) + " and " + std::to_string(entry.size));
  const std::uint64_t at = entry.local_header_offset;
  if (at > size_ || size_ - at < kLocalHeaderSize || u32(data_ + at) != kLocalHeader)
    throw fail("zip entry has no local header at offset " + std::to_string(at));
  const std::byte* h = data_ + at;
  const std::size_t name_len = u16(h + 26), extra_len = u16(h + 28);
  const std::uint64_t start = at + kLocalHeaderSize + name_len + extra_len;
  if (start > size_ || entry.size > size_ - start)
    throw fail("zip entry reaches past the end of the file")
        .expected(std::to_string(entry.size) + " bytes from offset " + std::to_string(start))
        .found("a file of " + std::to_string(size_) + " bytes");
  if (u16(h + 8) != entry.method || name_len != entry.name.size() ||
      std::memcmp(h + kLocalHeaderSize, entry.name.data(), name_len) != 0)
    throw fail("zip entry's local header does not match the central directory");
  const std::byte* bytes = data_ + start;
  if (verify_crc) {
    const std::uint32_t crc = crc32(bytes, static_cast<std::size_t>(entry.size));
    if (crc != entry.crc32) {
      char want[16], got[16];
      std::snprintf(want, sizeof want, "%08x", entry.crc32);
      std::snprintf(got, sizeof got, "%08x", crc);
      throw fail("corrupt zip entry: CRC-32 mismatch").expected(want).found(got);
    }
  }
  return {bytes, entry.size};
}

}  // namespace modeldiff::core
