"""ModelDiff Studio's Python API: the calls of the reference package ``modeldiff``
(MadryLab, 1.0.1) computed by the project's C++ core.

    from modeldiff import ModelDiff

    md = ModelDiff()
    diff_ab = md.get_A_minus_B_from_scores(scoresA, scoresB, num_pca_comps=2)
    diff_ba = md.get_B_minus_A_from_scores(scoresA, scoresB, num_pca_comps=2)

Scores are T x N matrices (row = target/validation example, column = training example), as
numpy arrays or torch tensors. Computing the scores from models and data loaders (TRAK, the
reference's ``get_A_minus_B(val_loader, ...)``) is not in this version yet.
"""
import operator
import pathlib

import numpy as np
import torch

from ._modeldiff import InputError, __version__
from ._modeldiff import model_diff as _model_diff

__all__ = ["ModelDiff", "InputError", "__version__"]


def _to_core_input(scores, name):
    """(float32 C-contiguous numpy T x N for the core, the torch tensor for 'scores').

    Numpy input that is already float32 and C-contiguous is used as it is, and the tensor
    shares its memory; anything else is converted once. A torch tensor is returned as it was
    given (the reference returns its inputs under 'scores').
    """
    if torch.is_tensor(scores):
        if scores.is_complex():
            raise ValueError(f"{name}: scores must be real numbers (found {scores.dtype})")
        array = scores.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        return array, scores
    array = np.asarray(scores)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: scores must be real numbers (found dtype {array.dtype})")
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array, torch.from_numpy(array)


def _component_count(num_pca_comps):
    try:
        return operator.index(num_pca_comps)
    except TypeError:
        raise ValueError(f"num_pca_comps must be a whole number of components "
                         f"(found {num_pca_comps!r})") from None


class ModelDiff:
    """Distinguishing training directions of two learning algorithms A and B.

    Signature of the reference ``modeldiff.ModelDiff``; our settings are keyword-only:

    normalize_rows (default True, as the ``modeldiff diff`` CLI and the paper): scale each row
        of A's and B's scores to unit L2 norm before the residual. False computes the residual
        on raw rows, as the reference package does, and reproduces its numbers.
    seed: seed of the randomised PCA solver (large inputs).
    top_k: number of training indices per direction under the result's 'top_train'.
    solver: PCA solver, 'auto' (exact for small inputs, randomised block Krylov for large),
        'exact' or 'randomized'.

    The models, checkpoints, train_loader and scores_save_dir (the reference's TRAK half) are
    not supported yet: passing a model, checkpoint or loader raises NotImplementedError.
    """

    def __init__(self, modelA=None, modelB=None, modelA_ckpts=[], modelB_ckpts=[],
                 train_loader=None, scores_save_dir="./modeldiff_scores", *,
                 normalize_rows=True, seed=0, top_k=10, solver="auto"):
        given = [name for name, value in (("modelA", modelA), ("modelB", modelB),
                                          ("modelA_ckpts", modelA_ckpts),
                                          ("modelB_ckpts", modelB_ckpts),
                                          ("train_loader", train_loader))
                 if value is not None and not (isinstance(value, (list, tuple)) and not value)]
        if given:
            raise NotImplementedError(
                f"ModelDiff({', '.join(given)}): computing TRAK scores from models is not in "
                f"this version of modeldiff yet; compute the scores first (e.g. `modeldiff trak`) "
                f"and call ModelDiff().get_A_minus_B_from_scores(scoresA, scoresB, num_pca_comps)")
        self.modelA, self.modelB = modelA, modelB
        self.modelA_ckpts, self.modelB_ckpts = modelA_ckpts, modelB_ckpts
        self.train_loader = train_loader
        self.scores_save_dir = pathlib.Path(scores_save_dir)
        self.normalize_rows = bool(normalize_rows)
        self.seed = operator.index(seed)
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64) (found {seed})")
        self.top_k = operator.index(top_k)
        self.solver = solver

    def get_A_minus_B_from_scores(self, scoresA, scoresB, num_pca_comps, *, normalize_rows=None):
        """Directions important for algorithm A but not for B, from T x N scores.

        scoresA, scoresB: T x N numpy arrays or torch tensors (row = target example, column =
        training example), over the same examples. normalize_rows: None = the constructor's.

        Returns a dict with the reference's keys and types:
          'directions'  numpy float32 C x N, unit rows, in training-set space; the sign of
                        each is chosen so that its largest projection (in absolute value) is
                        positive,
          'projections' numpy float32 T x C, the centred residual's projections on them,
          'variances'   {'A': numpy float32 C, 'B': numpy float32 C}: variance of the scores
                        passed as scoresA (scoresB), rows scaled to unit norm and centred,
                        along each direction (mean of squares over the T targets),
          'scores'      {'A': scoresA, 'B': scoresB} as torch tensors (a tensor argument is
                        returned as it was given),
        and our extras:
          'explained_variance' numpy float64 C, the residual's variance along each direction
                        (ddof = 1),
          'top_train'   numpy int64 C x top_k, the training indices with the largest loadings
                        of each direction (ties to the lower index),
          'cosine_ab'   numpy float32 T, cosine similarity of A's and B's row for each target,
          'algorithms'  {'A': 'A', 'B': 'B'}: which argument ('A' = scoresA) each key of
                        'variances' and 'scores' holds.
        Raises ValueError (modeldiff.InputError) naming the problem for bad input: shapes that
        differ, not 2-D, NaN or Inf, an all-zero row, num_pca_comps outside
        1..min(T, N).
        """
        return self._compare_from_scores(scoresA, scoresB, num_pca_comps, normalize_rows,
                                         flip=False)

    def get_B_minus_A_from_scores(self, scoresA, scoresB, num_pca_comps, *, normalize_rows=None):
        """Directions important for algorithm B but not for A, from T x N scores.

        The same dict as get_A_minus_B_from_scores. Labelling, as the reference package's: the
        keys of 'variances' and 'scores' name the position in the difference, not the
        argument: 'A' is the algorithm whose directions these are (here B, the first term of
        B minus A), 'B' the one subtracted (here A). So
            'variances' == {'A': variance of scoresB, 'B': variance of scoresA},
            'scores'    == {'A': scoresB, 'B': scoresA},
            'algorithms' == {'A': 'B', 'B': 'A'},
        and the result equals get_A_minus_B_from_scores(scoresB, scoresA, ...), the reference
        README's other spelling of B minus A. Code written for the reference (its
        api_example notebook reads A's variance of B minus A as diff_ba['variances']['B'])
        gives the same numbers here.
        """
        return self._compare_from_scores(scoresA, scoresB, num_pca_comps, normalize_rows,
                                         flip=True)

    def _compare_from_scores(self, scoresA, scoresB, num_pca_comps, normalize_rows, flip):
        """flip: B minus A (the reference's labelling, see get_B_minus_A_from_scores)."""
        array_a, tensor_a = _to_core_input(scoresA, "scoresA")
        array_b, tensor_b = _to_core_input(scoresB, "scoresB")
        if normalize_rows is None:
            normalize_rows = self.normalize_rows
        core = _model_diff(array_a, array_b, components=_component_count(num_pca_comps),
                           normalize_rows=bool(normalize_rows), top_k=self.top_k,
                           solver=self.solver, seed=self.seed, source_a="scoresA",
                           source_b="scoresB")
        return self._result(core, (tensor_a, tensor_b), flip)

    @staticmethod
    def _result(core, tensors, flip):
        """The reference's dict (plus our extras) from the core's result for A (tensors[0])
        and B (tensors[1])."""
        directions = core["b_minus_a" if flip else "a_minus_b"]
        variances = (directions["variance_a"], directions["variance_b"])
        first, second = (1, 0) if flip else (0, 1)
        return {
            "directions": directions["directions"],
            "projections": directions["projections"],
            "variances": {"A": variances[first].astype(np.float32),
                          "B": variances[second].astype(np.float32)},
            "scores": {"A": tensors[first], "B": tensors[second]},
            "explained_variance": directions["explained_variance"],
            "top_train": directions["top_train"],
            "cosine_ab": core["cosine_ab"],
            "algorithms": {"A": "AB"[first], "B": "AB"[second]},
        }
