#include "core/trak/detail/featurizer.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <optional>
#include <thread>

#include "core/base/error.h"
#include "core/base/threads.h"

namespace modeldiff::core::detail {
namespace {

// Examples per forward and backward pass: small enough that a batch's activations stay in
// cache (2x faster per example than 256 on the demo CNN), large enough that each op's call is
// worth its dispatch.
constexpr std::int64_t kCaptureBatch = 32;

// While the workers run: LibTorch and the BLAS on one thread, restored afterwards.
class SingleThreadedKernels {
 public:
  SingleThreadedKernels() : torch_(at::get_num_threads()), compute_(compute_threads()) {
    at::set_num_threads(1);
    set_compute_threads(1);
  }
  ~SingleThreadedKernels() {
    set_compute_threads(compute_);
    at::set_num_threads(torch_);
  }
  SingleThreadedKernels(const SingleThreadedKernels&) = delete;
  SingleThreadedKernels& operator=(const SingleThreadedKernels&) = delete;

 private:
  int torch_, compute_;
};

}  // namespace

CheckpointFeaturizer::CheckpointFeaturizer(torch::jit::Module model, std::string name,
                                           const TrakSettings& settings, int checkpoint,
                                           const ParamSelection& selection)
    : model_(std::move(model)),
      name_(std::move(name)),
      settings_(settings),
      selection_(selection),
      graph_(model_, name_, selection),
      frozen_(graph_.left_out()),
      projector_(graph_, settings_, checkpoint) {
  for (const auto& p : model_.parameters()) {
    device_ = p.device();
    break;
  }
  if (!device_.is_cpu()) projector_.to(device_);
}

CheckpointFeaturizer::~CheckpointFeaturizer() = default;

void CheckpointFeaturizer::featurize_batch(const GraphGradients& graph, const torch::Tensor& inputs,
                                           const torch::Tensor& labels, std::int64_t begin,
                                           std::int64_t size, Features& out,
                                           std::mutex& logits_mutex) const {
  const bool dense = projector_.kind() == ProjectionKind::kDense;
  // The dense projection multiplies the whole batch's flat gradients at once (a large GEMM
  // runs at the machine's peak); the passes run on sub-batches whose activations stay in cache.
  torch::Tensor flat;
  if (dense)
    flat = torch::empty({size, projector_.num_params()},
                        torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  for (std::int64_t sub = 0; sub < size; sub += kCaptureBatch) {
    const std::int64_t count = std::min(kCaptureBatch, size - sub);
    torch::Tensor x = inputs.narrow(0, begin + sub, count).to(device_);
    if (layout_ == Layout::kChannelsLast)  // not contiguous(): with one channel it keeps NCHW
      x = torch::empty(x.sizes(), x.options().memory_format(torch::MemoryFormat::ChannelsLast))
              .copy_(x);
    const torch::Tensor y = labels.narrow(0, begin + sub, count).to(device_, torch::kLong);
    const Captured g = graph.capture(x, y);
    torch::NoGradGuard no_grad;
    if (dense)
      flat.narrow(0, sub, count).copy_(graph.flat(g));
    else
      out.features.narrow(0, begin + sub, count).copy_(projector_.project(graph, g));
    const torch::Tensor p = torch::softmax(g.logits, 1).gather(1, y.unsqueeze(1)).squeeze(1);
    out.out_to_loss.narrow(0, begin + sub, count).copy_(1.0f - p);
    const std::lock_guard<std::mutex> lock(logits_mutex);
    if (!out.logits.defined())
      out.logits = torch::empty({out.features.size(0), g.logits.size(1)}, torch::kFloat32);
    out.logits.narrow(0, begin + sub, count).copy_(g.logits);
  }
  if (dense) {
    torch::NoGradGuard no_grad;
    torch::Tensor target = out.features.narrow(0, begin, size);
    if (device_.is_cpu())
      torch::mm_out(target, flat, projector_.dense_matrix());
    else
      target.copy_(flat.mm(projector_.dense_matrix()));
  }
}

Features CheckpointFeaturizer::run(const torch::Tensor& inputs, const torch::Tensor& labels,
                                   Progress& progress) {
  const std::int64_t n = inputs.size(0);
  if (labels.dim() != 1 || labels.size(0) != n)
    throw InputError(name_, "labels do not match the inputs")
        .expected(std::to_string(n) + " labels")
        .found(std::to_string(labels.numel()));
  Features out;
  out.features = torch::empty({n, projector_.dim()}, torch::kFloat32);
  out.out_to_loss = torch::empty({n}, torch::kFloat32);
  const bool dense = projector_.kind() == ProjectionKind::kDense;
  // Structured features are projected per pass; the dense projection per batch.
  const std::int64_t batch = dense
                                 ? std::max(1, settings_.batch_size)
                                 : std::clamp<std::int64_t>(settings_.batch_size, 1, kCaptureBatch);
  const std::int64_t batches = (n + batch - 1) / batch;
  const auto workers = static_cast<std::size_t>(
      device_.is_cpu() ? std::clamp<std::int64_t>(at::get_num_threads(), 1, batches) : 1);
  while (worker_graphs_.size() + 1 < workers)
    worker_graphs_.push_back(std::make_unique<GraphGradients>(model_, name_, selection_));

  std::optional<SingleThreadedKernels> single;  // from here on, with several workers
  if (workers > 1) single.emplace();
  std::mutex error_mutex, logits_mutex;
  std::int64_t first = 0;  // examples done before the workers start
  progress.throw_if_cancelled();
  if (layout_ == Layout::kUntried) {
    layout_ = inputs.dim() == 4 && device_.is_cpu() ? Layout::kChannelsLast : Layout::kAsGiven;
    if (layout_ == Layout::kChannelsLast) {
      first = std::min(batch, n);
      try {
        featurize_batch(graph_, inputs, labels, 0, first, out, logits_mutex);
      } catch (const std::exception&) {  // e.g. a view(); a real error comes back below
        layout_ = Layout::kAsGiven;
        featurize_batch(graph_, inputs, labels, 0, first, out, logits_mutex);
      }
    }
  }
  std::atomic<std::int64_t> next{first}, done{first};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  // Takes batches until none is left; the first exception stops every worker.
  const auto work = [&](const GraphGradients& graph, bool reports) {
    try {
      while (!stop) {
        if (reports) progress.throw_if_cancelled();
        const std::int64_t begin = next.fetch_add(batch);
        if (begin >= n) break;
        const std::int64_t size = std::min(batch, n - begin);
        featurize_batch(graph, inputs, labels, begin, size, out, logits_mutex);
        const std::int64_t finished = done += size;
        if (reports)
          progress.report(static_cast<double>(finished) / static_cast<double>(n),
                          "featurizing " + std::to_string(finished) + "/" + std::to_string(n));
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  if (workers == 1) {
    work(graph_, true);
  } else {
    // A thread's first LibTorch call initialises its thread settings, which replaces
    // LibTorch's shared pthreadpool (that NNPACK's convolutions use without a lock): every
    // worker makes that call first, and none takes a batch before all have.
    std::mutex start_mutex;
    std::condition_variable start;
    std::size_t ready = 0, started = workers;  // `started`: known once every thread runs
    const auto wait_for_all = [&](std::unique_lock<std::mutex>& lock) {
      start.wait(lock, [&] { return started < workers && ready == started; });
    };
    std::vector<std::thread> threads;
    try {
      for (std::size_t w = 1; w < workers; ++w)
        threads.emplace_back([&, w] {
          at::set_num_threads(1);       // this thread's OpenMP setting
          (void)at::get_num_threads();  // and LibTorch's own per-thread initialisation
          std::unique_lock<std::mutex> lock(start_mutex);
          ++ready;
          start.notify_all();
          wait_for_all(lock);
          lock.unlock();
          work(*worker_graphs_[w - 1], false);
        });
    } catch (...) {  // no thread for the rest: those started stop at once
      stop = true;
      error = std::current_exception();
    }
    {
      std::unique_lock<std::mutex> lock(start_mutex);
      started = threads.size();
      start.notify_all();
      wait_for_all(lock);
    }
    work(graph_, true);  // this thread reports progress and notices a cancel
    for (std::thread& t : threads) t.join();
  }
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace modeldiff::core::detail
