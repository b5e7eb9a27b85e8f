// Calls in a child process: results and InputErrors cross over intact, and a child that
// crashes, hangs or fails otherwise is reported, never taking the caller down. Then the reason
// it exists: files that crash libhdf5 are reported as corrupt HDF5 files.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/base/child_process.h"
#include "core/base/error.h"
#include "core/io/array_file.h"
#include "core/io/hdf5_dataset.h"

using namespace modeldiff::core;

namespace {

// The parent expects a number and a string.
std::string failure_of(const std::function<void(ChildWriter&)>& child, int timeout_s = 60) {
  try {
    run_in_child_process(
        child,
        [](ChildReader& in) {
          (void)in.read_u64();
          (void)in.read_string(100);
        },
        nullptr, timeout_s);
  } catch (const ChildProcessFailed& e) {
    return e.what();
  }
  return "";
}

std::string known_crash(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "../fuzz/known_hdf5_crashes" / name)
      .lexically_normal()
      .string();
}

}  // namespace

TEST(ChildProcess, ResultCrossesWhole) {
  // Larger than a pipe's buffer many times over: the parent reads while the child writes.
  std::vector<std::uint32_t> sent(3'000'000);
  for (std::size_t i = 0; i < sent.size(); ++i)
    sent[i] = static_cast<std::uint32_t>(i * 2654435761u);
  std::vector<std::uint32_t> got;
  std::string text;
  run_in_child_process(
      [&](ChildWriter& out) {
        out.write_u64(sent.size());
        out.write(sent.data(), sent.size() * sizeof(std::uint32_t));
        out.write_string("done in pid " + std::to_string(::getpid()));
      },
      [&](ChildReader& in) {
        got.resize(in.read_u64());
        in.read(got.data(), got.size() * sizeof(std::uint32_t));
        text = in.read_string(100);
      });
  EXPECT_EQ(got, sent);
  EXPECT_EQ(text.rfind("done in pid ", 0), 0u);
  EXPECT_NE(text, "done in pid " + std::to_string(::getpid()));  // it ran elsewhere
}

TEST(ChildProcess, InputErrorCrossesAsItWas) {
  try {
    run_in_child_process(
        [](ChildWriter&) {
          throw InputError("scores.h5", "bad").key("weight").expected("2-D").found("3-D");
        },
        [](ChildReader&) { FAIL() << "no result expected"; });
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "scores.h5");
    EXPECT_EQ(e.key_name(), "weight");
    EXPECT_STREQ(e.what(), "scores.h5 [weight]: bad (expected 2-D, found 3-D)");
  }
}

TEST(ChildProcess, CrashesHangsAndOtherErrorsAreReported) {
  const std::string segv = failure_of([](ChildWriter&) { ::raise(SIGSEGV); });
  // Plain: killed by signal 11. Under AddressSanitizer its handler reports and exits 1.
  EXPECT_TRUE(segv.find("signal 11") != std::string::npos ||
              segv.find("exited with status") != std::string::npos)
      << segv;
  EXPECT_NE(segv.find("ended before sending its result"), std::string::npos) << segv;
  const std::string half = failure_of([](ChildWriter& out) {
    out.write_u64(1);
    throw InputError("x", "after a part of the result");
  });
  EXPECT_NE(half.find("exited with status 4"), std::string::npos) << half;
  const std::string other =
      failure_of([](ChildWriter&) { throw std::runtime_error("library said no"); });
  EXPECT_EQ(other, "internal error: library said no");
  const std::string hang = failure_of([](ChildWriter&) { ::pause(); }, 1);
  EXPECT_NE(hang.find("sent nothing for 1 s"), std::string::npos) << hang;
  EXPECT_NE(hang.find("signal 9"), std::string::npos) << hang;
}

TEST(ChildProcess, FilesThatCrashLibhdf5AreCorruptFiles) {
  // Each of these crashes libhdf5 1.10 in-process, at least under AddressSanitizer
  // (tests/fuzz/known_hdf5_crashes/README.md). Whatever is asked of them, the answer is a
  // result or an InputError naming the file, and this process lives on.
  for (const char* name : {"stab_group_local_heap_segv.h5", "enum_datatype_heap_overread.h5",
                           "dense_group_bad_link_address.h5", "object_header_4gib_alloc.h5"}) {
    const std::string path = known_crash(name);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    for (int how = 0; how < 3; ++how) {
      try {
        if (how == 0) (void)list_hdf5_datasets(path);
        if (how == 1) (void)read_hdf5_dataset(path, "b1");
        if (how == 2) (void)load_score_matrix(path, "", Transpose::kAuto);
      } catch (const InputError& e) {
        EXPECT_EQ(e.file(), path) << e.what();
      }
    }
  }
  // The one that crashes whatever is asked of it, reported as such.
  try {
    (void)list_hdf5_datasets(known_crash("stab_group_local_heap_segv.h5"));
    FAIL() << "listed";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt HDF5 file"), std::string::npos) << e.what();
  }
}
