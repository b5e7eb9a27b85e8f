"""What a user of the reference `traker` package runs for TRAK scores on the CPU, for bench_trak
to time beside `modeldiff trak` in the same run.

    reference_trak.py --arch FILE.py[:FUNCTION] --checkpoints C1.pt [C2.pt ...]
                      --train-images X.npy --train-labels Y.npy
                      --val-images X.npy --val-labels Y.npy --out SCORES.npy
                      [--proj-dim 2048] [--projection gaussian|rademacher|NPY_PREFIX]
                      [--lambda 0] [--out-to-loss] [--batch-size 1024] [--threads 2] [--seed 0]

TRAK's documented math, written again (not traker's code) with the tools its users have:
for each checkpoint m, the model is an nn.Module (FUNCTION() from FILE.py, default
`build_model`, with the checkpoint's state dict loaded, eval mode), and for every example the
gradient of the margin
    f(x, y) = log p_y - log(1 - p_y) = logit_y - logsumexp_{j != y} logit_j
with respect to all parameters comes from functorch's vmap(grad(...)) over a batch. The flat
gradients (parameter order) are projected by a dense p x k random matrix, generated per
checkpoint from seed + m and scaled by 1 / sqrt(p) as `modeldiff trak --projection dense` scales
its Rademacher matrix (so that lambda means the same), batch by batch: Phi_m (N x k) for the
training examples, G_m (T x k) for the targets. Then, as TRAK finalises features and scores,
    K_m = Phi_m^T Phi_m + lambda I                (float64)
    S  += G_m (Phi_m K_m^-1)^T                    (T x N)
    S   = S / M, times diag(mean_m Q_m) with --out-to-loss (Q = 1 - p_y; off by default, as in
          modeldiff trak), where traker would always apply it.
K_m^-1 is applied by a Cholesky solve, or by the pseudo-inverse when K_m is singular.

--projection NPY_PREFIX reads checkpoint m's p x k matrix (unscaled) from NPY_PREFIX<m>.npy
instead of drawing one: with modeldiff's own Rademacher matrices the two must agree to rounding.

Images are N x H x W [x C] uint8 (divided by 255, channels first) or N x C x H x W float32;
labels int64. The default batch of 1024 examples per vmap call is the fastest on the demo CNN
(2 threads: 8.2 s per checkpoint at 128, 6.9 s at 512, 6.6 s at 1024). The inputs and models
are loaded first and not timed; the time printed is that of
the gradients, projections, kernels and scores. Writes the T x N float32 scores and prints one
JSON line: seconds (timed part), featurize_seconds (gradients and projections),
peak_rss_mb, threads.
"""
import argparse
import importlib.util
import json
import resource
import time

import numpy as np
import torch
from functorch import grad, make_functional_with_buffers, vmap


def load_images(path):
    x = np.load(path)
    if x.dtype == np.uint8:
        x = x.reshape(x.shape[0], x.shape[1], x.shape[2], -1).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
    if x.dtype == np.float32 and x.ndim == 4:
        return torch.from_numpy(x)
    raise SystemExit(f"{path}: expected N x H x W [x C] uint8 or N x C x H x W float32 images, "
                     f"found {x.dtype} {x.shape}")


def load_labels(path, n):
    y = torch.from_numpy(np.load(path).astype(np.int64))
    if y.shape != (n,):
        raise SystemExit(f"{path}: expected {n} labels, found shape {tuple(y.shape)}")
    return y


def architecture(spec):
    file, _, function = spec.partition(":")
    loader = importlib.util.spec_from_file_location("architecture", file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return getattr(module, function or "build_model")


class Featurizer:
    """Per-example margin gradients of one checkpoint, projected to k dimensions."""

    def __init__(self, model, projection):
        self.fmodel, params, self.buffers = make_functional_with_buffers(model)
        # functorch differentiates with respect to its own wrappers: no autograd graph is kept.
        self.params = tuple(p.detach() for p in params)
        self.projection = projection

        def margin(params, buffers, x, y):
            logits = self.fmodel(params, buffers, x.unsqueeze(0))[0]
            is_label = torch.arange(logits.shape[0]) == y
            correct = (logits * is_label).sum()
            return correct - logits.masked_fill(is_label, float("-inf")).logsumexp(0)

        self.per_example = vmap(grad(margin), in_dims=(None, None, 0, 0))

    def __call__(self, inputs, labels, batch_size):
        out = torch.empty(inputs.shape[0], self.projection.shape[1])
        for begin in range(0, inputs.shape[0], batch_size):
            x, y = inputs[begin:begin + batch_size], labels[begin:begin + batch_size]
            grads = self.per_example(self.params, self.buffers, x, y)
            flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
            torch.mm(flat, self.projection, out=out[begin:begin + x.shape[0]])
        return out

    def out_to_loss(self, inputs, labels, batch_size):
        q = []
        with torch.no_grad():
            for begin in range(0, inputs.shape[0], batch_size):
                logits = self.fmodel(self.params, self.buffers, inputs[begin:begin + batch_size])
                p = logits.softmax(1).gather(1, labels[begin:begin + batch_size, None])[:, 0]
                q.append(1.0 - p)
        return torch.cat(q)


def projection_matrix(kind, p, k, seed, checkpoint):
    if kind not in ("gaussian", "rademacher"):
        return torch.from_numpy(np.load(f"{kind}{checkpoint}.npy")) / np.sqrt(p)
    g = torch.Generator().manual_seed(seed + checkpoint)
    if kind == "gaussian":
        m = torch.randn(p, k, generator=g)
    else:
        m = torch.randint(0, 2, (p, k), generator=g, dtype=torch.float32).mul_(2).sub_(1)
    return m.div_(np.sqrt(p))


def train_features_times_inverse_kernel(phi, lam):
    """Phi K^-1 (N x k), K = Phi^T Phi + lambda I, in float64."""
    phi = phi.double()
    kernel = phi.T @ phi + lam * torch.eye(phi.shape[1], dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(kernel)
    if info == 0:
        return torch.cholesky_solve(phi.T, factor).T
    return phi @ torch.linalg.pinv(kernel, hermitian=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--checkpoints", nargs="+", required=True)
    ap.add_argument("--train-images", required=True)
    ap.add_argument("--train-labels", required=True)
    ap.add_argument("--val-images", required=True)
    ap.add_argument("--val-labels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--proj-dim", type=int, default=2048)
    ap.add_argument("--projection", default="gaussian")
    ap.add_argument("--lambda", dest="lam", type=float, default=0.0)
    ap.add_argument("--out-to-loss", action="store_true")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    train_x = load_images(args.train_images)
    train_y = load_labels(args.train_labels, train_x.shape[0])
    target_x = load_images(args.val_images)
    target_y = load_labels(args.val_labels, target_x.shape[0])
    build = architecture(args.arch)
    models = []
    for path in args.checkpoints:
        model = build()
        model.load_state_dict(torch.load(path, map_location="cpu"))
        models.append(model.eval())

    start = time.perf_counter()
    featurize = 0.0
    scores = torch.zeros(target_x.shape[0], train_x.shape[0])
    q = torch.zeros(train_x.shape[0])
    for m, model in enumerate(models):
        t0 = time.perf_counter()
        p = sum(t.numel() for t in model.parameters())
        featurizer = Featurizer(model, projection_matrix(args.projection, p, args.proj_dim,
                                                         args.seed, m))
        phi = featurizer(train_x, train_y, args.batch_size)
        g = featurizer(target_x, target_y, args.batch_size)
        featurize += time.perf_counter() - t0
        if args.out_to_loss:
            q += featurizer.out_to_loss(train_x, train_y, args.batch_size)
        phi_inv = train_features_times_inverse_kernel(phi, args.lam).float()
        scores.addmm_(g, phi_inv.T)
    scores /= len(models)
    if args.out_to_loss:
        scores *= q / len(models)
    seconds = time.perf_counter() - start

    np.save(args.out, scores.numpy())
    print(json.dumps({"seconds": seconds, "featurize_seconds": featurize,
                      "threads": torch.get_num_threads(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
