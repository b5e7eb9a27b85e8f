// Writing a file so that readers see either the old file or the complete new one: the bytes
// go to a temporary file beside the target (same file system), are flushed to disk, and the
// temporary file is renamed over the target.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace modeldiff::core {

struct ByteRange {
  const void* data;
  std::size_t size;
};

// Writes the ranges, in order, as the content of `path`. The temporary file is created with
// mode 0666 (the umask applies as for any ordinary save) and removed on failure. Throws
// InputError naming `path` and the system's reason.
void write_file_atomically(const std::string& path, const std::vector<ByteRange>& parts);

}  // namespace modeldiff::core
