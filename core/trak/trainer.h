// Training a TorchScript classifier on an ImageDataset: the checkpoints of an "algorithm".
//
// ModelDiff compares two training algorithms through models each one produced. When a user has
// no checkpoints yet (and for the demo), the tool trains them itself: the architecture is a
// TorchScript file (torch.jit.script(model).save), the recipe is TrainSettings, and the
// checkpoints are state dicts that TorchModel::load (and Python's torch.load) read back.
//
// The recipe: parameters initialised from the seed with PyTorch's default rules, SGD with
// momentum and weight decay (as torch.optim.SGD computes it), cross-entropy loss, a cosine
// learning-rate decay from `lr` to 0 over all steps (one step per batch), the training set
// shuffled every epoch from the seed, optional augmentation (random crop with 2 pixels of zero
// padding, then a horizontal flip with probability 1/2) applied to the stored pixels before
// preprocessing. The same seed, data, settings and thread count give bit-identical weights on
// the CPU (LibTorch's CPU kernels reduce in a fixed order for a fixed thread count).
//
// This header includes no LibTorch header.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/base/progress.h"
#include "core/data/image_dataset.h"
#include "core/data/preprocessing.h"
#include "core/trak/torch_model.h"

namespace modeldiff::core {

struct TrainSettings {
  int epochs = 4;
  int batch_size = 128;
  double lr = 0.05;  // peak learning rate; decays to 0 along a cosine over all steps
  double momentum = 0.9;
  double weight_decay = 5e-4;  // L2 on every trainable parameter, as torch.optim.SGD applies it
  bool augment = false;        // random crop (pad 2) + horizontal flip, seeded
  std::uint64_t seed = 0;      // initial weights, data order, augmentation, dropout
  int threads = 0;             // LibTorch intra-op threads (set_torch_threads); 0 = all cores
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N" (bit-identical reruns only on the CPU)
  // A checkpoint of the architecture to start from (fine-tuning a pre-trained model): its
  // parameters and buffers replace the seeded initialisation. "": initialise from the seed.
  std::string init;
};

// Throws InputError naming the first setting out of range (epochs, batch_size >= 1; lr > 0;
// momentum in [0, 1); weight_decay >= 0; all finite).
void validate(const TrainSettings& settings);

// One line for logs and provenance: "epochs=4,batch=128,lr=0.05,momentum=0.9,wd=0.0005,
// augment=no,seed=0,schedule=cosine".
std::string describe(const TrainSettings& settings);

struct TrainResult {
  std::string checkpoint;  // the state dict written ("" when nothing was written)
  // Accuracy on the training batches of the last epoch as the model saw them during that epoch
  // (train mode, augmented if augmenting): what a training loop prints. NaN when the model was
  // not trained here (an existing ensemble member).
  double train_accuracy = std::numeric_limits<double>::quiet_NaN();
  // Accuracy on the validation set in eval mode after training; NaN without one.
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;  // wall time of loading, training and evaluation
  // Training examples per second of the training steps alone (0 when not trained here).
  double examples_per_second = 0;
  bool reused = false;  // train_ensemble kept an existing checkpoint
};

// Loads `architecture` (TorchScript), initialises its parameters from settings.seed, trains it
// on `train` and returns it in eval mode; with `val`, measures its accuracy there. Nothing is
// written. `train` and `val` are stored images (N x H x W x C uint8 or N x C x H x W float32)
// turned into model input by `prep` batch by batch. Reports progress per batch and checks for
// cancellation between batches (throws Cancelled). Sets LibTorch's thread count to
// settings.threads and seeds LibTorch's global generator (used by dropout).
// Throws InputError for an unreadable architecture, bad settings, inputs the model cannot take,
// or labels that are not below the model's number of outputs.
//
// Initialisation (deterministic from the seed, the same on every platform): every Conv1d/2d/3d,
// ConvTranspose and Linear layer as PyTorch's reset_parameters() does it, weight
// ~ U(-b, b) with b = 1 / sqrt(fan_in) (kaiming_uniform_ with a = sqrt(5)) and bias
// ~ U(-b, b); BatchNorm and LayerNorm get weight 1, bias 0 and fresh running statistics.
// Parameters of other module types keep the architecture file's values. With settings.init,
// every parameter and buffer comes from that checkpoint instead (TorchModel::load's rules; an
// InputError names the checkpoint when it does not fit the architecture).
TorchModel train_torch_model(const std::string& architecture, const ImageDataset& train,
                             const ImageDataset* val, const Preprocessing& prep,
                             const TrainSettings& settings, Progress& progress,
                             TrainResult* result = nullptr);

// train_torch_model, then the trained state dict written to `out_checkpoint` with
// TorchModel::save_state_dict (atomic). Nothing is written when cancelled or failing.
TrainResult train_model(const std::string& architecture, const ImageDataset& train,
                        const ImageDataset* val, const Preprocessing& prep,
                        const TrainSettings& settings, const std::string& out_checkpoint,
                        Progress& progress);

// <out_dir>/<name_prefix>_<m>.pt
std::string ensemble_checkpoint_path(const std::string& out_dir, const std::string& name_prefix,
                                     int m);

// Trains `models` models, model m with seed settings.seed + m, into
// ensemble_checkpoint_path(out_dir, name_prefix, m) (out_dir is created if missing). Resumable:
// a model whose checkpoint exists is not trained again; its result has reused = true and the
// validation accuracy of the existing checkpoint. A cancel loses at most the model in flight.
std::vector<TrainResult> train_ensemble(const std::string& architecture, const ImageDataset& train,
                                        const ImageDataset* val, const Preprocessing& prep,
                                        const TrainSettings& settings, int models,
                                        const std::string& out_dir, const std::string& name_prefix,
                                        Progress& progress);

}  // namespace modeldiff::core
