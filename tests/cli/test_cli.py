"""End-to-end tests of `modeldiff` (run by CTest: test_cli.py MODELDIFF_EXE CASE).

Each case runs the real CLI in a fresh temporary directory and checks its outputs with
numpy/h5py: parity with the reference package's fixture, recovery of planted
subpopulations, identical results from every file format, and clear errors (exit code 2,
no output directory left behind) for bad input.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

EXE = sys.argv[1]
CASE = sys.argv[2]
SHARED = pathlib.Path(os.environ.get("MODELDIFF_SHARED_FIXTURES", "../shared/fixtures"))
REF = SHARED / "modeldiff_ref_seed0"
GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


def run(*args, expect=0):
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != expect:
        raise AssertionError(
            f"exit {proc.returncode} (expected {expect}) for {args}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def diff(work, a, b, *extra, out="out"):
    run("diff", "--scores-a", a, "--scores-b", b, "--out", work / out, *extra)
    with h5py.File(work / out / "diff.h5", "r") as f:
        result = {g: {k: f[g][k][()] for k in f[g]} for g in ("a_minus_b", "b_minus_a")}
        result["target_rows"] = f["target_rows"][()]
        result["attrs"] = dict(f.attrs)
    result["summary"] = json.loads((work / out / "summary.json").read_text())
    return result


def rel(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def case_help(work):
    assert "diff" in run("--help").stdout
    for sub in ("diff", "inspect"):
        assert "--help" in run(sub, "--help").stdout or "Usage" in run(sub, "--help").stdout
    assert run("--version").stdout.startswith("modeldiff ")
    # Usage errors are bad input too: exit code 2 and a one-line message.
    proc = run("diff", "--scores-a", "x.npy", expect=2)
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def case_parity_raw_rows(work):
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "--components", 3, "--raw-rows")
    assert r["summary"]["normalized_rows"] is False
    assert "raw rows" in r["attrs"]["row_normalization"]
    for group, name, first, second in (("a_minus_b", "A_minus_B", "variance_a", "variance_b"),
                                       ("b_minus_a", "B_minus_A", "variance_b", "variance_a")):
        g = r[group]
        ref_dirs = np.load(REF / f"{name}_directions.npy")
        ref_proj = np.load(REF / f"{name}_projections.npy")
        for c in range(3):
            cos = g["directions"][c] @ ref_dirs[c] / (
                np.linalg.norm(g["directions"][c]) * np.linalg.norm(ref_dirs[c]))
            assert abs(cos) > 0.999, (group, c, cos)
            sign = np.sign(cos)
            assert rel(sign * g["projections"][:, c], ref_proj[:, c]) < 1e-3, (group, c)
        np.testing.assert_allclose(g[first], np.load(REF / f"{name}_variance_first.npy"), rtol=1e-3)
        np.testing.assert_allclose(g[second], np.load(REF / f"{name}_variance_second.npy"), rtol=1e-3)
    assert r["summary"]["b_minus_a"]["first"] == "B"


def case_planted_recovered(work):
    planted = json.loads((REF / "planted.json").read_text())["planted_A_only"]
    for extra in ((), ("--raw-rows",)):
        r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 3, *extra,
                 out="out" + "".join(extra))
        dirs = r["a_minus_b"]["directions"]
        for group in planted:
            train = set(group["train_idx"])
            best = max(len(train & set(np.argsort(-np.abs(dirs[c]), kind="stable")[:25].tolist()))
                       for c in range(3))
            assert best >= 24, (extra, best)
        # A-only structure: A's variance dominates along the A-minus-B directions.
        assert np.all(r["a_minus_b"]["variance_a"] > 2 * r["a_minus_b"]["variance_b"])


def write_all_formats(work, matrix):
    """The same T x N matrix as every format a user may bring; returns (path, extra args)."""
    t = torch.from_numpy(matrix)
    np.save(work / "s.npy", matrix)
    torch.save({"weight": t}, work / "ordered.pt")  # modeldiff's own convention
    import collections
    torch.save(collections.OrderedDict(weight=t), work / "ordered2.pt")
    torch.save({"model": {"weight": t}, "epoch": 3}, work / "nested.pt")
    torch.save(t.t().contiguous(), work / "transposed.pt")  # N x T, as datamodel weights often are
    header = json.dumps({"scores": {"dtype": "F32", "shape": list(matrix.shape),
                                    "data_offsets": [0, matrix.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    (work / "s.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header + matrix.astype("<f4").tobytes())
    with h5py.File(work / "s.h5", "w") as f:
        f.create_dataset("results/scores", data=matrix)
        f.create_dataset("other", data=np.arange(3))
    return [(work / "s.npy", ()), (work / "ordered.pt", ()), (work / "ordered2.pt", ()),
            (work / "nested.pt", ("--key-a", "model.weight")),
            (work / "transposed.pt", ("--transpose", "yes")),
            (work / "s.safetensors", ()), (work / "s.h5", ("--key-a", "results/scores"))]


def case_formats_identical(work):
    a = np.load(REF / "scores_A.npy")
    results = []
    for i, (path, extra) in enumerate(write_all_formats(work, a)):
        extra = list(extra)
        if extra[:2] == ["--transpose", "yes"]:
            # --transpose applies to both inputs; give B in the same orientation.
            np.save(work / "b_t.npy", np.load(REF / "scores_B.npy").T.copy())
            r = diff(work, path, work / "b_t.npy", "-c", 3, *extra, out=f"o{i}")
        else:
            r = diff(work, path, REF / "scores_B.npy", "-c", 3, *extra, out=f"o{i}")
        results.append((path.name, r))
    base = results[0][1]
    for name, r in results[1:]:
        for g in ("a_minus_b", "b_minus_a"):
            for k in ("directions", "projections", "variance_a", "variance_b"):
                assert np.array_equal(r[g][k], base[g][k]), (name, g, k)


def case_traker_save_dirs(work):
    r = diff(work, SHARED / "traker_savedir_small_fp32", SHARED / "traker_savedir_small_fp16",
             "-c", 2, "--label-a", "fp32", "--label-b", "fp16")
    assert r["a_minus_b"]["directions"].shape == (2, 300)
    assert r["a_minus_b"]["projections"].shape == (40, 2)
    assert r["summary"]["inputs"]["a"]["format"] == "traker save_dir"
    assert r["summary"]["inputs"]["a"]["transposed"] is True
    assert r["summary"]["a_minus_b"]["first"] == "fp32"


def case_class_subset(work):
    labels = np.arange(300) % 4
    np.save(work / "labels.npy", labels)
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 2, "--labels",
             work / "labels.npy", "--class", 1)
    rows = r["target_rows"]
    assert np.array_equal(rows, np.flatnonzero(labels == 1))
    assert r["a_minus_b"]["projections"].shape == (75, 2)
    assert np.all(labels[r["a_minus_b"]["top_target"]] == 1)
    # Same as running on the sliced matrices, with row numbers mapped back.
    np.save(work / "a1.npy", np.load(REF / "scores_A.npy")[rows])
    np.save(work / "b1.npy", np.load(REF / "scores_B.npy")[rows])
    s = diff(work, work / "a1.npy", work / "b1.npy", "-c", 2, out="sliced")
    np.testing.assert_allclose(r["a_minus_b"]["directions"], s["a_minus_b"]["directions"], atol=1e-5)
    assert np.array_equal(r["a_minus_b"]["top_target"], rows[s["a_minus_b"]["top_target"]])


def case_rows_subset(work):
    (work / "rows.txt").write_text("# analysed targets\n5, 9 12\n40\n41 42 43 44 45 46 47 48 49 50\n")
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 2, "--rows", work / "rows.txt")
    assert r["target_rows"].tolist() == [5, 9, 12, 40] + list(range(41, 51))


def case_golden_summary(work):
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 3, "--raw-rows")
    got = {g: {k: r["summary"][g][k] for k in ("top_train", "bottom_train", "top_target",
                                               "bottom_target")}
           for g in ("a_minus_b", "b_minus_a")}
    want = json.loads((GOLDEN / "ref_seed0_raw_rows_top.json").read_text())
    assert got == want, json.dumps(got)


def case_inspect_golden(work):
    np.save(work / "m.npy", np.zeros((3, 4), dtype=np.float16))
    torch.save({"model": {"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)}, "epoch": 1},
               work / "ckpt.pt")
    out = run("inspect", work / "m.npy").stdout + run("inspect", work / "ckpt.pt").stdout
    out = out.replace(str(work) + "/", "")
    want = (GOLDEN / "inspect.txt").read_text()
    assert out == want, out


def expect_error(work, args, *needles, out="bad"):
    proc = run("diff", *args, "--out", work / out, expect=2)
    msg = proc.stderr.strip().splitlines()[-1]
    assert msg.startswith("modeldiff: error: "), proc.stderr
    for n in needles:
        assert n in msg, (n, msg)
    left = [p.name for p in work.iterdir() if p.name.startswith(out)]
    assert left == [], left  # no output directory, no staging directory


def case_errors_exit_2(work):
    a = np.load(REF / "scores_A.npy")
    b = np.load(REF / "scores_B.npy")
    np.save(work / "short.npy", b[:, :799])
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", work / "short.npy"],
                 "short.npy", "300 x 800", "300 x 799")
    nan = b.copy()
    nan[17, 203] = np.nan
    np.save(work / "nan.npy", nan)
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", work / "nan.npy"],
                 "nan.npy", "row 17", "column 203", "NaN")
    zero = b.copy()
    zero[5] = 0
    np.save(work / "zero.npy", zero)
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", work / "zero.npy"],
                 "zero.npy", "row 5 is all zero")
    raw = (REF / "scores_A.npy").read_bytes()
    (work / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    expect_error(work, ["--scores-a", work / "trunc.npy", "--scores-b", REF / "scores_B.npy"],
                 "trunc.npy", "truncated")
    torch.save({"weights": torch.from_numpy(a)}, work / "wrongkey.pt")
    expect_error(work, ["--scores-a", work / "wrongkey.pt", "--scores-b", REF / "scores_B.npy",
                        "--key", "weight"], "wrongkey.pt", "weight", "weights")
    expect_error(work, ["--scores-a", work / "missing.npy", "--scores-b", REF / "scores_B.npy"],
                 "missing.npy")
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", REF / "scores_B.npy",
                        "-c", 400], "components")
    np.save(work / "labels.npy", np.arange(299) % 3)
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", REF / "scores_B.npy",
                        "--labels", work / "labels.npy", "--class", 1], "labels.npy")


def case_output_dir_replaced_atomically(work):
    out = work / "out"
    diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 2)
    before = (out / "summary.json").read_text()
    np.save(work / "nan.npy", np.full((300, 800), np.nan, dtype=np.float32))
    expect_error(work, ["--scores-a", REF / "scores_A.npy", "--scores-b", work / "nan.npy"],
                 "nan.npy", out="elsewhere")
    # A failing run aimed at an existing result leaves it complete and unchanged.
    proc = run("diff", "--scores-a", REF / "scores_A.npy", "--scores-b", work / "nan.npy",
               "--out", out, expect=2)
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["diff.h5", "summary.json"]
    assert not [p for p in work.iterdir() if ".partial-" in p.name]
    del proc


def main():
    case = globals().get("case_" + CASE)
    if case is None:
        print(f"unknown case {CASE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="modeldiff-cli-") as tmp:
        case(pathlib.Path(tmp))
    print(f"cli.{CASE}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
