"""ModelDiff Studio's Python API: the calls of the reference package ``modeldiff``
(MadryLab, 1.0.1) computed by the project's C++ core.

    from modeldiff import ModelDiff

    md = ModelDiff()
    diff_ab = md.get_A_minus_B_from_scores(scoresA, scoresB, num_pca_comps=2)
    diff_ba = md.get_B_minus_A_from_scores(scoresA, scoresB, num_pca_comps=2)

Scores are T x N matrices (row = target/validation example, column = training example), as
numpy arrays or torch tensors. From models, checkpoints and data loaders (TRAK scores by the
core, as `modeldiff trak` computes them):

    md = ModelDiff(modelA, modelB, ckptsA, ckptsB, train_loader)
    diff_ab = md.get_A_minus_B(val_loader, num_pca_comps=2)
    md.save("result")          # then: modeldiff-gui result
"""
import operator
import pathlib

import numpy as np
import torch

from ._modeldiff import InputError, __version__
from ._modeldiff import model_diff as _model_diff

__all__ = ["ModelDiff", "InputError", "__version__"]


# Score files have no checkpoints to split: the reason a from-scores result gives.
_NO_HALVES = ("not computed: scores have no checkpoints to split; pass each algorithm's "
              "half-ensemble scores (halves_A=[(A1, A2), ...], halves_B=[(B1, B2), ...], one "
              "pair per split, e.g. from modeldiff trak --halves)")


def _half_pair(pair, name):
    """(half 1, half 2) of one split as float32 C-contiguous numpy arrays."""
    try:
        first, second = pair
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a (half 1, half 2) pair of T x N score "
                         f"matrices") from None
    return (_to_core_input(first, f"{name} half 1")[0],
            _to_core_input(second, f"{name} half 2")[0])


def _significance(core, flip):
    """The significance of one direction set (flip: B minus A) from the core's result."""
    out = {key: core[key] for key in ("computed", "reason", "rule", "splits")}
    if core["computed"]:
        out.update(core["b_minus_a" if flip else "a_minus_b"])
    return out


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

    The reference ``modeldiff.ModelDiff``'s signature: models (``nn.Module``s as written, or
    ``torch.jit.ScriptModule``s), their checkpoints (state dicts in memory, or paths of
    ``torch.save``'d files, possibly nested under 'model'/'state_dict' or with DataParallel's
    'module.' prefix), a training ``DataLoader`` yielding ``(inputs, labels)`` batches in a
    fixed order (shuffle=False), and the folder for cached features. ``ModelDiff()`` without
    models serves the ``*_from_scores`` calls.

    Each model is scripted (``torch.jit.script``), or traced with the first training batch when
    scripting fails; every checkpoint is loaded into it strictly here, so a checkpoint of
    another model is a ValueError naming it and the missing, unexpected and mis-shaped keys.
    The training loader is read once here (its batches' format, size and fingerprint).
    ``get_A_minus_B(val_loader, ...)`` then computes both algorithms' TRAK scores with the C++
    core (the numbers of ``modeldiff trak`` on the same models and data), streaming each
    loader batch by batch, and caches each checkpoint's features under ``scores_save_dir``
    (None: no cache) by content, so a rerun resumes and Ctrl-C (KeyboardInterrupt) loses at
    most the checkpoint in flight.

    Our settings, keyword-only:

    TRAK (as ``modeldiff trak``'s options): proj_dim (2048), projection ('structured', or
        'dense'), seed (0; also seeds the randomised PCA solver), lambda_ (0, the kernel's
        ridge term), out_to_loss (False: Q = 1; True scales training columns by 1 - p_y as
        traker does), device ('cpu', 'cuda', 'cuda:N'), params (None = every trainable
        parameter, or glob patterns such as 'layer4.*,fc.*' or a list of them),
        skip_normalization (False; True leaves BatchNorm/LayerNorm parameters out),
        batch_size (256, examples per featurizer batch within a loader's batch), progress
        (True: tqdm when importable, else one line per step on stderr; False: silent).
    ModelDiff: normalize_rows (default True, as the ``modeldiff diff`` CLI and the paper):
        scale each row of A's and B's scores to unit L2 norm before the residual. False
        computes the residual on raw rows, as the reference package does, and reproduces its
        numbers. top_k: number of training indices per direction under the result's
        'top_train'. solver: PCA solver, 'auto' (exact for small inputs, randomised block
        Krylov for large), 'exact' or 'randomized'.
    save_dir: where each get_* call writes its result folder (as ``save``); None: nowhere.
    """

    def __init__(self, modelA=None, modelB=None, modelA_ckpts=[], modelB_ckpts=[],
                 train_loader=None, scores_save_dir="./modeldiff_scores", *,
                 proj_dim=2048, projection="structured", seed=0, lambda_=0.0,
                 out_to_loss=False, normalize_rows=True, device="cpu", params=None,
                 skip_normalization=False, batch_size=256, progress=True, top_k=10,
                 solver="auto", save_dir=None):
        self.modelA, self.modelB = modelA, modelB
        self.modelA_ckpts, self.modelB_ckpts = modelA_ckpts, modelB_ckpts
        self.train_loader = train_loader
        self.scores_save_dir = None if scores_save_dir is None else pathlib.Path(scores_save_dir)
        self.normalize_rows = bool(normalize_rows)
        self.seed = operator.index(seed)
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"seed must be in [0, 2**64) (found {seed})")
        self.top_k = operator.index(top_k)
        self.solver = solver
        self.save_dir = save_dir
        self._last = None  # what save() writes: the last get_* call's scores and settings
        self._target = None  # the validation loader's data of the last TRAK scores
        self._scores_memo = {}
        self._halves = None  # per algorithm, its half ensembles or why there are none
        self._models = None
        given = [name for name, value in (("modelA", modelA), ("modelB", modelB),
                                          ("modelA_ckpts", modelA_ckpts),
                                          ("modelB_ckpts", modelB_ckpts),
                                          ("train_loader", train_loader))
                 if value is not None and not (isinstance(value, (list, tuple)) and not value)]
        if not given:
            return
        missing = [name for name, value in (("modelA", modelA), ("modelB", modelB),
                                            ("train_loader", train_loader))
                   if value is None]
        if missing:
            raise ValueError(f"ModelDiff: {', '.join(missing)} missing; TRAK scores need both "
                             f"models, their checkpoints and the training loader (or use "
                             f"ModelDiff().get_A_minus_B_from_scores)")
        from . import _trak_scores  # LibTorch is loaded only for the TRAK half
        from . import _trak
        if isinstance(params, (list, tuple)):
            params = ",".join(params)
        settings = _trak.Settings(proj_dim=operator.index(proj_dim), seed=self.seed,
                                  projection=projection, lambda_=float(lambda_),
                                  out_to_loss=bool(out_to_loss),
                                  batch_size=operator.index(batch_size), device=str(device),
                                  params=params or "",
                                  skip_normalization=bool(skip_normalization))
        # What the features depend on (lambda_ and out_to_loss apply to the ensemble).
        settings_key = f"{proj_dim}|{self.seed}|{projection}|{params or ''}|{skip_normalization}"
        self._train = _trak_scores.LoaderData(train_loader, "train_loader")
        self._models = [_trak_scores.PreparedModel(model, ckpts, label,
                                                   self._train.first_batch)
                        for model, ckpts, label in ((modelA, modelA_ckpts, "A"),
                                                    (modelB, modelB_ckpts, "B"))]
        self._scorer = _trak_scores.TrakScorer(settings, settings_key, float(lambda_),
                                               bool(out_to_loss), self.scores_save_dir,
                                               bool(progress), operator.index(batch_size))

    def get_A_minus_B(self, val_loader, num_pca_comps, *, normalize_rows=None):
        """Directions important for algorithm A but not for B, from both algorithms' TRAK
        scores on `val_loader`'s examples (rows) against the training loader's (columns).

        The dict of get_A_minus_B_from_scores; 'scores' holds A's and B's T x N TRAK scores
        (torch float32). Scores computed for a loader are kept, so get_B_minus_A on the same
        data does not compute them again.
        """
        scores = self._trak(val_loader)
        return self._compare(scores, num_pca_comps, normalize_rows, flip=False,
                             source=("TRAK scores of modelA", "TRAK scores of modelB"),
                             halves=self._halves)

    def get_B_minus_A(self, val_loader, num_pca_comps, *, normalize_rows=None):
        """Directions important for algorithm B but not for A; the labelling of
        get_B_minus_A_from_scores ('A' = B's scores, the algorithm whose directions these
        are)."""
        scores = self._trak(val_loader)
        return self._compare(scores, num_pca_comps, normalize_rows, flip=True,
                             source=("TRAK scores of modelA", "TRAK scores of modelB"),
                             halves=self._halves)

    def trak_scores(self, val_loader):
        """(A's, B's) T x N TRAK scores (torch float32, row = validation example, column =
        training example) on `val_loader`, as get_A_minus_B computes them."""
        return self._trak(val_loader)

    def save(self, result_dir):
        """Writes the last get_* call's result as the folder `modeldiff diff` writes (diff.h5,
        summary.json), and, for TRAK scores of image loaders, as the run folder
        `modeldiff run` writes around it (run.json, the loaders' images and labels under
        data/, the scores under scores/, the comparison under diff/), so that
        `modeldiff-gui result_dir` opens it with its images. Replaces result_dir whole.
        Returns its absolute path.
        """
        if self._last is None:
            raise ValueError("nothing to save yet: call get_A_minus_B (or another get_*) first")
        from . import _result_folder
        array_a, array_b, options, target = self._last
        reports = self._scorer.reports if target is not None else None
        return _result_folder.write(result_dir, (array_a, array_b), options,
                                    train=self._train if target is not None else None,
                                    target=target, reports=reports)

    def _trak(self, val_loader):
        if self._models is None:
            raise ValueError("this ModelDiff was made without models: pass modelA, modelB, "
                             "their checkpoints and train_loader, or use "
                             "get_A_minus_B_from_scores(scoresA, scoresB, num_pca_comps)")
        from . import _trak_scores
        target = _trak_scores.LoaderData(val_loader, "val_loader")
        if target.fingerprint not in self._scores_memo:
            scores = tuple(torch.from_numpy(self._scorer.scores(model, self._train, target))
                           for model in self._models)
            halves = tuple(self._scorer.halves[model.label] for model in self._models)
            self._scores_memo = {target.fingerprint: (scores, halves)}
        self._target = target
        scores, self._halves = self._scores_memo[target.fingerprint]
        return scores

    def get_A_minus_B_from_scores(self, scoresA, scoresB, num_pca_comps, *, normalize_rows=None,
                                  halves_A=None, halves_B=None):
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
                        'variances' and 'scores' holds,
          'significance' whether each direction stands above seed noise (README "Is a
                        direction real?"): 'computed', 'reason' (why not), 'rule', 'splits'
                        and, when computed, per direction 'verdict', 'above_noise_floor',
                        'noise_floor', 'half_explained_variance', 'null_explained_variance',
                        'floor_ratio', 'reproducibility', 'reproducibility_std',
                        'rank_stable', 'full_match'. get_A_minus_B computes it from the
                        half ensembles of 4 or more checkpoints per model at no extra TRAK
                        cost; here it needs halves_A and halves_B: per algorithm, one
                        (half 1, half 2) pair of T x N scores of disjoint halves of its
                        checkpoints per split (`modeldiff trak --halves` writes three).
        Raises ValueError (modeldiff.InputError) naming the problem for bad input: shapes that
        differ, not 2-D, NaN or Inf, an all-zero row, num_pca_comps outside
        1..min(T, N).
        """
        return self._compare_from_scores(scoresA, scoresB, num_pca_comps, normalize_rows,
                                         flip=False, halves=(halves_A, halves_B))

    def get_B_minus_A_from_scores(self, scoresA, scoresB, num_pca_comps, *, normalize_rows=None,
                                  halves_A=None, halves_B=None):
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
                                         flip=True, halves=(halves_A, halves_B))

    def _compare_from_scores(self, scoresA, scoresB, num_pca_comps, normalize_rows, flip,
                             halves):
        """flip: B minus A (the reference's labelling, see get_B_minus_A_from_scores)."""
        self._target = None
        if (halves[0] is None) != (halves[1] is None):
            raise InputError("halves_A and halves_B: the significance of directions needs the "
                             "half ensembles of both algorithms (one (half 1, half 2) pair of "
                             "T x N scores per split each)")
        if halves[0] is None:
            halves = (_NO_HALVES, _NO_HALVES)
        else:
            halves = tuple(([_half_pair(p, f"{name} split {i + 1}")
                             for i, p in enumerate(h)], None)
                           for h, name in zip(halves, ("halves_A", "halves_B")))
        return self._compare((scoresA, scoresB), num_pca_comps, normalize_rows, flip,
                             source=("scoresA", "scoresB"), halves=halves)

    def _compare(self, scores, num_pca_comps, normalize_rows, flip, source, halves):
        array_a, tensor_a = _to_core_input(scores[0], source[0])
        array_b, tensor_b = _to_core_input(scores[1], source[1])
        if normalize_rows is None:
            normalize_rows = self.normalize_rows
        options = dict(components=_component_count(num_pca_comps),
                       normalize_rows=bool(normalize_rows), top_k=self.top_k,
                       solver=self.solver, seed=self.seed, source_a=source[0],
                       source_b=source[1])
        reasons = [h for h in halves if isinstance(h, str)]
        if reasons:
            options["significance_reason"] = reasons[0]
        else:
            (pairs_a, sizes_a), (pairs_b, sizes_b) = halves
            options.update(halves_a=pairs_a, halves_b=pairs_b,
                           half_checkpoints_a=sizes_a or [], half_checkpoints_b=sizes_b or [])
        core = _model_diff(array_a, array_b, **options)
        self._last = (array_a, array_b, options, self._target)
        if self.save_dir is not None:
            self.save(self.save_dir)
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
            "significance": _significance(core["significance"], flip),
        }
