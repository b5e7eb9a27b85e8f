// Read-only access to a whole file: memory-mapped when possible (large score matrices are
// not copied into RAM up front), read into a buffer otherwise. Errors name the file.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace modeldiff::core {

class MappedFile {
 public:
  // Throws InputError when the file cannot be opened or read.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // Wraps bytes already in memory (used by fuzzers and tests); `name` appears in errors.
  static std::shared_ptr<const MappedFile> from_bytes(std::string name, const void* data,
                                                      std::size_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when mmap()ed
  std::unique_ptr<std::byte[]> buffer_;
};

// Reads a small text file (JSON headers, lists of indices) whole; throws InputError.
std::string read_text_file(const std::string& path);

}  // namespace modeldiff::core
