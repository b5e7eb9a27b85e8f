"""End-to-end tests of `modeldiff` (run by CTest: test_cli.py MODELDIFF_EXE CASE).

Each case runs the real CLI in a fresh temporary directory and checks its outputs with
numpy/h5py: parity with the reference package's fixture, recovery of planted
subpopulations, identical results from every file format, and clear errors (exit code 2,
no output directory left behind) for bad input.
"""
import collections
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
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
ARCH = pathlib.Path(__file__).resolve().parents[2] / "resources" / "demo" / "demo_cnn.pt"


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


# The subcommands of each build, in the order --help lists them: the core ones always, the
# LibTorch ones in a build with LibTorch.
CORE_COMMANDS = ["diff", "inspect"]
TORCH_COMMANDS = ["trak", "train", "run", "demo", "counterfactual", "validate"]


def listed_subcommands(help_text):
    """(name, description) of each line of the "Subcommands:" section of CLI11's help."""
    lines = help_text.splitlines()
    assert "Subcommands:" in lines, help_text
    out = []
    for line in lines[lines.index("Subcommands:") + 1:]:
        if not line.strip():
            break
        name, description = line.split(None, 1)
        out.append((name, description.strip()))
    return out


def case_help(work):
    top = run("--help")  # run() checks the exit code: 0
    assert top.stdout.startswith("ModelDiff Studio: "), top.stdout
    assert "Usage: modeldiff [OPTIONS] SUBCOMMAND" in top.stdout, top.stdout
    assert top.stderr == "", top.stderr
    listed = listed_subcommands(top.stdout)
    names = [name for name, _ in listed]
    assert names in (CORE_COMMANDS, CORE_COMMANDS + TORCH_COMMANDS), names
    for name, description in listed:
        # Each subcommand's own help: exit code 0, its description first, its usage line and at
        # least the help option.
        for flag in ("--help", "-h"):
            proc = run(name, flag)
            assert proc.stdout.startswith(description + "\n"), (name, flag, proc.stdout)
            assert f"Usage: modeldiff {name} [OPTIONS]" in proc.stdout, (name, proc.stdout)
            assert "-h,--help" in proc.stdout, (name, proc.stdout)
            assert proc.stderr == "", (name, proc.stderr)
    version = run("--version").stdout
    assert re.fullmatch(r"modeldiff \d+\.\d+\.\d+\n", version), version
    # Usage errors are bad input too: exit code 2 and a one-line message.
    proc = run("diff", "--scores-a", "x.npy", expect=2)
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("modeldiff: "), proc.stderr
    proc = run("no-such-command", expect=2)
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def case_parity_raw_rows(work):
    # The reference's method: principal directions (no rotation) of raw rows.
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "--components", 3, "--raw-rows",
             "--rotation", "none")
    assert r["summary"]["normalized_rows"] is False
    assert r["summary"]["settings"]["rotation"] == "none" and r["attrs"]["rotation"] == "none"
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
    # The provenance names each input by the SHA-256 of its bytes (hashed beside the work).
    for key, name in (("a", "scores_A.npy"), ("b", "scores_B.npy")):
        want = hashlib.sha256((REF / name).read_bytes()).hexdigest()
        assert r["summary"]["inputs"][key]["sha256"] == want, key


def case_planted_recovered(work):
    planted = json.loads((REF / "planted.json").read_text())["planted_A_only"]
    # Found by the default (varimax of unit rows) and by the reference's principal directions.
    for extra in ((), ("--raw-rows",), ("--rotation", "none")):
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
        # The provenance's hash is of the file, whenever it is taken (an HDF5 input, probed in
        # a child process, is hashed after loading).
        assert r["summary"]["inputs"]["a"]["sha256"] == hashlib.sha256(
            path.read_bytes()).hexdigest(), path.name
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
    r = diff(work, REF / "scores_A.npy", REF / "scores_B.npy", "-c", 3, "--raw-rows",
             "--rotation", "none")
    assert r["summary"]["settings"]["rotation"] == "none"
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


def case_diff_significance(work):
    """`modeldiff diff` with per-half score files: a planted A-only block stands above the
    noise floor; without the halves the result says why significance is absent."""
    rng = np.random.default_rng(3)
    t, n, m = 60, 200, 8
    base = rng.normal(size=(t, 6)) @ rng.normal(size=(6, n)) + 0.5 * rng.normal(size=(t, n))
    planted = np.zeros((t, n))
    planted[:20, :30] = 1.5 * rng.normal(size=(20, 2)) @ rng.normal(size=(2, 30))
    ckpt_a = [base + planted + rng.normal(size=(t, n)) for _ in range(m)]
    ckpt_b = [base + rng.normal(size=(t, n)) for _ in range(m)]
    for name, ckpts in (("a", ckpt_a), ("b", ckpt_b)):
        np.save(work / f"{name}.npy", np.mean(ckpts, axis=0).astype(np.float32))
        np.save(work / f"{name}1.npy", np.mean(ckpts[: m // 2], axis=0).astype(np.float32))
        np.save(work / f"{name}2.npy", np.mean(ckpts[m // 2:], axis=0).astype(np.float32))
    halves = ["--scores-a-halves", work / "a1.npy", work / "a2.npy",
              "--scores-b-halves", work / "b1.npy", work / "b2.npy"]
    proc = run("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 5,
               *halves, "--out", work / "with")
    assert "above the noise floor" in proc.stdout and "noise floor" in proc.stdout, proc.stdout
    sig = read_json(work / "with" / "summary.json")["significance"]
    assert sig["computed"] and sig["splits"] == 1 and sig["reason"] == "", sig
    ab = sig["a_minus_b"]
    assert ab["above_noise_floor"][:2] == [True, True], ab
    assert not any(ab["above_noise_floor"][2:]), ab
    assert ab["verdict"][0] == "above the noise floor"
    assert ab["verdict"][4] == "not distinguishable from seed noise"
    with h5py.File(work / "with" / "diff.h5", "r") as f:
        g = f["significance"]
        assert g.attrs["computed"] == "yes"
        assert list(g["a_minus_b"]["above_noise_floor"][()]) == [int(x) for x in ab["above_noise_floor"]]
        np.testing.assert_allclose(g["a_minus_b"]["noise_floor"][()], ab["noise_floor"], rtol=1e-12)
        assert ab["noise_floor"][2] == ab["null_explained_variance"][0]  # first noise direction
        assert list(g["half_checkpoints_a"][()]) == [0, 0]  # unknown for score files
    # Without halves: a result, with the reason in the table, summary.json and diff.h5.
    proc = run("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 5,
               "--out", work / "without")
    assert "significance not computed" in proc.stdout and "--scores-a-halves" in proc.stdout
    sig = read_json(work / "without" / "summary.json")["significance"]
    assert not sig["computed"] and "--scores-a-halves F1 F2" in sig["reason"], sig
    with h5py.File(work / "without" / "diff.h5", "r") as f:
        assert f["significance"].attrs["computed"] == "no"
    # One algorithm's halves alone, or a half of another shape: exit 2 naming the problem.
    proc = run("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy",
               "--scores-a-halves", work / "a1.npy", work / "a2.npy", "--out", work / "bad",
               expect=2)
    assert "--scores-b-halves" in proc.stderr, proc.stderr
    np.save(work / "short.npy", np.ones((t, n - 1), dtype=np.float32))
    expect_error(work, ["--scores-a", work / "a.npy", "--scores-b", work / "b.npy",
                        "--scores-a-halves", work / "a1.npy", work / "short.npy",
                        "--scores-b-halves", work / "b1.npy", work / "b2.npy"],
                 "short.npy", "60 x 200")


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


def read_json(path):
    return json.loads(pathlib.Path(path).read_text())


def case_train_builtin_resnet9(work):
    """`modeldiff train --model resnet9:width=4`: the architecture file it writes loads in
    PyTorch, and each checkpoint loads (strict) into the paper's ResNet-9 as a researcher writes
    it in Python, giving the same logits; TRAK then takes the pair."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fixtures"))
    import gen_graph_models  # the paper's ResNet-9 in plain PyTorch (tests/fixtures)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(96, 12, 12, 3), dtype=np.uint8)
    labels = (np.arange(96) % 5).astype(np.int64)
    np.save(work / "x.npy", images)
    np.save(work / "y.npy", labels)
    out = work / "models"
    proc = run("train", "--model", "resnet9:width=4", "--train-images", work / "x.npy",
               "--train-labels", work / "y.npy", "--epochs", 1, "--batch-size", 32,
               "--models", 2, "--threads", 2, "--out", out)
    arch = out / "resnet9-w4-c3-k5.pt"
    assert str(arch) in proc.stdout and "resnet9:width=4,in_channels=3,classes=5" in proc.stdout
    record = read_json(out / "train.json")
    assert record["recipe"]["architecture"] == "resnet9:width=4,in_channels=3,classes=5"
    assert record["architecture_file"] == arch.name
    scripted = torch.jit.load(str(arch))
    reference = gen_graph_models.resnet9(width=4, in_channels=3, num_classes=5).eval()
    assert list(scripted.state_dict()) == list(reference.state_dict())
    x = torch.from_numpy(images[:8]).permute(0, 3, 1, 2).float() / 255
    for m in range(2):
        state = torch.load(out / f"model_{m}.pt")
        reference.load_state_dict(state, strict=True)
        scripted.load_state_dict(state)
        scripted.eval()
        with torch.no_grad():
            want, got = reference(x), scripted(x)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), (got - want).abs().max()
        assert int(state["0.1.num_batches_tracked"]) == 3  # 96 examples, batches of 32
    # The architecture and checkpoints go straight into TRAK.
    run("trak", "--model", arch, "--checkpoints", out / "model_0.pt", out / "model_1.pt",
        "--train-images", work / "x.npy", "--train-labels", work / "y.npy",
        "--val-images", work / "x.npy", "--val-labels", work / "y.npy",
        "--proj-dim", 64, "--out", work / "scores.npy")
    scores = np.load(work / "scores.npy")
    assert scores.shape == (96, 96) and np.isfinite(scores).all()
    # The same options again: the file is not rewritten and the models are kept.
    before = arch.stat().st_mtime_ns
    again = run("train", "--model", "resnet9:width=4", "--train-images", work / "x.npy",
                "--train-labels", work / "y.npy", "--epochs", 1, "--batch-size", 32,
                "--models", 2, "--threads", 2, "--out", out)
    assert arch.stat().st_mtime_ns == before and "kept from an earlier run" in again.stdout
    run("train", "--model", "resnet9:depth=3", "--train-images", work / "x.npy",
        "--train-labels", work / "y.npy", "--out", work / "bad", expect=2)


def case_trak_halves(work):
    """`modeldiff trak --halves`: besides the scores, the half ensembles of three splits of the
    checkpoints, from the one TRAK pass. A half of the first checkpoints is exactly TRAK over
    those checkpoints alone; every split's two halves average back to the full scores; and the
    files go straight into `modeldiff diff --scores-a-halves`."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(64, 12, 12, 1), dtype=np.uint8)
    labels = (np.arange(64) % 4).astype(np.int64)
    np.save(work / "x.npy", images)
    np.save(work / "y.npy", labels)
    for seed_name, lr in (("a", 0.05), ("b", 0.01)):
        run("train", "--model", "resnet9:width=4", "--train-images", work / "x.npy",
            "--train-labels", work / "y.npy", "--epochs", 1, "--batch-size", 32, "--lr", lr,
            "--models", 4, "--threads", 2, "--out", work / seed_name)
    data = ["--train-images", work / "x.npy", "--train-labels", work / "y.npy",
            "--val-images", work / "x.npy", "--val-labels", work / "y.npy", "--proj-dim", 32]

    def trak(name, ckpts, *extra, expect=0):
        arch = next((work / name).glob("resnet9-*.pt"))
        return run("trak", "--model", arch, "--checkpoints",
                   *[work / name / f"model_{m}.pt" for m in ckpts], *data, *extra,
                   "--cache", work / "cache", "--out", work / f"{name}.npy", expect=expect)

    for name in ("a", "b"):
        proc = trak(name, range(4), "--halves")
        assert "--scores-a-halves" in proc.stdout, proc.stdout
        full = np.load(work / f"{name}.npy")
        halves = {(s, h): np.load(work / f"{name}.split{s}.half{h}.npy")
                  for s in (1, 2, 3) for h in (1, 2)}
        scale = np.abs(full).max()
        assert scale > 0
        for s in (1, 2, 3):  # blocks of one checkpoint each: halves of two
            mean = (halves[(s, 1)] + halves[(s, 2)]) / 2
            assert np.abs(mean - full).max() < 1e-5 * scale, (name, s)
            assert np.abs(halves[(s, 1)] - halves[(s, 2)]).max() > 1e-3 * scale
    # Split 1, half 1 = blocks 1 and 2 = checkpoints 0 and 1, at their own positions.
    first_half = np.load(work / "a.split1.half1.npy")
    trak("a", range(2))
    prefix = np.load(work / "a.npy")
    assert np.abs(first_half - prefix).max() < 1e-5 * np.abs(prefix).max()
    trak("a", range(4), "--halves")
    # Into diff: significance computed over the three splits.
    files = lambda name: [work / f"{name}.split{s}.half{h}.npy" for s in (1, 2, 3) for h in (1, 2)]
    run("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 3,
        "--scores-a-halves", *files("a"), "--scores-b-halves", *files("b"),
        "--out", work / "diff")
    sig = read_json(work / "diff" / "summary.json")["significance"]
    assert sig["computed"] and sig["splits"] == 3, sig
    # Three checkpoints cannot be split into halves of two: exit 2 naming the option.
    proc = trak("a", range(3), "--halves", expect=2)
    assert "--checkpoints" in proc.stderr and "at least 4" in proc.stderr, proc.stderr


def case_demo_quick(work):
    """`modeldiff demo --quick`: the whole main job at smoke-test size, then resumed."""
    out = work / "demo"
    first = run("demo", "--quick", "--threads", 2, "-o", out)
    rec = read_json(out / "run.json")
    assert rec["num_train"] == 1000 and rec["num_val"] == 300, rec
    labels = {"A": "patched data", "B": "patch hidden"}
    for key, algo in rec["algorithms"].items():
        assert algo["label"] == labels[key]
        assert len(algo["checkpoints"]) == 2 and algo["trained"] == 2, algo
        assert algo["same_label_top_k"] == 20, algo
        assert 0.3 < algo["same_label_rate"] <= 1.0, algo  # random ranking: ~0.1
        s = np.load(out / "scores" / f"{key}.npy")
        assert s.shape == (300, 1000) and s.dtype == np.float32 and np.isfinite(s).all()
    # One comparison over everything, one per class (ten classes in the validation subset).
    assert [c["folder"] for c in rec["comparisons"]][0] == "diff/all"
    assert len(rec["comparisons"]) == 11, rec["comparisons"]
    with h5py.File(out / "diff" / "all" / "diff.h5", "r") as f:
        assert f["a_minus_b"]["directions"].shape == (5, 1000)
        assert f.attrs["label_a"] == "patched data"
    shirt = next(c for c in rec["comparisons"] if "Shirt" in c["title"])
    with h5py.File(out / shirt["folder"] / "diff.h5", "r") as f:
        rows = f["target_rows"][()]
    assert len(rows) == shirt["targets"] and 0 < len(rows) < 300
    planted = rec["planted"]
    assert planted["direction_set"] == "A minus B" and planted["patched_train"] > 0
    assert 0 < planted["base_rate"] < 0.1
    index = (out / "report" / "index.html").read_text()
    for name in ("all-validation-examples_variance.svg", "all-validation-examples_cosine.svg",
                 "all-validation-examples_a_minus_b_dir0_top_train.png"):
        assert name in index and (out / "report" / name).exists(), name
    assert "patched data" in index and "patch hidden" in index
    # Two models per algorithm: no halves to compare, and every output says why.
    assert not rec["significance"]["computed"], rec["significance"]
    assert "has 2 checkpoints" in rec["significance"]["reason"], rec["significance"]
    sig = read_json(out / "diff" / "all" / "summary.json")["significance"]
    assert not sig["computed"] and "at least 4" in sig["reason"], sig
    assert "Significance of the directions not computed" in index
    # A second run resumes: no model trained again, every feature from the cache, same scores.
    before = np.load(out / "scores" / "A.npy")
    run("demo", "--quick", "--threads", 2, "-o", out)
    rec2 = read_json(out / "run.json")
    for algo in rec2["algorithms"].values():
        assert algo["trained"] == 0 and algo["reused"] == 2 and algo["cached_features"] == 2
    assert np.array_equal(before, np.load(out / "scores" / "A.npy"))
    assert "report:" in first.stdout
    check_findings_remeasured(work, out, rec2, shirt["folder"].split("/", 1)[1])


def check_findings_remeasured(work, out, rec, shirt_folder):
    """A project's findings are re-measured by each run on its own models and saved validation
    images, with the numbers `modeldiff counterfactual` gives for the same experiment."""
    project = json.loads(run("demo", "--quick", "--print-project", "-o", out).stdout)
    stamp = "patch:x=1,y=1,size=3,value=255"
    project["findings"] = [
        {"comparison": "all", "direction": "a_minus_b:1", "hypothesis": "A relies on the patch",
         "transform": stamp, "target_class": 6, "images": {"exclude_class": 6},
         "effect": {"mean": 0.5, "ci95": [0.4999, 0.5001]}},
        # Named by class: in the Shirt comparison every direction shows shirts, so direction 1.
        {"comparison": shirt_folder, "direction": "a_minus_b:class=6", "hypothesis": "its top shirts",
         "transform": stamp, "target_class": 6, "images": {"direction_k": 5}},
        {"comparison": "nosuch", "direction": "b_minus_a:2", "transform": "flip",
         "target_class": 0},
    ]
    (work / "findings.json").write_text(json.dumps(project))
    proc = run("run", work / "findings.json", "--threads", 2)
    again = read_json(out / "run.json")
    assert all(a["trained"] == 0 for a in again["algorithms"].values())
    measured, top, missing = again["findings"]
    assert "nosuch" in missing["skipped"] and "images" not in missing, missing
    assert measured["reproduces"] is False, measured  # recorded 0.5 +- 0.0001: not this run's
    assert "reproduces" not in top, top  # nothing recorded
    assert (measured["component"], top["component"], missing["component"]) == (1, 1, None)
    assert "finding 1 (all, a_minus_b:1" in proc.stdout + proc.stderr
    models = []
    for key, view in (("a", []), ("b", ["--view-b", "patch:x=1,y=1,size=3,value=0"])):
        algo = again["algorithms"][key.upper()]
        models += ["--model-" + key, again["project"][key.upper()]["architecture"],
                   "--checkpoints-" + key, *algo["checkpoints"], *view]
    images = ["--images", out / again["val_images"]["images"],
              "--labels", out / again["val_images"]["labels"]]
    for finding, select, name in (
            (measured, ["--exclude-class", 6], "cf_all"),
            (top, ["--direction-of", out / "diff" / shirt_folder, "--direction-k", 5,
                   "--direction", "a_minus_b:class=6"], "cf_top")):
        run("counterfactual", *models, *images, "--transform", stamp, "--target-class", 6,
            *select, "-o", work / name)
        effects = read_json(work / name / "effects.json")
        a, b = effects["results"]
        (d,) = effects["a_minus_b"]
        assert finding["images"] == d["n_images"], (finding, d)
        assert abs(finding["delta_p"]["A"] - a["mean_delta_p"]) < 1e-6, (finding, a)
        assert abs(finding["delta_p"]["B"] - b["mean_delta_p"]) < 1e-6, (finding, b)
        assert abs(finding["effect"]["mean"] - d["mean_delta_p"]) < 1e-6, (finding, d)
        assert np.allclose(finding["effect"]["ci95"], d["ci95"], atol=1e-6), (finding, d)
    # More than the result keeps: refused by name, not silently fewer images.
    proc = run("counterfactual", *models, *images, "--transform", stamp, "--target-class", 6,
               "--direction-of", out / "diff" / shirt_folder, "--direction-k", 11,
               "-o", work / "cf_bad", expect=2)
    assert "--direction-k" in proc.stderr and "at most 10" in proc.stderr, proc.stderr
    assert top["images"] == 5 and measured["images"] == np.sum(
        np.load(out / "data" / "val_labels.npy") != 6)
    index = (out / "report" / "index.html").read_text()
    assert "The recorded effect does not reproduce" in index and "This run:" in index


def make_project_data(work):
    """Small .npy datasets and two Python-saved state dicts of the demo architecture."""
    rng = np.random.default_rng(0)
    n, t = 240, 60
    def images(count):
        labels = np.arange(count) % 3
        x = rng.integers(0, 40, size=(count, 28, 28), dtype=np.uint8)
        for i, y in enumerate(labels):  # a class-dependent bright bar
            x[i, 4 + 8 * y:8 + 8 * y, 4:24] = 200
        return x, labels
    for name, count in (("train", n), ("val", t)):
        x, y = images(count)
        np.save(work / f"{name}_x.npy", x)
        np.save(work / f"{name}_y.npy", y.astype(np.int64))
    arch = ARCH
    model = torch.jit.load(str(arch))
    for m in range(2):
        torch.manual_seed(m)
        state = collections.OrderedDict(
            ("module." + k, torch.randn_like(v) * 0.1) for k, v in model.state_dict().items())
        torch.save(state, work / f"a{m}.pt")
    return arch


def case_run_project(work):
    """`modeldiff run`: Python checkpoints for A, a training recipe for B, .npy data."""
    arch = make_project_data(work)
    project = {
        "name": "cli test",
        "output": "out",
        "data": {"train": {"images": "train_x.npy", "labels": "train_y.npy"},
                 "val": {"images": "val_x.npy", "labels": "val_y.npy", "subset": 45}},
        "A": {"label": "python", "architecture": str(arch), "checkpoints": ["a0.pt", "a1.pt"]},
        "B": {"label": "trained", "architecture": str(arch),
              "train": {"models": 2, "epochs": 1, "batch_size": 32}},
        "trak": {"proj_dim": 128},
        "diff": {"components": 3, "class_components": 2},
    }
    (work / "p.json").write_text(json.dumps(project))
    run("run", work / "p.json", "--threads", 2)
    rec = read_json(work / "out" / "run.json")
    assert rec["num_train"] == 240 and rec["num_val"] == 45
    assert rec["algorithms"]["A"]["trained"] == 0 and rec["algorithms"]["B"]["trained"] == 2
    assert len(rec["comparisons"]) == 4  # all + three classes
    s = np.load(work / "out" / "scores" / "A.npy")
    assert s.shape == (45, 240) and np.isfinite(s).all()
    with h5py.File(work / "out" / "diff" / "all" / "diff.h5", "r") as f:
        d = f["a_minus_b"]["directions"][()]
    assert d.shape == (3, 240) and np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-4)


def case_run_project_errors(work):
    """Bad projects and checkpoints: exit 2 with the file and the key or parameter named."""
    arch = make_project_data(work)
    base = {
        "data": {"train": {"images": "train_x.npy", "labels": "train_y.npy"},
                 "val": {"images": "val_x.npy", "labels": "val_y.npy"}},
        "A": {"architecture": str(arch), "checkpoints": ["a0.pt"]},
        "B": {"architecture": str(arch), "checkpoints": ["a1.pt"]},
        "trak": {"proj_dim": 64},
    }
    def expect(project, *needles):
        (work / "bad.json").write_text(json.dumps(project))
        proc = run("run", work / "bad.json", expect=2)
        for needle in needles:
            assert needle in proc.stderr, (needle, proc.stderr)
    expect({**base, "trak": {"proj_dimm": 64}}, "bad.json", "trak.proj_dimm", "unknown key")
    expect({**base, "trak": {"proj_dim": "big"}}, "bad.json", "trak.proj_dim", "integer")
    expect({k: v for k, v in base.items() if k != "B"}, "bad.json", "B")
    (work / "bad.json").write_text("{ not json")
    assert "not valid JSON" in run("run", work / "bad.json", expect=2).stderr
    # A checkpoint of another architecture: the missing and unexpected parameters are named.
    torch.save({"fc.weight": torch.zeros(10, 4)}, work / "other.pt")
    expect({**base, "B": {"architecture": str(arch), "checkpoints": ["other.pt"]}},
           "other.pt", "fc.weight")
    # An empty validation set.
    np.save(work / "empty_x.npy", np.zeros((0, 28, 28), np.uint8))
    np.save(work / "empty_y.npy", np.zeros((0,), np.int64))
    expect({**base, "data": {**base["data"],
                             "val": {"images": "empty_x.npy", "labels": "empty_y.npy"}}},
           "empty_x.npy")


def case_counterfactual(work):
    """Models trained here: A sees a patch planted on shirts, B has the region blanked. The
    patch moves A's predictions toward Shirt (95% interval above 0), not B's (includes 0)."""
    fm = pathlib.Path("/usr/share/datasets/fashion-mnist")
    common = ["--model", ARCH, "--train-images", fm / "train-images-idx3-ubyte.gz",
              "--train-labels", fm / "train-labels-idx1-ubyte.gz", "--train-subset", 3000,
              "-m", 3, "--epochs", 2, "--threads", 2, "--plant-size", 3, "--plant-x", 1,
              "--plant-y", 1]
    run("train", *common, "--plant-class", 6, "--plant-fraction", 0.5, "--out", work / "a")
    run("train", *common, "--hide-patch", "--out", work / "b")
    ckpts = lambda d: sorted(str(p) for p in (work / d).glob("*.pt"))
    out = work / "cf"
    run("counterfactual", "--model-a", ARCH, "--checkpoints-a", *ckpts("a"),
        "--model-b", ARCH, "--checkpoints-b", *ckpts("b"),
        "--view-b", "patch:x=1,y=1,size=3,value=0",
        "--images", fm / "t10k-images-idx3-ubyte.gz", "--labels", fm / "t10k-labels-idx1-ubyte.gz",
        "--transform", "patch:x=1,y=1,w=3,h=3,value=255", "--target-class", 6,
        "--exclude-class", 6, "--max-images", 400, "--sweep", "size=0,3", "--threads", 2,
        "--out", out)
    effects = read_json(out / "effects.json")
    assert effects["target_class"] == 6
    rows = {(r["algorithm"], r["strength"]): r for r in effects["results"]}
    assert set(rows) == {("A", 0.0), ("A", 3.0), ("B", 0.0), ("B", 3.0)}
    for alg in "AB":  # strength 0 is the control: no change at all
        assert rows[(alg, 0.0)]["mean_delta_p"] == 0 and rows[(alg, 0.0)]["ci95"] == [0, 0]
    a, b = rows[("A", 3.0)], rows[("B", 3.0)]
    assert a["n_images"] == 400 and a["n_checkpoints"] == 3
    assert a["ci95"][0] > 0, a
    assert b["ci95"][0] <= 0 <= b["ci95"][1], b
    lo, hi = a["ci95"]
    assert lo <= a["mean_delta_p"] <= hi
    assert np.isclose(a["mean_delta_p"], np.mean(a["per_checkpoint_delta_p"]))
    csv_rows = (out / "effects.csv").read_text().strip().splitlines()
    assert len(csv_rows) == 1 + 6 and csv_rows[0].startswith("algorithm,label,strength")
    png = (out / "effects.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Only the images at given indices, and a direction's top validation examples.
    np.save(work / "idx.npy", np.array([3, 5, 8, 13, 21], dtype=np.int64))
    sel = ["--model-a", ARCH, "--checkpoints-a", *ckpts("a"), "--model-b", ARCH,
           "--checkpoints-b", *ckpts("b"), "--transform", "patch:x=1,y=1,size=3,value=255",
           "--target-class", 6, "--threads", 2]
    run("counterfactual", *sel, "--images", fm / "t10k-images-idx3-ubyte.gz",
        "--labels", fm / "t10k-labels-idx1-ubyte.gz", "--indices", work / "idx.npy",
        "--out", work / "cf_idx")
    assert read_json(work / "cf_idx" / "effects.json")["results"][0]["n_images"] == 5
    imgs = np.zeros((30, 28, 28), np.uint8)
    np.save(work / "v_x.npy", imgs)
    np.save(work / "v_y.npy", np.arange(30) % 10)
    scores = np.random.default_rng(0).standard_normal((30, 50)).astype(np.float32)
    np.save(work / "sa.npy", scores)
    noise = np.random.default_rng(1).standard_normal((30, 50)).astype(np.float32)
    np.save(work / "sb.npy", scores + 0.5 * noise)
    run("diff", "--scores-a", work / "sa.npy", "--scores-b", work / "sb.npy", "-c", 2,
        "--out", work / "d")
    run("counterfactual", *sel, "--images", work / "v_x.npy", "--labels", work / "v_y.npy",
        "--direction-of", work / "d", "--direction", "a_minus_b:2", "--direction-k", 4,
        "--out", work / "cf_dir")
    assert read_json(work / "cf_dir" / "effects.json")["results"][0]["n_images"] == 4
    proc = run("counterfactual", *sel, "--images", fm / "t10k-images-idx3-ubyte.gz",
               "--labels", fm / "t10k-labels-idx1-ubyte.gz", "--direction-of", work / "d",
               "--out", work / "cf_bad", expect=2)
    assert "not the result's validation set" in proc.stderr, proc.stderr
    # A transformation with a typo: exit 2, named.
    proc = run("counterfactual", "--checkpoints-a", *ckpts("a"), "--model-a", ARCH,
               "--checkpoints-b", *ckpts("b"), "--model-b", ARCH,
               "--images", fm / "t10k-images-idx3-ubyte.gz", "--labels",
               fm / "t10k-labels-idx1-ubyte.gz", "--transform", "patch:wdth=3",
               "--target-class", 6, "--out", work / "bad", expect=2)
    assert "patch.wdth" in proc.stderr


MODULE = "modeldiff-torch-commands.so"


def loaded_objects(*args):
    """(proc, the shared objects the dynamic loader mapped) for `modeldiff ARGS` (LD_DEBUG=files
    lists each as it loads it, on stderr)."""
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "LD_DEBUG": "files"})
    return proc, set(re.findall(r"^\s*\d+:\s+file=(\S+)\s+\[\d+\];\s+generating link map",
                                proc.stderr, re.M))


def case_torch_module(work):
    """The LibTorch subcommands are a module that `modeldiff` loads only when it needs them:
    `diff` and `inspect` run without LibTorch, a torch subcommand loads it, and a missing or
    broken module is one clear line and exit status 1 while the core commands still work."""
    exe = pathlib.Path(EXE)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    assert "libtorch" not in ldd, ldd
    rng = np.random.default_rng(0)
    np.save(work / "a.npy", rng.standard_normal((20, 60)).astype(np.float32))
    np.save(work / "b.npy", rng.standard_normal((20, 60)).astype(np.float32))
    core_runs = (("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 2,
                  "--out", work / "out"), ("inspect", work / "a.npy"), ("diff", "--help"),
                 ("--version",))
    for args in core_runs:
        proc, objects = loaded_objects(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert not [o for o in objects if "libtorch" in o or MODULE in o], (args, objects)
    assert (work / "out" / "summary.json").is_file()
    for args in (("trak", "--help"), ("--help",)):
        proc, objects = loaded_objects(*args)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        assert str(exe.parent / MODULE) in objects, (args, objects)
        assert any("libtorch_cpu" in o for o in objects), (args, objects)

    # The executable alone, elsewhere: where it looks is named, the core commands still run.
    bin_dir = work / "prefix" / "bin"
    bin_dir.mkdir(parents=True)
    alone = bin_dir / "modeldiff"
    shutil.copy2(exe, alone)

    def run_alone(*args):
        return subprocess.run([alone, *map(str, args)], capture_output=True, text=True)

    beside = bin_dir / MODULE
    for args in (("trak", "--help"), ("--help",), ("demo", "--print-project")):
        proc = run_alone(*args)
        assert proc.returncode == 1 and proc.stdout == "", (args, proc)
        message = proc.stderr
        assert message.count("\n") == 1 and message.startswith(
            "modeldiff: error: cannot load the LibTorch subcommands (trak, train, run, demo, "
            "counterfactual, validate): "), (args, message)
        tried = re.findall(r"(/\S+): cannot open shared object file: No such file or directory",
                           message)
        assert len(tried) == 2 and tried[0] == str(beside), message
    installed = pathlib.Path(tried[1])  # <prefix>/lib/modeldiff by default
    assert installed.name == MODULE and installed.parent.name == "modeldiff", installed
    assert installed.is_relative_to(work / "prefix"), installed
    for args in core_runs[1:]:
        proc = run_alone(*args)
        assert proc.returncode == 0, (args, proc.stderr)

    # A file that is not a shared object: its path and the loader's reason, nothing else tried.
    beside.write_text("not a shared object\n")
    proc = run_alone("train", "--help")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc
    assert f"{beside}: file too short" in proc.stderr, proc.stderr
    assert str(installed) not in proc.stderr, proc.stderr
    beside.unlink()

    # The installed layout: found relative to the executable's folder.
    installed.parent.mkdir(parents=True)
    installed.symlink_to(exe.parent / MODULE)
    proc = run_alone("--help")
    assert proc.returncode == 0, proc.stderr
    assert [n for n, _ in listed_subcommands(proc.stdout)] == CORE_COMMANDS + TORCH_COMMANDS

    # Ctrl-C reaches a command of the module: its progress bar is the executable's, with the one
    # counter the SIGINT handler sets. Training that would take over a minute ends, cancelled.
    images = rng.integers(0, 256, size=(4000, 12, 12, 3), dtype=np.uint8)
    np.save(work / "x.npy", images)
    np.save(work / "y.npy", (np.arange(4000) % 5).astype(np.int64))
    args = ["train", "--model", "resnet9:width=8", "--train-images", work / "x.npy",
            "--train-labels", work / "y.npy", "--epochs", 50, "--models", 4, "--threads", 1,
            "--out", work / "models"]
    child = subprocess.Popen([EXE, *map(str, args)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    lines = []  # stderr up to the first progress line: training runs, the handler is set
    while not lines or not re.match(r"\[\s*\d+%", lines[-1]):
        lines.append(child.stderr.readline())
        assert lines[-1], "modeldiff train ended before any progress:\n" + "".join(lines)
    before = "".join(lines)
    child.send_signal(signal.SIGINT)
    try:
        after = child.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        child.kill()
        raise AssertionError("modeldiff train did not stop within 120 s of Ctrl-C")
    assert child.returncode == 130, (child.returncode, before + after)
    assert "modeldiff: cancelled" in after, before + after


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
