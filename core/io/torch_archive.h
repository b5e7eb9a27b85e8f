// Reader for files written by torch.save (PyTorch >= 1.6 zip format), without LibTorch.
//
// A torch.save file is a zip archive `<prefix>/data.pkl` + `<prefix>/data/<key>` (+ version,
// byteorder): the pickle describes the object tree and each tensor's storage is a raw
// little-endian zip entry. This reader unpickles data.pkl with the safe subset in pickle.h,
// rebuilds tensors from torch._utils._rebuild_tensor_v2 / _rebuild_parameter calls and returns
// every tensor of the tree as a C-contiguous NdArray. It understands what checkpoints hold:
// OrderedDict state dicts (which LibTorch's own unpickler refuses), nested dicts such as
// {"model": state_dict, "optimizer": ..., "epoch": 3}, lists and tuples of tensors, a bare
// tensor, views with arbitrary strides that share a storage. Non-tensor leaves (ints, strings,
// optimizer hyper-parameters) and objects other than dicts/lists are skipped.
//
// Refused with an InputError naming the file: the legacy (pre-1.6, non-zip) format, TorchScript
// archives, big-endian archives, unsupported dtypes (complex, quantized), storages missing or
// of the wrong size, tensors reaching outside their storage, and malformed archives.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/base/mapped_file.h"
#include "core/base/ndarray.h"

namespace modeldiff::core {

// One tensor of a checkpoint: its dotted path in the object tree ("model.conv1.weight";
// list items are numbered "0", "1", ...; a bare tensor is named "") and its values, with the
// tensor's own shape and dtype, C-contiguous (row-major).
struct NamedArray {
  std::string name;
  NdArray array;
};

// Every tensor of the torch.save archive at `path`, in the order the pickle lists them
// (= insertion order of the saved dicts). A tensor the pickle references twice appears under
// both names (sharing its bytes). Throws InputError.
std::vector<NamedArray> read_torch_file(const std::string& path);
// Same, from bytes already in memory; errors name file->path(). Contiguous tensors borrow
// their bytes from an internal copy of the storage, kept alive by the returned arrays.
std::vector<NamedArray> parse_torch_archive(std::shared_ptr<const MappedFile> file);

// Picks the model weights out of a whole checkpoint: when some names start with one of the
// usual nesting keys "state_dict.", "model_state_dict.", "model.", "net.", "module." (first
// match in that order), keeps only the tensors under it with that prefix removed and sets
// *chosen_prefix to the key (else "" and all tensors are kept). Then strips a leading
// "module." (from torch.nn.DataParallel) from every remaining name. `chosen_prefix` may be
// null.
std::vector<NamedArray> select_state_dict(std::vector<NamedArray> all, std::string* chosen_prefix);

}  // namespace modeldiff::core
