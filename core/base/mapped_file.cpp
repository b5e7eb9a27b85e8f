#include "core/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/base/error.h"

namespace modeldiff::core {

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path, std::string("cannot open file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(path, "not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<std::size_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      f->mapping_ = m;
      f->data_ = static_cast<const std::byte*>(m);
    } else {
      f->buffer_ = std::make_unique<std::byte[]>(f->size_);
      std::size_t done = 0;
      while (done < f->size_) {
        const ssize_t n = ::read(fd, f->buffer_.get() + done, f->size_ - done);
        if (n <= 0) {
          ::close(fd);
          throw InputError(path, "cannot read file");
        }
        done += static_cast<std::size_t>(n);
      }
      f->data_ = f->buffer_.get();
    }
  }
  ::close(fd);
  return f;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::string name, const void* data,
                                                         std::size_t size) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = std::move(name);
  f->size_ = size;
  f->buffer_ = std::make_unique<std::byte[]>(size > 0 ? size : 1);
  if (size > 0) std::memcpy(f->buffer_.get(), data, size);
  f->data_ = f->buffer_.get();
  return f;
}

MappedFile::~MappedFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, std::string("cannot open file: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path, "cannot read file");
  return ss.str();
}

}  // namespace modeldiff::core
