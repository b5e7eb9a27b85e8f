// Runs a call in a short-lived child process, so that a library that crashes on corrupt
// input (libhdf5 does, on some damaged files) takes down the child, not the CLI or the GUI
// with whatever the user had not saved.
//
// The child is a fork of the caller: it runs `child` with the caller's memory as it was at the
// fork, writes its result into a pipe and ends with _exit (no atexit handlers, no flushing of
// the parent's files). The parent reads the result with `parent` as it arrives. An InputError
// thrown in the child is rethrown in the parent as it was; any other exception in the child
// becomes ChildProcessFailed with its message; a child that dies (a signal, an exit without a
// complete result) or sends nothing for `inactivity_timeout_s` seconds (then it is killed)
// also gives ChildProcessFailed, saying how it ended.
//
// Only the calling thread exists in the child. A library that keeps a global lock (a thread-
// safe HDF5) must not be in use by another thread at the fork: pass the mutex every use of it
// holds as `fork_lock`; it is held while forking. The same goes for the memory allocator when
// it is not fork-safe (glibc's is; the sanitizers' of GCC 12 is not): a thread that allocates
// at the fork, or is only exiting, leaves its lock held in the child for ever. Callers keep
// their own threads apart from calls that may fork (`modeldiff diff` hashes an HDF5 input
// after loading it, not beside).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>

namespace modeldiff::core {

class ChildProcessFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The child's end of the pipe. `child` should compute its whole result before it writes any
// of it: an exception after the first write can no longer be reported as that exception (the
// parent then sees a child that ended early).
class ChildWriter {
 public:
  explicit ChildWriter(int fd) : fd_(fd) {}
  void write(const void* data, std::size_t size);
  void write_u64(std::uint64_t v) { write(&v, sizeof v); }
  void write_string(const std::string& s);

  // For the process machinery: the status byte that starts the stream; whether it was sent.
  void write_status(std::uint8_t status);
  bool started() const { return started_; }

 private:
  void send(const void* data, std::size_t size);
  int fd_;
  bool started_ = false;
};

// The parent's end: reads exactly what is asked or throws ChildProcessFailed.
class ChildReader {
 public:
  ChildReader(int fd, int inactivity_timeout_s) : fd_(fd), timeout_s_(inactivity_timeout_s) {}
  void read(void* data, std::size_t size);
  std::uint64_t read_u64();
  std::string read_string(std::size_t max_size);
  bool saw_eof() const { return eof_; }  // the child closed the pipe (exited or died)

 private:
  int fd_;
  int timeout_s_;
  bool eof_ = false;
};

void run_in_child_process(const std::function<void(ChildWriter&)>& child,
                          const std::function<void(ChildReader&)>& parent,
                          std::mutex* fork_lock = nullptr, int inactivity_timeout_s = 600);

}  // namespace modeldiff::core
