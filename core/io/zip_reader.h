// A reader of ZIP archives whose entries are stored uncompressed, such as the archives
// torch.save (PyTorch >= 1.6) writes, without any library.
//
// It reads the end of central directory record (and the ZIP64 end record and locator, written
// when an archive has more than 65,535 entries or sizes or offsets of 4 GiB and more), then
// the central directory, including the ZIP64 extra fields of entries; an entry's bytes are
// found through its local header and returned in place (no copy), with their CRC-32 checked.
// Deflated (or otherwise compressed) and encrypted entries are listed but refused on read;
// multi-disk archives are refused. Every size and offset is checked against the archive's
// bytes, so a damaged or hostile archive is an InputError naming the file (and the entry).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace modeldiff::core {

struct ZipEntry {
  std::string name;                       // as stored (bytes, no encoding conversion)
  std::uint16_t method = 0;               // 0 = stored, 8 = deflate, ...
  std::uint16_t flags = 0;                // general purpose bit flags (bit 0: encrypted)
  std::uint32_t crc32 = 0;                // of the uncompressed bytes
  std::uint64_t compressed_size = 0;      // bytes in the archive
  std::uint64_t size = 0;                 // uncompressed bytes
  std::uint64_t local_header_offset = 0;  // from the start of the archive
};

struct ZipBytes {
  const std::byte* data = nullptr;  // inside the archive's bytes
  std::uint64_t size = 0;
};

class ZipReader {
 public:
  // Parses the central directory of the `size` bytes at `data` (which must outlive the
  // reader); `path` names the archive in errors. Throws InputError when the bytes are not a
  // well-formed single-disk ZIP archive.
  ZipReader(std::string path, const std::byte* data, std::size_t size);

  // Every entry, in central directory order (duplicates of a name kept).
  const std::vector<ZipEntry>& entries() const { return entries_; }

  // The bytes of a stored entry. Throws InputError naming the file and the entry when the
  // entry is compressed or encrypted, its local header does not match the central directory,
  // its data reach outside the archive, or (with verify_crc) its CRC-32 is wrong.
  ZipBytes read(const ZipEntry& entry, bool verify_crc = true) const;

 private:
  std::string path_;
  const std::byte* data_;
  std::size_t size_;
  std::vector<ZipEntry> entries_;
};

// CRC-32 (ISO 3309, as ZIP and gzip use it) of `size` bytes, continuing from `crc` (0 to start).
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace modeldiff::core
