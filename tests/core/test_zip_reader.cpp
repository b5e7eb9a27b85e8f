// ZipReader (core/io/zip_reader.h, the torch.save reader of builds without libzip) against
// libzip on the archives torch 1.13 writes (tests/fixtures/gen_torch.py; torch.save always
// writes the ZIP64 end records), on archives Python's zipfile rewrote (classic end record only),
// on a ZIP64 archive built here byte by byte with ZIP64 extra fields, and on damaged archives.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/io/zip_reader.h"
#include "core/test_paths.h"

using namespace modeldiff::core;
using modeldiff::test::test_fixture;

namespace {

struct LibzipEntry {
  std::string name;
  std::string bytes;
};

// Every entry as libzip reads it (consistency checks on), in central directory order.
std::vector<LibzipEntry> read_with_libzip(const std::byte* data, std::size_t size) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(data, size, 0, &err);
  EXPECT_NE(src, nullptr);
  zip_t* z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  EXPECT_NE(z, nullptr) << zip_error_strerror(&err);
  zip_error_fini(&err);
  std::vector<LibzipEntry> out;
  if (z == nullptr) {
    zip_source_free(src);
    return out;
  }
  const zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    EXPECT_EQ(zip_stat_index(z, static_cast<zip_uint64_t>(i), 0, &st), 0);
    LibzipEntry e;
    e.name = zip_get_name(z, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
    e.bytes.resize(st.size);
    zip_file_t* f = zip_fopen_index(z, static_cast<zip_uint64_t>(i), 0);
    EXPECT_NE(f, nullptr);
    if (f != nullptr) {
      EXPECT_EQ(zip_fread(f, e.bytes.data(), st.size), static_cast<zip_int64_t>(st.size));
      zip_fclose(f);
    }
    out.push_back(std::move(e));
  }
  zip_discard(z);
  return out;
}

// Same entries, in the same order, with the same bytes. torch.save stores every entry;
// torch.jit.save deflates its code/ entries, which ZipReader lists but refuses to read.
void expect_same_as_libzip(const std::string& what, const std::byte* data, std::size_t size,
                           bool all_stored = true) {
  const std::vector<LibzipEntry> want = read_with_libzip(data, size);
  const ZipReader zip(what, data, size);
  ASSERT_EQ(zip.entries().size(), want.size()) << what;
  ASSERT_FALSE(want.empty()) << what;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const ZipEntry& e = zip.entries()[i];
    EXPECT_EQ(e.name, want[i].name) << what;
    if (e.method != 0) {
      EXPECT_FALSE(all_stored) << what << " " << e.name;
      EXPECT_THROW(zip.read(e), InputError) << what << " " << e.name;
      continue;
    }
    const ZipBytes got = zip.read(e);
    ASSERT_EQ(got.size, want[i].bytes.size()) << what << " " << e.name;
    EXPECT_EQ(std::memcmp(got.data, want[i].bytes.data(), want[i].bytes.size()), 0)
        << what << " " << e.name;
  }
}

void put16(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 2; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put32(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A ZIP64 archive as a writer produces one for large checkpoints: every entry's sizes and
// offset in its central ZIP64 extra field (the 32-bit fields all ones), the ZIP64 end of
// central directory record and locator, and all-ones counts in the classic end record.
std::string zip64_archive(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  for (const auto& [name, data] : files) {
    const std::uint64_t offset = out.size();
    const std::uint32_t crc = crc32(data.data(), data.size());
    put32(out, 0x04034b50);
    put16(out, 45);  // version needed: ZIP64
    put16(out, 0);   // flags
    put16(out, 0);   // stored
    put16(out, 0);
    put16(out, 0x21);  // time, date
    put32(out, crc);
    put32(out, 0xffffffff);
    put32(out, 0xffffffff);  // sizes in the local ZIP64 extra
    put16(out, name.size());
    put16(out, 20);
    out += name;
    put16(out, 0x0001);
    put16(out, 16);
    put64(out, data.size());
    put64(out, data.size());
    out += data;

    put32(central, 0x02014b50);
    put16(central, 45);
    put16(central, 45);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0x21);
    put32(central, crc);
    put32(central, 0xffffffff);
    put32(central, 0xffffffff);
    put16(central, name.size());
    put16(central, 4 + 24);  // extra: ZIP64 with size, compressed size, offset
    put16(central, 0);       // comment
    put16(central, 0);       // disk
    put16(central, 0);
    put32(central, 0);
    put32(central, 0xffffffff);
    central += name;
    put16(central, 0x0001);
    put16(central, 24);
    put64(central, data.size());
    put64(central, data.size());
    put64(central, offset);
  }
  const std::uint64_t cd_offset = out.size();
  out += central;
  const std::uint64_t z64_offset = out.size();
  put32(out, 0x06064b50);
  put64(out, 44);  // size of the rest of the record
  put16(out, 45);
  put16(out, 45);
  put32(out, 0);
  put32(out, 0);
  put64(out, files.size());
  put64(out, files.size());
  put64(out, central.size());
  put64(out, cd_offset);
  put32(out, 0x07064b50);
  put32(out, 0);
  put64(out, z64_offset);
  put32(out, 1);
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0xffff);
  put16(out, 0xffff);
  put32(out, 0xffffffff);
  put32(out, 0xffffffff);
  put16(out, 0);
  return out;
}

const std::byte* bytes_of(const std::string& s) {
  return reinterpret_cast<const std::byte*>(s.data());
}

std::string read_error(const std::string& path, const std::string& entry_suffix) {
  const auto file = MappedFile::open(path);
  const ZipReader zip(path, file->data(), file->size());
  for (const ZipEntry& e : zip.entries()) {
    if (e.name.size() < entry_suffix.size() ||
        e.name.compare(e.name.size() - entry_suffix.size(), entry_suffix.size(), entry_suffix))
      continue;
    try {
      zip.read(e);
    } catch (const InputError& err) {
      return err.what();
    }
    return "no error";
  }
  return "no entry";
}

}  // namespace

TEST(ZipReader, Crc32KnownValues) {
  EXPECT_EQ(crc32("123456789", 9), 0xcbf43926u);
  EXPECT_EQ(crc32("", 0), 0u);
  const std::string s = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(crc32(s.data(), s.size()), 0x414fa339u);
  // Continuing a CRC over two parts gives the CRC of the whole.
  EXPECT_EQ(crc32(s.data() + 10, s.size() - 10, crc32(s.data(), 10)), 0x414fa339u);
}

TEST(ZipReader, ReadsEveryTorchSaveFixtureAsLibzipDoes) {
  for (const char* name :
       {"state_dict.pt", "checkpoint.pt", "dataparallel.pt", "bare.pt", "parameter.pt",
        "weight_30x50.pt", "dtypes.pt", "half.pt", "double.pt", "transposed.pt", "views.pt",
        "list.pt", "nested.pt", "crafted_p2.pt", "crafted_p5.pt",
        // rewritten by Python's zipfile: no ZIP64 records
        "bad_missing_storage.pt", "bad_short_storage.pt"}) {
    const std::string path = test_fixture(std::string("torch/") + name);
    const auto file = MappedFile::open(path);
    expect_same_as_libzip(path, file->data(), file->size());
  }
  const std::string scripted = test_fixture("torch/scripted.pt");
  const auto file = MappedFile::open(scripted);
  expect_same_as_libzip(scripted, file->data(), file->size(), /*all_stored=*/false);
}

TEST(ZipReader, ReadsZip64Records) {
  const std::string big(70000, 'x');
  const std::string archive = zip64_archive({{"archive/data.pkl", "\x80\x02}q\x00."},
                                             {"archive/data/0", big},
                                             {"archive/version", "3\n"},
                                             {"archive/empty", ""}});
  expect_same_as_libzip("zip64", bytes_of(archive), archive.size());
  const ZipReader zip("zip64", bytes_of(archive), archive.size());
  ASSERT_EQ(zip.entries().size(), 4u);
  EXPECT_EQ(zip.entries()[1].size, big.size());
  EXPECT_EQ(zip.read(zip.entries()[3]).size, 0u);
}

TEST(ZipReader, DeflatedEntryIsAnErrorNamingFileAndEntry) {
  const std::string path = test_fixture("torch/state_dict_deflate.pt");
  const std::string msg = read_error(path, "/data.pkl");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("data.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("compressed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("deflate"), std::string::npos) << msg;
}

TEST(ZipReader, DamagedArchivesAreInputErrors) {
  for (const char* name : {"bad_truncated.pt", "bad_random.pt", "legacy.pt"}) {
    const std::string path = test_fixture(std::string("torch/") + name);
    const auto file = MappedFile::open(path);
    EXPECT_THROW(ZipReader(path, file->data(), file->size()), InputError) << name;
  }
  EXPECT_THROW(ZipReader("empty", nullptr, 0), InputError);

  // One flipped byte in an entry's data: the CRC-32 catches it.
  const auto file = MappedFile::open(test_fixture("torch/weight_30x50.pt"));
  std::string copy(reinterpret_cast<const char*>(file->data()), file->size());
  const ZipReader good("weight_30x50.pt", bytes_of(copy), copy.size());
  const ZipEntry* storage = nullptr;
  for (const ZipEntry& e : good.entries())
    if (e.name.size() > 7 && e.name.compare(e.name.size() - 7, 7, "/data/0") == 0) storage = &e;
  ASSERT_NE(storage, nullptr);
  const ZipBytes bytes = good.read(*storage);
  copy[static_cast<std::size_t>(bytes.data - bytes_of(copy)) + 5] ^= 1;
  const ZipReader flipped("weight_30x50.pt", bytes_of(copy), copy.size());
  try {
    flipped.read(*storage);
    ADD_FAILURE() << "no error for a corrupt entry";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("CRC-32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/data/0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(flipped.read(*storage, /*verify_crc=*/false).size, storage->size);

  // torch.save writes the ZIP64 end record always: point its central directory far past the
  // end of the file.
  const std::size_t z64 = copy.rfind(std::string("PK\x06\x06", 4));
  ASSERT_NE(z64, std::string::npos);
  std::string cut = copy;
  cut[z64 + 48 + 6] = '\x7f';
  EXPECT_THROW(ZipReader("cut", bytes_of(cut), cut.size()), InputError);
}
