#include "core/base/sha256.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/base/error.h"

namespace modeldiff::core {
namespace {

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext new_context() {
  DigestContext ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  MD_ASSERT(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1);
  return ctx;
}

void update_with_file(EVP_MD_CTX* ctx, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, std::string("cannot open file: ") + std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = in.gcount();
    if (n > 0) EVP_DigestUpdate(ctx, buffer.data(), static_cast<std::size_t>(n));
  }
  if (in.bad()) throw InputError(path, "cannot read file");
}

std::string finish(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  MD_ASSERT(EVP_DigestFinal_ex(ctx, digest, &len) == 1);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string sha256_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const DigestContext ctx = new_context();
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_regular_file()) files.push_back(fs::relative(it->path(), path).string());
    if (ec) throw InputError(path, "cannot list directory: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      EVP_DigestUpdate(ctx.get(), f.c_str(), f.size() + 1);  // name and its terminating NUL
      update_with_file(ctx.get(), path + "/" + f);
    }
  } else {
    update_with_file(ctx.get(), path);
  }
  return finish(ctx.get());
}

std::string sha256_bytes(const std::string& bytes) {
  return sha256_data(bytes.data(), bytes.size());
}

std::string sha256_data(const void* data, std::size_t size) {
  const DigestContext ctx = new_context();
  EVP_DigestUpdate(ctx.get(), data, size);
  return finish(ctx.get());
}

}  // namespace modeldiff::core
