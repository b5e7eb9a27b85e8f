#include "core/base/sha256.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base/error.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MODELDIFF_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define MODELDIFF_SHA_NI 0
#endif

namespace modeldiff::core {
namespace {

// The round constants (FIPS 180-4 section 4.2.2).
alignas(16) const std::uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#if MODELDIFF_SHA_NI
// The same compression with the x86 SHA extensions (SHA-NI; Intel since Goldmont/Ice Lake,
// AMD since Zen), several times the portable code's speed. For each of `Lanes` independent
// messages, `state[lane]` holds A..H and `blocks` 64-byte blocks of `data[lane]` are compressed
// in order. One message is bound by the latency of the round instruction (each round needs the
// previous one's result); two messages side by side fill its pipeline, nearly twice the speed.
template <int Lanes>
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(std::uint32_t* const state[],
                                                                 const unsigned char* const in[],
                                                                 std::size_t blocks) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i state0[Lanes], state1[Lanes];
  const unsigned char* data[Lanes];
  for (int l = 0; l < Lanes; ++l) {
    // The instructions take the state as ABEF and CDGH.
    const __m128i tmp =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state[l])), 0xB1);
    const __m128i cdgh =
        _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state[l] + 4)), 0x1B);
    state0[l] = _mm_alignr_epi8(tmp, cdgh, 8);     // ABEF
    state1[l] = _mm_blend_epi16(cdgh, tmp, 0xF0);  // CDGH
    data[l] = in[l];
  }
  for (; blocks > 0; --blocks) {
    __m128i abef[Lanes], cdgh[Lanes];
    __m128i w[Lanes][4];  // the message schedule, four words at a time, rotating
    for (int l = 0; l < Lanes; ++l) {
      abef[l] = state0[l];
      cdgh[l] = state1[l];
    }
    for (int i = 0; i < 16; ++i) {
      const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kK + 4 * i));
      for (int l = 0; l < Lanes; ++l) {
        __m128i& wi = w[l][i % 4];
        if (i < 4) {
          wi = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data[l] + 16 * i)),
                                byte_swap);
        } else {
          // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], for t = 4i .. 4i + 3.
          const __m128i w4 = w[l][i % 4], w3 = w[l][(i + 1) % 4], w2 = w[l][(i + 2) % 4],
                        w1 = w[l][(i + 3) % 4];
          wi = _mm_sha256msg2_epu32(
              _mm_add_epi32(_mm_sha256msg1_epu32(w4, w3), _mm_alignr_epi8(w1, w2, 4)), w1);
        }
        __m128i msg = _mm_add_epi32(wi, k);
        state1[l] = _mm_sha256rnds2_epu32(state1[l], state0[l], msg);
        msg = _mm_shuffle_epi32(msg, 0x0E);
        state0[l] = _mm_sha256rnds2_epu32(state0[l], state1[l], msg);
      }
    }
    for (int l = 0; l < Lanes; ++l) {
      state0[l] = _mm_add_epi32(state0[l], abef[l]);
      state1[l] = _mm_add_epi32(state1[l], cdgh[l]);
      data[l] += 64;
    }
  }
  for (int l = 0; l < Lanes; ++l) {
    const __m128i tmp = _mm_shuffle_epi32(state0[l], 0x1B);   // FEBA
    const __m128i dchg = _mm_shuffle_epi32(state1[l], 0xB1);  // DCHG
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l]), _mm_blend_epi16(tmp, dchg, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l] + 4), _mm_alignr_epi8(dchg, tmp, 8));
  }
}

bool cpu_has_sha_ni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool ssse3 = (ecx & (1u << 9)) != 0, sse41 = (ecx & (1u << 19)) != 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return ssse3 && sse41 && (ebx & (1u << 29)) != 0;
}
#else
bool cpu_has_sha_ni() {
  return false;
}
#endif

std::atomic<bool>& use_hardware() {
  static std::atomic<bool> use(cpu_has_sha_ni());
  return use;
}

// SHA-256 as FIPS 180-4 specifies it (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3, 6.2), streaming:
// update() any number of times, then finish() once.
class Sha256 {
 public:
  void update(const void* data, std::size_t size) {
    if (size == 0) return;  // `data` may be null then
    const auto* p = static_cast<const unsigned char*>(data);
    length_ += size;
    if (used_ > 0) {
      const std::size_t take = std::min(size, block_.size() - used_);
      std::memcpy(block_.data() + used_, p, take);
      used_ += take;
      p += take;
      size -= take;
      if (used_ < block_.size()) return;
      compress_blocks(block_.data(), 1);
      used_ = 0;
    }
    if (size >= 64) {
      compress_blocks(p, size / 64);
      p += size / 64 * 64;
      size %= 64;
    }
    std::memcpy(block_.data(), p, size);
    used_ = size;
  }

  std::array<unsigned char, 32> finish() {
    const std::uint64_t bits = length_ * 8;  // the message length in bits, modulo 2^64
    static const unsigned char kPad[64] = {0x80};
    update(kPad, used_ < 56 ? 56 - used_ : 120 - used_);
    unsigned char tail[8];
    for (int i = 0; i < 8; ++i) tail[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(tail, 8);
    std::array<unsigned char, 32> digest;
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j)
        digest[static_cast<std::size_t>(4 * i + j)] =
            static_cast<unsigned char>(h_[i] >> (24 - 8 * j));
    return digest;
  }

  // x.update(px, nx) and y.update(py, ny), with the blocks the two have in common compressed
  // side by side (the two-message SHA-NI path) when neither has a partial block waiting.
  static void update_two(Sha256& x, const void* px, std::size_t nx, Sha256& y, const void* py,
                         std::size_t ny) {
    const auto* cx = static_cast<const unsigned char*>(px);
    const auto* cy = static_cast<const unsigned char*>(py);
#if MODELDIFF_SHA_NI
    const std::size_t blocks = std::min(nx, ny) / 64;
    if (x.used_ == 0 && y.used_ == 0 && blocks > 0 &&
        use_hardware().load(std::memory_order_relaxed)) {
      std::uint32_t* const state[2] = {x.h_, y.h_};
      const unsigned char* const in[2] = {cx, cy};
      compress_sha_ni<2>(state, in, blocks);
      x.length_ += blocks * 64;
      y.length_ += blocks * 64;
      cx += blocks * 64;
      cy += blocks * 64;
      nx -= blocks * 64;
      ny -= blocks * 64;
    }
#endif
    x.update(cx, nx);
    y.update(cy, ny);
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
  }

  void compress_blocks(const unsigned char* data, std::size_t blocks) {
#if MODELDIFF_SHA_NI
    if (use_hardware().load(std::memory_order_relaxed)) {
      std::uint32_t* const state[1] = {h_};
      const unsigned char* const in[1] = {data};
      compress_sha_ni<1>(state, in, blocks);
      return;
    }
#endif
    for (; blocks > 0; --blocks, data += 64) compress(data);
  }

  void compress(const unsigned char* block) {
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = std::uint32_t(block[4 * t]) << 24 | std::uint32_t(block[4 * t + 1]) << 16 |
             std::uint32_t(block[4 * t + 2]) << 8 | std::uint32_t(block[4 * t + 3]);
    for (int t = 16; t < 64; ++t) {
      const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
                  h = h_[7];
    for (int t = 0; t < 64; ++t) {
      const std::uint32_t t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[t] + w[t];
      const std::uint32_t t2 =
          (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  std::uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  std::size_t used_ = 0;      // bytes waiting in block_
  std::uint64_t length_ = 0;  // bytes hashed so far
};

std::atomic<std::size_t>& window_bytes() {
  static std::atomic<std::size_t> bytes(std::size_t{8} << 20);
  return bytes;
}

// A file's bytes, window by window: mapped where the file can be (nothing is copied, and the
// pages are the page cache's, shared with a mapping the scores are read from), read() into a
// buffer otherwise (pipes, special files, a failed mmap). Each window is unmapped before the
// next, so the hash adds one window to the resident size, not the file.
class FileWindows {
 public:
  explicit FileWindows(const std::string& path)
      : path_(path), window_(window_bytes().load(std::memory_order_relaxed)) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw InputError(path, std::string("cannot open file: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
      mappable_ = true;
      size_ = static_cast<std::size_t>(st.st_size);
    }
  }
  ~FileWindows() {
    unmap();
    ::close(fd_);
  }
  FileWindows(const FileWindows&) = delete;
  FileWindows& operator=(const FileWindows&) = delete;

  // The next bytes of the file; an empty window at its end. Throws InputError.
  std::pair<const unsigned char*, std::size_t> next() {
    unmap();
    if (mappable_) {
      if (offset_ >= size_) return {nullptr, 0};
      const std::size_t length = std::min(window_, size_ - offset_);
      void* m = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd_,
                       static_cast<off_t>(offset_));
      if (m != MAP_FAILED) {
        mapping_ = m;
        mapped_ = length;
        offset_ += length;
        return {static_cast<const unsigned char*>(m), length};
      }
      mappable_ = false;  // read() on from here
      if (::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET) < 0)
        throw InputError(path_, std::string("cannot read file: ") + std::strerror(errno));
    }
    buffer_.resize(window_);
    for (;;) {
      const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n >= 0) return {buffer_.data(), static_cast<std::size_t>(n)};
      if (errno != EINTR)
        throw InputError(path_, std::string("cannot read file: ") + std::strerror(errno));
    }
  }

 private:
  void unmap() {
    if (mapping_ != nullptr) ::munmap(mapping_, mapped_);
    mapping_ = nullptr;
  }

  std::string path_;
  std::size_t window_;  // a multiple of the page size (mmap offsets must be)
  int fd_ = -1;
  bool mappable_ = false;
  std::size_t size_ = 0, offset_ = 0;
  void* mapping_ = nullptr;
  std::size_t mapped_ = 0;
  std::vector<unsigned char> buffer_;
};

void update_with_file(Sha256& sha, const std::string& path) {
  FileWindows in(path);
  for (auto [data, size] = in.next(); size > 0; std::tie(data, size) = in.next())
    sha.update(data, size);
}

// Both files window by window, hashed side by side.
void update_with_two_files(Sha256& x, const std::string& path_x, Sha256& y,
                           const std::string& path_y) {
  FileWindows in_x(path_x), in_y(path_y);
  bool more_x = true, more_y = true;
  while (more_x || more_y) {
    std::pair<const unsigned char*, std::size_t> wx{nullptr, 0}, wy{nullptr, 0};
    if (more_x) wx = in_x.next();
    if (more_y) wy = in_y.next();
    more_x = wx.second > 0;
    more_y = wy.second > 0;
    Sha256::update_two(x, wx.first, wx.second, y, wy.first, wy.second);
  }
}

std::string finish(Sha256& sha) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (const unsigned char byte : sha.finish()) {
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
}

}  // namespace

std::string sha256_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  Sha256 sha;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_regular_file()) files.push_back(fs::relative(it->path(), path).string());
    if (ec) throw InputError(path, "cannot list directory: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      sha.update(f.c_str(), f.size() + 1);  // name and its terminating NUL
      update_with_file(sha, path + "/" + f);
    }
  } else {
    update_with_file(sha, path);
  }
  return finish(sha);
}

std::pair<std::string, std::string> sha256_two_paths(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(a, ec) || fs::is_directory(b, ec)) return {sha256_path(a), sha256_path(b)};
  Sha256 x, y;
  update_with_two_files(x, a, y, b);
  return {finish(x), finish(y)};
}

std::size_t set_sha256_window(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return window_bytes().exchange(std::max(page, bytes / page * page));
}

bool sha256_hardware_available() {
  return cpu_has_sha_ni();
}

bool set_sha256_hardware(bool enabled) {
  return use_hardware().exchange(enabled && cpu_has_sha_ni());
}

std::string sha256_bytes(const std::string& bytes) {
  return sha256_data(bytes.data(), bytes.size());
}

std::string sha256_data(const void* data, std::size_t size) {
  Sha256 sha;
  sha.update(data, size);
  return finish(sha);
}

}  // namespace modeldiff::core
