"""What a user of the reference `modeldiff` package runs for ModelDiff from scores, for
bench_diff to time beside `modeldiff diff` in the same run.

    reference_residual_pca.py A.npy B.npy COMPONENTS OUT_DIR

The package's `residual_pca(scores_A, scores_B, num_pca_comps)` (its modeldiff/pca.py),
written again from its documented behaviour: the residual of each raw row of A against the
same row of B (numpy), scikit-learn's PCA with its default solver choice (randomised SVD at
these sizes) and `fit_transform`, then the variance of row-normalised, centred A and B along
the directions (torch, on the CPU). Both A minus B and B minus A, as a user calls both. The
inputs are loaded first and not timed; the time printed is that of the two calls. Writes
OUT_DIR/reference_directions.npy (2C x N: A-B's, then B-A's) and prints one JSON line.
"""
import json
import resource
import sys
import time

import numpy as np
import torch
from sklearn.decomposition import PCA


def residual(first, second):
    num = np.multiply(first, second).sum(axis=1)
    den = np.multiply(second, second).sum(axis=1)
    return first - np.multiply((num / den).reshape(-1, 1), second)


def variance_along(x, directions):
    x = torch.from_numpy(x).float()
    x = x / x.norm(dim=1).view(-1, 1)
    x = x - x.mean(axis=0)
    xw = torch.mm(x, torch.from_numpy(directions).float().T)
    return (xw * xw).sum(axis=0) / float(len(x))


def residual_pca(first, second, components):
    pca = PCA(n_components=components)
    projections = pca.fit_transform(residual(first, second))
    directions = pca.components_
    variances = {"A": variance_along(first, directions), "B": variance_along(second, directions)}
    return directions, projections, variances


def main():
    a_path, b_path, components, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    a = np.load(a_path)
    b = np.load(b_path)
    start = time.perf_counter()
    a_minus_b = residual_pca(a, b, components)
    b_minus_a = residual_pca(b, a, components)
    seconds = time.perf_counter() - start
    np.save(f"{out}/reference_directions.npy",
            np.concatenate([a_minus_b[0], b_minus_a[0]]).astype(np.float32))
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
