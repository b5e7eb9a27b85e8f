#include "core/base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "core/base/error.h"

namespace modeldiff::core {

void write_file_atomically(const std::string& path, const std::vector<ByteRange>& parts) {
  std::random_device random;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    tmp = path + ".tmp-";
    for (int i = 0; i < 6; ++i) tmp += kChars[random() % (sizeof(kChars) - 1)];
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    throw InputError(
        path, std::string("cannot create temporary file for writing: ") + std::strerror(errno));
  int err = 0;
  for (const ByteRange& part : parts) {
    const auto* bytes = static_cast<const char*>(part.data);
    std::size_t done = 0;
    while (err == 0 && done < part.size) {
      const ssize_t n = ::write(fd, bytes + done, part.size - done);
      if (n < 0 && errno != EINTR) err = errno;
      if (n > 0) done += static_cast<std::size_t>(n);
    }
  }
  // fsync before rename: otherwise a crash can leave `path` renamed but empty.
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw InputError(path, std::string("cannot write file: ") + std::strerror(err));
  }
}

}  // namespace modeldiff::core
