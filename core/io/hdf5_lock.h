// One lock for every use of libhdf5 in this process (readers and the writer). HDF5 is built
// thread-safe with one global lock of its own; reads of files run in a forked child process
// (hdf5_dataset.h), and a fork while another thread is inside HDF5 would give the child a lock
// that nobody releases. Holding this lock for each call and while forking rules that out.
#pragma once

#include <mutex>

namespace modeldiff::core {

std::mutex& hdf5_library_mutex();

}  // namespace modeldiff::core
