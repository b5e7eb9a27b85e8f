#include "core/base/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/base/error.h"
#include "core/base/error_report.h"

namespace modeldiff::core {
namespace {

// The first byte the child sends: what follows.
enum Status : std::uint8_t { kResult = 0, kInputError = 1, kOtherError = 2 };

// Strings that fit an error message; a longer length means a garbled stream.
constexpr std::size_t kMaxMessage = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended in an unknown way";
}

// In the child: an exception from `child` as status and message.
void send_error(ChildWriter& out, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const InputError& e) {
    out.write_status(kInputError);
    for (const std::string* s :
         {&e.file(), &e.key_name(), &e.problem(), &e.expected_text(), &e.found_text()})
      out.write_string(*s);
  } catch (...) {
    out.write_status(kOtherError);
    out.write_string(describe_current_exception().message);
  }
}

[[noreturn]] void child_main(int fd, const std::function<void(ChildWriter&)>& child) {
  ChildWriter out(fd);
  std::exception_ptr error;
  try {
    child(out);
    out.write(nullptr, 0);  // a result of no bytes still says "result"
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // After a part of the result, an error cannot be told apart from it: end without
    // completing it, and the parent reports a child that ended early.
    if (out.started()) ::_exit(4);
    send_error(out, error);
  }
  ::_exit(0);
}

}  // namespace

void ChildWriter::write_status(std::uint8_t status) {
  started_ = true;
  send(&status, 1);
}

void ChildWriter::write(const void* data, std::size_t size) {
  if (!started_) write_status(kResult);
  send(data, size);
}

void ChildWriter::send(const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(3);  // the parent is gone: nobody to tell
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void ChildWriter::write_string(const std::string& s) {
  write_u64(s.size());
  write(s.data(), s.size());
}

void ChildReader::read(void* data, std::size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_s_ * 1000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0)
      throw ChildProcessFailed("sent nothing for " + std::to_string(timeout_s_) + " s");
    const ssize_t n = ::read(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      throw ChildProcessFailed("ended before sending its result");
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

std::uint64_t ChildReader::read_u64() {
  std::uint64_t v = 0;
  read(&v, sizeof v);
  return v;
}

std::string ChildReader::read_string(std::size_t max_size) {
  const std::uint64_t n = read_u64();
  if (n > max_size) throw ChildProcessFailed("sent a garbled result");
  std::string s(static_cast<std::size_t>(n), '\0');
  read(s.data(), s.size());
  return s;
}

void run_in_child_process(const std::function<void(ChildWriter&)>& child,
                          const std::function<void(ChildReader&)>& parent, std::mutex* fork_lock,
                          int inactivity_timeout_s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw ChildProcessFailed(std::string("cannot create a pipe: ") + std::strerror(errno));
  Fd read_end(fds[0]), write_end(fds[1]);
  pid_t pid;
  {
    std::unique_lock<std::mutex> lock;
    if (fork_lock != nullptr) lock = std::unique_lock<std::mutex>(*fork_lock);
    pid = ::fork();
  }
  if (pid < 0) throw ChildProcessFailed(std::string("cannot fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The parent's crash handlers (a test framework's, a GUI's) are not the child's: a crash
    // here ends the child quietly, and the parent reports it.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::signal(sig, SIG_DFL);
    ::close(fds[0]);
    child_main(fds[1], child);
  }
  write_end.reset();  // EOF for the parent once the child is gone

  // Reaps the child however the parent's reading ends; kills it first when it must.
  struct Reaper {
    pid_t pid;
    bool kill = true;
    int status = 0;
    ~Reaper() { wait(); }
    void wait() {
      if (pid <= 0) return;
      if (kill) ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      pid = 0;
    }
  } reaper{pid};

  ChildReader in(read_end.get(), inactivity_timeout_s);
  std::uint8_t status = 0xff;
  try {
    in.read(&status, 1);
    if (status == kResult) {
      parent(in);
    } else if (status == kInputError) {
      std::string f[5];
      for (auto& s : f) s = in.read_string(kMaxMessage);
      InputError e(f[0], f[2]);
      if (!f[1].empty()) e.key(f[1]);
      if (!f[3].empty()) e.expected(f[3]);
      if (!f[4].empty()) e.found(f[4]);
      throw e;
    } else if (status == kOtherError) {
      const std::string message = in.read_string(kMaxMessage);
      reaper.kill = false;  // it told us what went wrong and exits by itself
      reaper.wait();
      throw ChildProcessFailed(message);
    } else {
      throw ChildProcessFailed("sent a garbled result");
    }
  } catch (const ChildProcessFailed& e) {
    // Say how the child ended when it did not finish its result.
    reaper.kill = !in.saw_eof();
    reaper.wait();
    if (WIFSIGNALED(reaper.status) || (WIFEXITED(reaper.status) && WEXITSTATUS(reaper.status)))
      throw ChildProcessFailed(std::string(e.what()) + "; the child process " +
                               how_it_ended(reaper.status));
    throw;
  }
  reaper.kill = false;
}

}  // namespace modeldiff::core
