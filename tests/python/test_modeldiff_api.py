"""Tests of the Python package `modeldiff` (CTest runs test_modeldiff_api.py CASE MODELDIFF_EXE).

The package is imported from the build tree (PYTHONPATH=<build>/python). Its from-scores calls
are checked against the reference package's outputs (../shared/fixtures/modeldiff_ref_seed0),
against the `modeldiff diff` CLI, against direct numpy computations of what each key holds,
and for clear ValueErrors on bad input.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import h5py
import numpy as np
import torch

import modeldiff
from modeldiff import ModelDiff

CASE = sys.argv[1]
EXE = sys.argv[2] if len(sys.argv) > 2 else None
SHARED = pathlib.Path(os.environ.get("MODELDIFF_SHARED_FIXTURES", "../shared/fixtures"))
REF = SHARED / "modeldiff_ref_seed0"
A = np.load(REF / "scores_A.npy")
B = np.load(REF / "scores_B.npy")
T, N = A.shape
REFERENCE_KEYS = {"directions", "projections", "variances", "scores"}
EXTRA_KEYS = {"explained_variance", "top_train", "cosine_ab", "algorithms", "significance"}


def rel(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def variance_along(scores, directions):
    """The reference's variance of scores along each direction: rows scaled to unit norm,
    columns centred, mean over targets of the squared projection (float64 here)."""
    x = unit_rows(scores.astype(np.float64))
    x -= x.mean(axis=0)
    return ((x @ directions.astype(np.float64).T) ** 2).mean(axis=0)


def assert_same_result(got, want, what, same_arguments=True):
    """Two results of the same computation on the same float32 scores (same_arguments: and
    the same arguments, so the same 'algorithms')."""
    for key in ("directions", "projections", "explained_variance", "cosine_ab"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5,
                                   atol=1e-6 * np.abs(want[key]).max(), err_msg=f"{what}: {key}")
    for key in ("A", "B"):
        np.testing.assert_allclose(got["variances"][key], want["variances"][key], rtol=1e-5,
                                   err_msg=f"{what}: variances[{key}]")
    np.testing.assert_array_equal(got["top_train"], want["top_train"], err_msg=what)
    if same_arguments:
        assert got["algorithms"] == want["algorithms"], what


def assert_parity(result, name, c=3):
    """|cos| of directions > 0.999, projections (sign-matched) and variances within 1e-3
    relative of the reference's outputs for `name` (A_minus_B or B_minus_A)."""
    ref_dirs = np.load(REF / f"{name}_directions.npy")
    ref_proj = np.load(REF / f"{name}_projections.npy")
    for k in range(c):
        d = result["directions"][k]
        cos = d @ ref_dirs[k] / (np.linalg.norm(d) * np.linalg.norm(ref_dirs[k]))
        assert abs(cos) > 0.999, (name, k, cos)
        assert rel(np.sign(cos) * result["projections"][:, k], ref_proj[:, k]) < 1e-3, (name, k)
    # The reference's 'A' is the first argument of its residual, 'B' the second.
    np.testing.assert_allclose(result["variances"]["A"],
                               np.load(REF / f"{name}_variance_first.npy"), rtol=1e-3)
    np.testing.assert_allclose(result["variances"]["B"],
                               np.load(REF / f"{name}_variance_second.npy"), rtol=1e-3)
    # Our extra: the residual's variance along each direction (ddof = 1), from the
    # reference's residual.
    residual = np.load(REF / f"{name}_residual.npy").astype(np.float64)
    residual -= residual.mean(axis=0)
    want = ((residual @ result["directions"].astype(np.float64).T) ** 2).sum(axis=0) / (T - 1)
    np.testing.assert_allclose(result["explained_variance"], want, rtol=1e-3)


def case_parity_raw_rows():
    md = ModelDiff(normalize_rows=False)
    assert_parity(md.get_A_minus_B_from_scores(A, B, num_pca_comps=3), "A_minus_B")
    assert_parity(md.get_B_minus_A_from_scores(A, B, num_pca_comps=3), "B_minus_A")
    # The per-call keyword overrides the constructor's default (unit-norm rows).
    md = ModelDiff()
    assert_parity(md.get_A_minus_B_from_scores(A, B, 3, normalize_rows=False), "A_minus_B")
    assert_parity(md.get_B_minus_A_from_scores(A, B, 3, normalize_rows=False), "B_minus_A")
    # The reference README's other spelling of B minus A.
    assert_parity(md.get_A_minus_B_from_scores(B, A, 3, normalize_rows=False), "B_minus_A")


def case_result_keys_types_shapes():
    md = ModelDiff(top_k=7)
    for method in (md.get_A_minus_B_from_scores, md.get_B_minus_A_from_scores):
        r = method(torch.from_numpy(A), torch.from_numpy(B), num_pca_comps=2)
        assert set(r) == REFERENCE_KEYS | EXTRA_KEYS, set(r)
        for key, shape in (("directions", (2, N)), ("projections", (T, 2))):
            assert isinstance(r[key], np.ndarray), (key, type(r[key]))
            assert r[key].shape == shape and r[key].dtype == np.float32, (key, r[key].shape)
        assert set(r["variances"]) == {"A", "B"} and set(r["scores"]) == {"A", "B"}
        for key in ("A", "B"):
            v = r["variances"][key]
            assert isinstance(v, np.ndarray) and v.shape == (2,) and v.dtype == np.float32, v
            s = r["scores"][key]
            assert isinstance(s, torch.Tensor) and tuple(s.shape) == (T, N), type(s)
        assert r["explained_variance"].shape == (2,)
        assert r["top_train"].shape == (2, 7) and r["top_train"].dtype == np.int64
        assert r["cosine_ab"].shape == (T,) and r["cosine_ab"].dtype == np.float32
        # Plain score matrices have no checkpoints to split: the reason, not a verdict.
        assert not r["significance"]["computed"] and r["significance"]["reason"], r
        assert "verdict" not in r["significance"]
        # Directions: unit rows, orthogonal; sign such that the largest |projection| is positive.
        d = r["directions"].astype(np.float64)
        np.testing.assert_allclose(d @ d.T, np.eye(2), atol=1e-5)
        p = r["projections"]
        for k in range(2):
            assert p[np.argmax(np.abs(p[:, k])), k] > 0, k
        # top_train: the largest loadings of each direction, in order.
        for k in range(2):
            want = np.argsort(-r["directions"][k], kind="stable")[:7]
            np.testing.assert_array_equal(r["top_train"][k], want)
        np.testing.assert_allclose(r["cosine_ab"], (unit_rows(A) * unit_rows(B)).sum(axis=1),
                                   rtol=1e-5)
    # Numpy input: 'scores' are torch tensors too, sharing the input's memory (float32,
    # C-contiguous input is not copied).
    r = md.get_A_minus_B_from_scores(A, B, 2)
    assert isinstance(r["scores"]["A"], torch.Tensor)
    assert np.shares_memory(r["scores"]["A"].numpy(), A)
    assert np.shares_memory(r["scores"]["B"].numpy(), B)
    assert modeldiff.__version__.count(".") == 2, modeldiff.__version__


def case_b_minus_a_labels():
    """B minus A keeps the reference's labelling: 'A' is the algorithm whose directions these
    are (B), 'B' the one subtracted (A)."""
    md = ModelDiff()
    ta, tb = torch.from_numpy(A), torch.from_numpy(B)
    ab = md.get_A_minus_B_from_scores(ta, tb, 3)
    ba = md.get_B_minus_A_from_scores(ta, tb, 3)
    assert ab["algorithms"] == {"A": "A", "B": "B"}, ab["algorithms"]
    assert ba["algorithms"] == {"A": "B", "B": "A"}, ba["algorithms"]
    assert ab["scores"]["A"] is ta and ab["scores"]["B"] is tb
    assert ba["scores"]["A"] is tb and ba["scores"]["B"] is ta
    # What each key holds, computed directly from the scores.
    for r, first, second in ((ab, A, B), (ba, B, A)):
        np.testing.assert_allclose(r["variances"]["A"], variance_along(first, r["directions"]),
                                   rtol=1e-4)
        np.testing.assert_allclose(r["variances"]["B"], variance_along(second, r["directions"]),
                                   rtol=1e-4)
    # The planted subpopulations are A-only: along A minus B, A's variance dominates.
    assert np.all(ab["variances"]["A"] > 2 * ab["variances"]["B"]), ab["variances"]
    # Both of the reference's spellings of B minus A give the same result; 'algorithms' names
    # the arguments, so there it says that 'A' holds the argument scoresA (here B's scores).
    readme = md.get_A_minus_B_from_scores(tb, ta, 3)
    assert_same_result(readme, ba, "A_minus_B(B, A)", same_arguments=False)
    assert readme["scores"]["A"] is tb and readme["algorithms"] == {"A": "A", "B": "B"}
    # Here B's residual against A is nearly the negative of A's against B (the planted groups
    # are A's alone), so along B minus A it is A, under 'B', whose variance dominates.
    assert np.all(ba["variances"]["B"] > ba["variances"]["A"]), ba["variances"]


def case_torch_equals_numpy():
    md = ModelDiff()
    for flip, method in ((False, md.get_A_minus_B_from_scores),
                         (True, md.get_B_minus_A_from_scores)):
        want = method(A, B, 3)
        grad = torch.from_numpy(A).double().requires_grad_()
        variants = {
            "float32 tensors": (torch.from_numpy(A), torch.from_numpy(B)),
            "float64 tensors, requires_grad": (grad, torch.from_numpy(B).double()),
            "non-contiguous tensors": (torch.from_numpy(np.asfortranarray(A)),
                                       torch.from_numpy(B.T.copy()).t()),
            "float64 numpy": (A.astype(np.float64), B.astype(np.float64)),
            "Fortran-order numpy": (np.asfortranarray(A), np.asfortranarray(B)),
        }
        for what, (x, y) in variants.items():
            assert not (what.startswith("non-contiguous") and x.is_contiguous())
            got = method(x, y, 3)
            assert_same_result(got, want, f"{what} (flip={flip})")
            if torch.is_tensor(x):
                first, second = (y, x) if flip else (x, y)
                assert got["scores"]["A"] is first and got["scores"]["B"] is second, what
    assert grad.grad is None  # the input was only read


def run_cli_diff(work, *extra):
    assert EXE, "this case compares with the CLI: test_modeldiff_api.py CASE MODELDIFF_EXE"
    out = work / "out"
    # The Python API is the reference's method: principal directions, no rotation.
    subprocess.run([EXE, "diff", "--scores-a", REF / "scores_A.npy", "--scores-b",
                    REF / "scores_B.npy", "-c", "3", "--rotation", "none", "--out", out,
                    *extra], check=True,
                   capture_output=True)
    with h5py.File(out / "diff.h5", "r") as f:
        return ({g: {k: f[g][k][()] for k in f[g]} for g in ("a_minus_b", "b_minus_a")},
                json.loads((out / "summary.json").read_text()))


def case_normalize_rows_default():
    md = ModelDiff()
    assert md.normalize_rows is True
    ab = md.get_A_minus_B_from_scores(A, B, 3)
    ba = md.get_B_minus_A_from_scores(A, B, 3)
    # The CLI's default (unit-norm rows) on the same scores: the same numbers.
    with tempfile.TemporaryDirectory(prefix="modeldiff-python-") as tmp:
        cli, summary = run_cli_diff(pathlib.Path(tmp))
    assert summary["normalized_rows"] is True
    for r, group, first, second in ((ab, "a_minus_b", "variance_a", "variance_b"),
                                    (ba, "b_minus_a", "variance_b", "variance_a")):
        g = cli[group]
        np.testing.assert_allclose(r["directions"], g["directions"], atol=1e-5)
        np.testing.assert_allclose(r["projections"], g["projections"],
                                   atol=1e-5 * np.abs(g["projections"]).max())
        np.testing.assert_allclose(r["variances"]["A"], g[first], rtol=1e-5)
        np.testing.assert_allclose(r["variances"]["B"], g[second], rtol=1e-5)
    # Unit-norm rows = the reference's raw-row computation on row-normalised scores.
    raw = ModelDiff(normalize_rows=False)
    scaled = raw.get_A_minus_B_from_scores(unit_rows(A), unit_rows(B), 3)
    for k in range(3):
        cos = ab["directions"][k] @ scaled["directions"][k]
        assert cos > 0.9999, (k, cos)
        assert rel(ab["projections"][:, k], scaled["projections"][:, k]) < 1e-4, k
    # ... which is not the raw-row result on these scores (rows of different norms).
    unscaled = raw.get_A_minus_B_from_scores(A, B, 3)
    assert rel(np.abs(ab["projections"]), np.abs(unscaled["projections"])) > 1e-2


def expect_value_error(fragments, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ValueError as e:
        message = str(e)
        for fragment in fragments:
            assert fragment in message, (fragment, message)
        return e
    raise AssertionError(f"no ValueError; expected one mentioning {fragments}")


def case_bad_inputs():
    md = ModelDiff()
    f = md.get_A_minus_B_from_scores
    assert issubclass(modeldiff.InputError, ValueError)
    e = expect_value_error(["scoresB", "differ in shape", "300 x 800", "300 x 799"], f, A,
                           B[:, :-1], 2)
    assert isinstance(e, modeldiff.InputError)
    nan = A.copy()
    nan[5, 7] = np.nan
    expect_value_error(["scoresA", "row 5", "column 7", "NaN"], f, nan, B, 2)
    expect_value_error(["scoresA", "row 5", "column 7", "NaN"], md.get_B_minus_A_from_scores,
                       torch.from_numpy(nan), torch.from_numpy(B), 2)
    inf = B.copy()
    inf[9, 0] = np.inf
    expect_value_error(["scoresB", "row 9", "column 0", "Inf"], f, A, inf, 2)
    zero = B.copy()
    zero[3] = 0
    expect_value_error(["scoresB", "row 3", "all zero"], f, A, zero, 2)
    expect_value_error(["scoresA", "not a matrix", "found 1"], f, A[0], B[0], 1)
    expect_value_error(["scoresA", "not a matrix", "found 3"], f, A[None], B[None], 1)
    expect_value_error(["scoresA", "empty"], f, A[:0], B[:0], 1)
    for c in (0, -1, T + 1, 2**40):
        expect_value_error(["number of components", f"found {c}"], f, A, B, c)
    expect_value_error(["num_pca_comps", "2.5"], f, A, B, 2.5)
    expect_value_error(["scoresA", "real numbers", "complex64"], f, A.astype(np.complex64), B, 2)
    expect_value_error(["scoresB", "real numbers"], f, A, np.full(A.shape, "x"), 2)
    expect_value_error(["scoresA", "real numbers"], f, torch.zeros(3, 4, dtype=torch.cfloat),
                       B, 2)
    expect_value_error(["unknown PCA solver 'svd'"], ModelDiff(solver="svd").
                       get_A_minus_B_from_scores, A, B, 2)
    expect_value_error(["top-k"], ModelDiff(top_k=-1).get_A_minus_B_from_scores, A, B, 2)
    expect_value_error(["seed"], ModelDiff, seed=-1)
    # Models with an empty or no training loader (the TRAK half: tests/python/test_trak_api.py).
    expect_value_error(["train_loader", "yielded no examples"], ModelDiff, torch.nn.Linear(2, 2),
                       torch.nn.Linear(2, 2), [{}], [{}], train_loader=[])
    expect_value_error(["train_loader missing"], ModelDiff, torch.nn.Linear(2, 2),
                       torch.nn.Linear(2, 2), [{}], [{}])
    # After all of that the interpreter is healthy and the object still works.
    assert_parity(md.get_A_minus_B_from_scores(A, B, 3, normalize_rows=False), "A_minus_B")


def case_interrupt_releases_gil():
    """The computation runs without the GIL (another Python thread runs meanwhile) and Ctrl-C
    (SIGINT) during it raises KeyboardInterrupt from the call, promptly."""
    rng = np.random.default_rng(0)
    # Noise: the randomised solver needs many passes (a few seconds on 2 cores).
    big_a = rng.standard_normal((1000, 10000), dtype=np.float32)
    big_b = big_a + rng.standard_normal((1000, 10000), dtype=np.float32)
    md = ModelDiff(solver="randomized")
    state = {"in_call": False, "ticks": 0}

    def interrupter():
        while not state["in_call"]:
            time.sleep(0.001)
        # These ticks can only happen inside the call if it released the GIL.
        while state["in_call"] and state["ticks"] < 5:
            time.sleep(0.01)
            state["ticks"] += 1
        if state["in_call"]:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupter)
    thread.start()
    try:
        state["in_call"] = True
        md.get_A_minus_B_from_scores(big_a, big_b, 20)
        state["in_call"] = False
        raise AssertionError(f"the call returned ({state['ticks']} ticks of another thread "
                             f"during it): the GIL was held, or the input is too small")
    except KeyboardInterrupt:
        state["in_call"] = False
    finally:
        thread.join()
    assert state["ticks"] == 5, state
    # The interpreter and the object are fine afterwards.
    assert_parity(md.get_A_minus_B_from_scores(A, B, 3, normalize_rows=False), "A_minus_B")


def main():
    case = globals().get("case_" + CASE)
    if case is None:
        print(f"unknown case {CASE}", file=sys.stderr)
        return 2
    case()
    print(f"python.{CASE}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
