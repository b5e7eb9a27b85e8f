// SHA-256 (our own FIPS 180-4 implementation) against the standard's test vectors and
// hashlib, in memory and streamed from files in chunks.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include "core/base/error.h"
#include "core/base/sha256.h"

using namespace modeldiff::core;
namespace fs = std::filesystem;

namespace {

std::string write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Bytes (7 i + 3) mod 256: a ragged tail after whole 64-byte blocks and pages.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + 3) % 256);
  return s;
}

}  // namespace

TEST(Sha256, FipsTestVectors) {
  EXPECT_EQ(sha256_bytes(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_bytes("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_bytes("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopj"
                         "klmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_bytes(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256_data(nullptr, 0), sha256_bytes(""));
}

TEST(Sha256, EveryLengthAroundTheBlockPaddingMatchesHashlib) {
  // References computed with Python's hashlib when this test was written, on the same bytes:
  //   pat = bytes((i * 7 + 3) % 256 for i in range(200))
  //   hashlib.sha256(pat[:n]).hexdigest()
  // Lengths 55, 56 and 64 are where the padding spills into a second block (119, 120, 128:
  // a third).
  const std::string s = pattern(200);
  const std::pair<std::size_t, const char*> known[] = {
      {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
      {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
      {57, "35df609437dcfea3279283ab79fd554e2bf78f8f7ae2de532d8ee300b09e8f73"},
      {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
      {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
      {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
      {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
      {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
      {128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6"},
  };
  for (const auto& [n, digest] : known) {
    EXPECT_EQ(sha256_data(s.data(), n), digest) << n;
    EXPECT_EQ(sha256_bytes(s.substr(0, n)), digest) << n;
  }
  // Every length from 0 to 199 at once: the hex digests of pat[:0] ... pat[:199], concatenated,
  //   hashlib.sha256("".join(hashlib.sha256(pat[:n]).hexdigest()
  //                          for n in range(200)).encode()).hexdigest()
  std::string digests;
  for (std::size_t n = 0; n < 200; ++n) digests += sha256_data(s.data(), n);
  EXPECT_EQ(sha256_bytes(digests),
            "466ee381bbc4a6de34133ad71e2d19bd7ac1efe7fbd78829b39564fb7a8e7d20");
}

TEST(Sha256, FilesAreStreamedInChunks) {
  const std::string dir = ::testing::TempDir() + "/sha256_test";
  fs::remove_all(dir);
  fs::create_directories(dir + "/b");
  const std::string million = write_file(dir + "/million", std::string(1000000, 'a'));
  EXPECT_EQ(sha256_path(million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::string big = pattern(3000001);  // > 2 chunks of 1 MiB, ragged end
  EXPECT_EQ(sha256_path(write_file(dir + "/b/pattern", big)),
            "acf01e01c5d7617d31e73cb56eb5179713158210d351aedf747b97e0de6a84ba");
  EXPECT_EQ(sha256_bytes(big), "acf01e01c5d7617d31e73cb56eb5179713158210d351aedf747b97e0de6a84ba");
  EXPECT_EQ(sha256_path(write_file(dir + "/empty", "")), sha256_bytes(""));
  // A directory: each regular file's relative path (NUL-terminated) and bytes, sorted by path.
  const std::string expected = sha256_bytes(std::string("b/pattern") + '\0' + big + "empty" + '\0' +
                                            "million" + '\0' + std::string(1000000, 'a'));
  EXPECT_EQ(sha256_path(dir), expected);
  EXPECT_THROW(sha256_path(dir + "/missing"), InputError);
  fs::remove_all(dir);
}

TEST(Sha256, HardwareAndPortableCompressionGiveTheSameDigests) {
  // Both paths against hashlib's answers; on a CPU without the SHA extensions only the portable
  // one exists, and switching the hardware path on must leave it portable.
  const std::string s = pattern(3000001);
  const bool before = set_sha256_hardware(true);
  for (const bool hardware : {true, false}) {
    const bool previous = set_sha256_hardware(hardware);
    (void)previous;
    EXPECT_EQ(set_sha256_hardware(hardware), hardware && sha256_hardware_available());
    EXPECT_EQ(sha256_bytes("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        << hardware;
    EXPECT_EQ(sha256_bytes(s), "acf01e01c5d7617d31e73cb56eb5179713158210d351aedf747b97e0de6a84ba")
        << hardware;
    std::string digests;
    for (std::size_t n = 0; n < 200; ++n) digests += sha256_data(s.data(), n);
    EXPECT_EQ(sha256_bytes(digests),
              "466ee381bbc4a6de34133ad71e2d19bd7ac1efe7fbd78829b39564fb7a8e7d20")
        << hardware;
  }
  set_sha256_hardware(before);
}

TEST(Sha256, TwoPathsHashedSideBySideGiveEachFilesDigest) {
  // Files of different lengths (the longer one's tail is hashed alone), an empty one, equal
  // ones, a directory, on the hardware path and the portable one; errors name the file.
  const std::string dir = ::testing::TempDir() + "/sha256_two_test";
  fs::remove_all(dir);
  fs::create_directories(dir + "/d");
  const std::string big = write_file(dir + "/big", pattern(3000001));
  const std::string million = write_file(dir + "/million", std::string(1000000, 'a'));
  const std::string empty = write_file(dir + "/empty", "");
  write_file(dir + "/d/x", "abc");
  const char* kBig = "acf01e01c5d7617d31e73cb56eb5179713158210d351aedf747b97e0de6a84ba";
  const char* kMillion = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const bool before = set_sha256_hardware(true);
  for (const bool hardware : {true, false}) {
    set_sha256_hardware(hardware);
    EXPECT_EQ(sha256_two_paths(big, million),
              std::make_pair(std::string(kBig), std::string(kMillion)))
        << hardware;
    EXPECT_EQ(sha256_two_paths(million, big),
              std::make_pair(std::string(kMillion), std::string(kBig)))
        << hardware;
    EXPECT_EQ(sha256_two_paths(big, big), std::make_pair(std::string(kBig), std::string(kBig)));
    EXPECT_EQ(sha256_two_paths(empty, million),
              std::make_pair(sha256_bytes(""), std::string(kMillion)));
    EXPECT_EQ(sha256_two_paths(dir + "/d", big),
              std::make_pair(sha256_path(dir + "/d"), std::string(kBig)));
  }
  set_sha256_hardware(before);
  try {
    sha256_two_paths(big, dir + "/missing");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/missing"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Sha256, FilesSpanningSeveralMappedWindowsAndPipesGiveTheSameDigests) {
  // Files are hashed from mapped windows: with one-page windows the 3,000,001 bytes span 733
  // of them (the last one ragged), two files of different lengths run out of windows at
  // different times, and a FIFO (which cannot be mapped) is read() instead.
  const std::string dir = ::testing::TempDir() + "/sha256_window_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string big = write_file(dir + "/big", pattern(3000001));
  const std::string million = write_file(dir + "/million", std::string(1000000, 'a'));
  const std::string kBig = "acf01e01c5d7617d31e73cb56eb5179713158210d351aedf747b97e0de6a84ba";
  const std::string kMillion = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const std::size_t before = set_sha256_window(1);  // one page
  EXPECT_EQ(sha256_path(big), kBig);
  EXPECT_EQ(sha256_two_paths(big, million), std::make_pair(kBig, kMillion));
  EXPECT_EQ(sha256_two_paths(million, big), std::make_pair(kMillion, kBig));
  set_sha256_window(before);
  EXPECT_EQ(sha256_two_paths(big, million), std::make_pair(kBig, kMillion));

  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { write_file(fifo, pattern(3000001)); });
  EXPECT_EQ(sha256_path(fifo), kBig);
  writer.join();
  fs::remove_all(dir);
}
