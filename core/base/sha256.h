// SHA-256 of inputs, recorded in every result's provenance so a result can be traced to
// the exact files it came from (and caches can tell when an input changed).
#pragma once

#include <cstddef>
#include <string>
#include <utility>

namespace modeldiff::core {

// Lower-case hex SHA-256 of a file's bytes; for a directory (a traker save_dir), of its
// regular files' relative paths and contents in sorted order. Throws InputError.
std::string sha256_path(const std::string& path);

// sha256_path of two paths at once: for two files, their blocks are hashed side by side,
// nearly twice as fast as one after the other with the x86 SHA extensions (the digests are
// the same). Throws InputError naming the file.
std::pair<std::string, std::string> sha256_two_paths(const std::string& a, const std::string& b);

// Lower-case hex SHA-256 of a byte string / of a memory range.
std::string sha256_bytes(const std::string& bytes);
std::string sha256_data(const void* data, std::size_t size);

// The digests are the same either way; the x86 SHA extensions make them several times faster
// (used when the CPU has them). For tests: whether the CPU has them, and a switch (returns
// the previous setting; `true` has no effect on a CPU without them).
bool sha256_hardware_available();
bool set_sha256_hardware(bool enabled);

// Files are hashed from mappings of this many bytes at a time (8 MiB; read() where a file
// cannot be mapped). For tests, which make files span several windows: sets it (rounded down
// to whole pages, at least one) and returns the previous size.
std::size_t set_sha256_window(std::size_t bytes);

}  // namespace modeldiff::core
