"""Tests of the TRAK half of the Python package `modeldiff` (CTest runs
test_trak_api.py CASE MODELDIFF_EXE).

Real objects made by python3-torch: small CNNs written with a hand-written forward (A) and one
with BatchNorm (B), trained here for a few steps on Fashion-MNIST subsets, DataLoaders over
them. Checked: the reference README's snippets run verbatim, their directions equal `modeldiff
diff` on the same scores, the scores equal `modeldiff trak` on the same saved models,
checkpoints and data, the cache resumes across processes and after Ctrl-C, bad inputs are
ValueErrors, and md.save writes the folders the CLI writes.
"""
import gzip
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import modeldiff
from modeldiff import ModelDiff

CASE = sys.argv[1]
EXE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
GUI = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None  # modeldiff-gui, optional
FASHION = pathlib.Path(os.environ.get("MODELDIFF_FASHION_MNIST",
                                      "/usr/share/datasets/fashion-mnist"))
N_TRAIN, N_VAL = 384, 96
PROJ_DIM = 96  # < N_TRAIN: a well-posed kernel, so scores compare tightly

# The reference README's two snippets (github.com/MadryLab/modeldiff, README.md), verbatim.
README_TRAK = """\
from modeldiff import ModelDiff

# architecture and checkpoints of models trained with algorithms A and B
modelA = ...
modelB = ...

ckptsA = [...] 
ckptsB = [...] 

# dataloaders corresponding to train and validation set 
train_loader = ...
val_loader = ... 

# init ModelDiff 
md = ModelDiff(modelA, modelB, ckptsA, ckptsB, train_loader)

# Top-k distinguishing directions that are "important" for algorithm A but not algorithm B
diff_ab = md.get_A_minus_B(val_loader, num_pca_comps=2)

# Top-k distinguishing directions that are "important" for algorithm B but not algorithm A
diff_ba = md.get_B_minus_A(val_loader, num_pca_comps=2)
"""
README_SCORES = """\
# init ModelDiff  
md = ModelDiff()

# load data attribution scores corresponding to algorithms A and B 
scoresA = ...
scoresB = ...

# Get distinguishing directions that are important for one algorithm but not the other
diff_ab = md.get_A_minus_B_from_scores(scoresA, scoresB, num_pca_comps=2)
diff_ba = md.get_A_minus_B_from_scores(scoresB, scoresA, num_pca_comps=2)
"""


def run_snippet(snippet, filled, context=()):
    """Runs the snippet's lines unchanged; its placeholder lines (`name = ...` / `[...]`) are
    the only ones left out, their names bound to `filled` beforehand. `context`: names an
    earlier snippet defined (the README's second snippet uses the first one's import)."""
    placeholder = re.compile(r"^(\w+) = (\.\.\.|\[\.\.\.\]) *$")
    names = [m.group(1) for m in map(placeholder.match, snippet.splitlines()) if m]
    assert sorted(names) == sorted(filled), (names, sorted(filled))
    code = "\n".join(line for line in snippet.splitlines() if not placeholder.match(line))
    namespace = dict(context)
    namespace.update(filled)
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def read_idx(path, count, offset=0):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[2] == 0x08 and data[3] == 3:  # images: 16-byte header
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        images = np.frombuffer(data, np.uint8, offset=16).reshape(-1, rows, cols)
        return images[offset:offset + count]
    return np.frombuffer(data, np.uint8, offset=8)[offset:offset + count]


def fashion(split, count):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz", count)
    y = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz", count)
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)  # N x 1 x 28 x 28
    return x, torch.from_numpy(y.astype(np.int64))


class SmallCNN(nn.Module):
    """Algorithm A's model: convolutions and a linear layer, forward written by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(16 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class BatchNormCNN(nn.Module):
    """Algorithm B's model, with BatchNorm; its forward takes *args, which torch.jit.script
    refuses, so ModelDiff traces it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc = nn.Linear(16 * 5 * 5, 10)

    def forward(self, x, *unused):
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def train(model_class, seed, x, y, steps=24):
    """A briefly trained model's state dict (an OrderedDict, as the reference takes them)."""
    torch.manual_seed(seed)
    model = model_class()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.state_dict()


class Fixture:
    """Models, checkpoints (A: in memory, B: torch.save'd files) and loaders."""

    def __init__(self, work):
        torch.set_num_threads(2)
        self.work = work
        self.train_x, self.train_y = fashion("train", N_TRAIN)
        self.val_x, self.val_y = fashion("val", N_VAL)
        self.train_loader = DataLoader(TensorDataset(self.train_x, self.train_y), batch_size=100)
        self.val_loader = DataLoader(TensorDataset(self.val_x, self.val_y), batch_size=40)
        self.ckptsA = [train(SmallCNN, s, self.train_x, self.train_y) for s in (0, 1)]
        self.ckptsB = []
        for s in (2, 3):
            path = work / f"b{s}.pt"
            torch.save(train(BatchNormCNN, s, self.train_x, self.train_y), path)
            self.ckptsB.append(str(path))
        self.modelA, self.modelB = SmallCNN(), BatchNormCNN()

    def model_diff(self, **settings):
        settings.setdefault("proj_dim", PROJ_DIM)
        settings.setdefault("progress", False)
        return ModelDiff(self.modelA, self.modelB, self.ckptsA, self.ckptsB, self.train_loader,
                         self.work / "cache", **settings)


def run_cli(*args):
    assert EXE, "this case runs the CLI: test_trak_api.py CASE MODELDIFF_EXE"
    start = time.perf_counter()
    done = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return time.perf_counter() - start


def cli_diff(work, scores_a, scores_b, *extra):
    np.save(work / "a.npy", scores_a)
    np.save(work / "b.npy", scores_b)
    # The Python API is the reference's method: principal directions, no rotation.
    run_cli("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 2,
            "--rotation", "none", "--out", work / "cli-diff", *extra)
    with h5py.File(work / "cli-diff" / "diff.h5", "r") as f:
        return {g: {k: f[g][k][()] for k in f[g]} for g in ("a_minus_b", "b_minus_a")}


def assert_same_directions(got, want, what):
    for c in range(want.shape[0]):
        cos = got[c] @ want[c] / (np.linalg.norm(got[c]) * np.linalg.norm(want[c]))
        assert abs(cos) > 0.999, (what, c, cos)


def check_result(r, t, n, c=2):
    assert set(r) >= {"directions", "projections", "variances", "scores"}, set(r)
    assert set(r) >= {"explained_variance", "top_train", "cosine_ab", "algorithms"}, set(r)
    assert isinstance(r["directions"], np.ndarray) and r["directions"].shape == (c, n)
    assert isinstance(r["projections"], np.ndarray) and r["projections"].shape == (t, c)
    for key in ("A", "B"):
        v = r["variances"][key]
        assert isinstance(v, np.ndarray) and v.shape == (c,), (key, v)
        s = r["scores"][key]
        assert isinstance(s, torch.Tensor) and tuple(s.shape) == (t, n), (key, type(s))
        assert torch.isfinite(s).all()


def case_readme_snippet(work):
    fx = Fixture(work)
    os.chdir(work)  # the snippet's ModelDiff caches under ./modeldiff_scores
    ns = run_snippet(README_TRAK, {
        "modelA": fx.modelA, "modelB": fx.modelB, "ckptsA": fx.ckptsA, "ckptsB": fx.ckptsB,
        "train_loader": fx.train_loader, "val_loader": fx.val_loader})
    md, diff_ab, diff_ba = ns["md"], ns["diff_ab"], ns["diff_ba"]
    assert isinstance(md, ModelDiff)
    check_result(diff_ab, N_VAL, N_TRAIN)
    check_result(diff_ba, N_VAL, N_TRAIN)
    # Features were cached by the default scores_save_dir, one entry per checkpoint.
    assert len(list((work / "modeldiff_scores").glob("features-*"))) == 4
    sa, sb = diff_ab["scores"]["A"].numpy(), diff_ab["scores"]["B"].numpy()
    # B minus A keeps the reference's labelling: 'A' is B's scores there.
    assert diff_ba["scores"]["A"] is diff_ab["scores"]["B"]
    assert diff_ba["algorithms"] == {"A": "B", "B": "A"}
    # The directions are those of `modeldiff diff` on the same scores.
    cli = cli_diff(work, sa, sb)
    assert_same_directions(diff_ab["directions"], cli["a_minus_b"]["directions"], "A - B")
    assert_same_directions(diff_ba["directions"], cli["b_minus_a"]["directions"], "B - A")
    np.testing.assert_allclose(diff_ab["variances"]["A"], cli["a_minus_b"]["variance_a"],
                               rtol=1e-4)
    # The second snippet, on these scores.
    ns = run_snippet(README_SCORES, {"scoresA": diff_ab["scores"]["A"],
                                     "scoresB": diff_ab["scores"]["B"]},
                     context={"ModelDiff": ns["ModelDiff"]})
    check_result(ns["diff_ab"], N_VAL, N_TRAIN)
    assert_same_directions(ns["diff_ab"]["directions"], cli["a_minus_b"]["directions"], "A - B")
    assert_same_directions(ns["diff_ba"]["directions"], cli["b_minus_a"]["directions"], "B - A")


def case_cli_parity(work):
    """The Python TRAK scores equal `modeldiff trak` on the same saved models, checkpoints
    and data (architectures written with torch.jit.script/trace + save, checkpoints with
    torch.save, data as .npy), for the scripted model and the traced BatchNorm one."""
    fx = Fixture(work)
    data = {}
    for name, x, y in (("train", fx.train_x, fx.train_y), ("val", fx.val_x, fx.val_y)):
        np.save(work / f"{name}_x.npy", x.numpy())
        np.save(work / f"{name}_y.npy", y.numpy())
        data[name] = (work / f"{name}_x.npy", work / f"{name}_y.npy")
    torch.jit.script(SmallCNN()).save(str(work / "arch_a.pt"))
    torch.jit.trace(BatchNormCNN().eval(), fx.train_x[:100]).save(str(work / "arch_b.pt"))
    for i, sd in enumerate(fx.ckptsA):
        torch.save(sd, work / f"a{i}.pt")
    ckpts = {"a": [work / "a0.pt", work / "a1.pt"], "b": fx.ckptsB}
    for projection in ("structured", "dense"):
        md = fx.model_diff(projection=projection, progress=True)
        start = time.perf_counter()
        py_a, py_b = md.trak_scores(fx.val_loader)
        py_seconds = time.perf_counter() - start
        cli_seconds = 0
        for letter, py in (("a", py_a), ("b", py_b)):
            out = work / f"cli_{letter}_{projection}.npy"
            cli_seconds += run_cli(
                "trak", "--model", work / f"arch_{letter}.pt", "--checkpoints",
                *ckpts[letter], "--train-images", data["train"][0], "--train-labels",
                data["train"][1], "--val-images", data["val"][0], "--val-labels",
                data["val"][1], "--proj-dim", PROJ_DIM, "--projection", projection,
                "--threads", 2, "-o", out)
            cli = np.load(out)
            got = py.numpy()
            assert got.shape == cli.shape == (N_VAL, N_TRAIN), (got.shape, cli.shape)
            err = np.abs(got - cli).max() / np.abs(cli).max()
            assert err < 1e-3, (letter, projection, err)
            cos = (got * cli).sum() / (np.linalg.norm(got) * np.linalg.norm(cli))
            assert cos > 0.99999, (letter, projection, cos)
        print(f"{projection}: Python TRAK {py_seconds:.2f} s (both algorithms, 2 checkpoints "
              f"each, {N_TRAIN} + {N_VAL} examples), CLI {cli_seconds:.2f} s (two runs, "
              f"including start-up)")


CHILD = textwrap.dedent("""
    import pathlib, signal, sys, threading, os, time, numpy as np
    sys.argv = ["test_trak_api.py", "child"]
    sys.path.insert(0, {here!r})
    import test_trak_api as t
    work = pathlib.Path({work!r})
    fx = t.Fixture(work)
    md = fx.model_diff(progress=True)
    if {interrupt!r}:
        # Ctrl-C once the first checkpoint's entry is in the cache.
        def interrupter():
            while not list((work / "cache").glob("features-*")):
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupter, daemon=True).start()
        try:
            md.trak_scores(fx.val_loader)
        except KeyboardInterrupt:
            print("interrupted")
            sys.exit(0)
        sys.exit("not interrupted")
    a, b = md.trak_scores(fx.val_loader)
    np.save(work / {out!r}, np.stack([a.numpy(), b.numpy()]))
""")


def run_child(work, out, interrupt=False):
    code = CHILD.format(here=str(pathlib.Path(__file__).parent), work=str(work), out=out,
                        interrupt=interrupt)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout + done.stderr


def case_cache_resume(work):
    """Each checkpoint's features are cached by content: a Ctrl-C'd run keeps its finished
    checkpoints and leaves no partial entry, a new process resumes from them (the same
    scores), and a process that finds them all computes nothing."""
    log = run_child(work, "", interrupt=True)
    assert "interrupted" in log, log
    entries = sorted(p.name for p in (work / "cache").iterdir())
    assert entries and all(e.startswith("features-") for e in entries), entries
    assert len(entries) < 4, entries
    log = run_child(work, "first.npy")
    assert log.count("features from cache") == len(entries), log
    assert log.count("featurized") == 4 - len(entries), log
    log = run_child(work, "second.npy")
    assert log.count("features from cache") == 4 and "featurized" not in log, log
    first, second = np.load(work / "first.npy"), np.load(work / "second.npy")
    np.testing.assert_array_equal(first, second)
    # Settings the features depend on make other entries; the device is not one of them.
    fx = Fixture(work)
    fx.model_diff(proj_dim=PROJ_DIM + 1).trak_scores(fx.val_loader)
    assert len(list((work / "cache").glob("features-*"))) == 8


def expect_value_error(fragments, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ValueError as e:
        for fragment in fragments:
            assert fragment in str(e), (fragment, str(e))
        return e
    raise AssertionError(f"no ValueError; expected one mentioning {fragments}")


class DictDataset(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}


def case_bad_inputs(work):
    fx = Fixture(work)
    x, y = fx.train_x, fx.train_y
    models = (fx.modelA, fx.modelB, fx.ckptsA, fx.ckptsB)
    # Loaders whose batches are not (inputs, labels).
    expect_value_error(["train_loader", "batch 0", "not (inputs, labels)", "dict",
                        "'image'", "'label'"], ModelDiff, *models,
                       DataLoader(DictDataset(x, y), batch_size=50))
    idx = torch.arange(len(y))
    expect_value_error(["train_loader", "batch 0", "not (inputs, labels)", "3 items"],
                       ModelDiff, *models, DataLoader(TensorDataset(x, y, idx), batch_size=50))
    expect_value_error(["train_loader", "integer class labels"], ModelDiff, *models,
                       DataLoader(TensorDataset(x, y.float()), batch_size=50))
    expect_value_error(["train_loader", "not iterable"], ModelDiff, *models, 42)
    md = fx.model_diff()
    expect_value_error(["val_loader", "batch 0", "not (inputs, labels)"], md.get_A_minus_B,
                       [x[:10]], 2)
    # Inputs of another shape than the models take.
    wrong = DataLoader(TensorDataset(torch.rand(20, 3, 32, 32), y[:20]), batch_size=10)
    expect_value_error(["modelA_ckpts[0]", "cannot take the target loader's inputs",
                        "x 3 x 32 x 32"], md.get_A_minus_B, wrong, 2)
    # Labels beyond the models' classes.
    expect_value_error(["not one of the model's classes", "labels 0 to 9", "found 12"],
                       md.get_A_minus_B,
                       DataLoader(TensorDataset(fx.val_x[:20], torch.full((20,), 12)), batch_size=10),
                       2)
    # A shuffling loader yields other data on each pass.
    shuffled = DataLoader(TensorDataset(x, y), batch_size=100, shuffle=True)
    expect_value_error(["train_loader", "other data than on its first pass", "shuffle=False"],
                       ModelDiff(*models, shuffled, work / "cache2", proj_dim=PROJ_DIM,
                                 progress=False).get_A_minus_B, fx.val_loader, 2)
    # A checkpoint for another model, in memory and as a file.
    e = expect_value_error(["modelA_ckpts[1]", "does not fit modelA", "unexpected keys",
                            "bn.weight"], ModelDiff, fx.modelA, fx.modelB,
                           [fx.ckptsA[0], torch.load(fx.ckptsB[0])], fx.ckptsB, fx.train_loader)
    assert "missing keys" not in str(e) and "mismatched" not in str(e), str(e)
    five_classes = dict(fx.ckptsA[0], **{"fc.weight": torch.zeros(5, 400),
                                         "fc.bias": torch.zeros(5)})
    expect_value_error(["modelA_ckpts[0]", "mismatched shapes",
                        "fc.weight: model 10 x 400, checkpoint 5 x 400", "fc.bias"], ModelDiff,
                       fx.modelA, fx.modelB, [five_classes], fx.ckptsB, fx.train_loader)
    torch.save(fx.ckptsA[0], work / "a.pt")
    expect_value_error(["modelB_ckpts[0]", "a.pt", "does not fit modelB", "missing keys",
                        "bn.running_mean"], ModelDiff, fx.modelA, fx.modelB, fx.ckptsA,
                       [str(work / "a.pt")], fx.train_loader)
    expect_value_error(["modelB_ckpts[0]", "no such file", "missing.pt"], ModelDiff, fx.modelA,
                       fx.modelB, fx.ckptsA, [str(work / "missing.pt")], fx.train_loader)
    expect_value_error(["modelA_ckpts", "no checkpoints"], ModelDiff, fx.modelA, fx.modelB, [],
                       fx.ckptsB, fx.train_loader)
    expect_value_error(["modelB", "missing"], ModelDiff, fx.modelA, None, fx.ckptsA, fx.ckptsB,
                       fx.train_loader)
    expect_value_error(["made without models"], ModelDiff().get_A_minus_B, fx.val_loader, 2)
    expect_value_error(["unknown projection 'sparse'"], fx.model_diff, projection="sparse")
    # Scores of mismatched shapes and NaN scores.
    a, b = md.trak_scores(fx.val_loader)
    expect_value_error(["scoresB", "differ in shape"], md.get_A_minus_B_from_scores, a,
                       b[:, :-1], 2)
    nan = a.clone()
    nan[3, 5] = float("nan")
    expect_value_error(["scoresA", "row 3", "column 5", "NaN"], md.get_A_minus_B_from_scores,
                       nan, b, 2)
    # The ensemble underneath, misused: errors, not internal assertions.
    from modeldiff import _trak
    ensemble = _trak.Ensemble(4, 6, 0.0)
    expect_value_error(["block cuts", "[0, 2, 2]"], ensemble.record_blocks, [0, 2, 2])
    expect_value_error(["block cuts", "[1, 3]"], ensemble.record_blocks, [1, 3])
    expect_value_error(["no checkpoint has been added"], ensemble.scores, True)
    ensemble.add(np.ones((6, 3), np.float32), np.ones((4, 3), np.float32),
                 np.ones(6, np.float32), "checkpoint 0")
    expect_value_error(["before the first checkpoint", "1 checkpoints added"],
                       ensemble.record_blocks, [0, 1, 2])
    # None of that hurt the interpreter or the object.
    check_result(md.get_A_minus_B(fx.val_loader, 2), N_VAL, N_TRAIN)


def case_save_result(work):
    """md.save writes the folders `modeldiff diff` and `modeldiff run` write: diff.h5 and
    summary.json as the CLI's on the same scores, the scores, the loaders' images and labels,
    and a run.json whose project reads them."""
    fx = Fixture(work)
    md = fx.model_diff(save_dir=work / "auto")
    ab = md.get_A_minus_B(fx.val_loader, 2)
    out = md.save(work / "result")
    assert (work / "auto" / "run.json").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["format"] == "modeldiff-run" and run["num_train"] == N_TRAIN
    assert run["comparisons"][0]["folder"] == "diff"
    assert len(run["algorithms"]["A"]["val_accuracy"]) == 2
    for stem, x, y in (("train", fx.train_x, fx.train_y), ("val", fx.val_x, fx.val_y)):
        np.testing.assert_array_equal(np.load(out / "data" / f"{stem}_images.npy"), x.numpy())
        np.testing.assert_array_equal(np.load(out / "data" / f"{stem}_labels.npy"), y.numpy())
    sa = np.load(out / "scores" / "A.npy")
    np.testing.assert_array_equal(sa, ab["scores"]["A"].numpy())
    cli = cli_diff(work, sa, np.load(out / "scores" / "B.npy"))
    with h5py.File(out / "diff" / "diff.h5", "r") as f:
        for group in ("a_minus_b", "b_minus_a"):
            np.testing.assert_allclose(f[group]["directions"][()], cli[group]["directions"],
                                       atol=1e-5)
            np.testing.assert_array_equal(f[group]["top_train"][()], cli[group]["top_train"])
        np.testing.assert_array_equal(f["a_minus_b"]["top_train"][()][:, :10],
                                      ab["top_train"])
    summary = json.loads((out / "diff" / "summary.json").read_text())
    assert summary["normalized_rows"] is True, summary.keys()
    # modeldiff-gui opens the saved run (offscreen) and draws its window.
    if GUI:
        shot = work / "shot.png"
        done = subprocess.run([GUI, str(out), "--screenshot", str(shot)], capture_output=True,
                              text=True, timeout=120,
                              env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", done.stderr
    # From scores alone: the diff result folder.
    md.get_A_minus_B_from_scores(ab["scores"]["A"], ab["scores"]["B"], 2)
    out = md.save(work / "from_scores")
    assert sorted(p.name for p in out.iterdir()) == ["diff.h5", "summary.json"]
    expect_value_error(["nothing to save"], ModelDiff().save, work / "nothing")


def case_significance(work):
    """The significance of every direction, from the half ensembles of 4 checkpoints per model
    that the Python TRAK keeps at no extra cost: the same numbers as `modeldiff trak --halves`
    then `modeldiff diff --scores-a-halves` on the same saved models, and from_scores with those
    half files equal to the CLI's diff; with 2 checkpoints, the reason instead."""
    fx = Fixture(work)
    ckpts_a = fx.ckptsA + [train(SmallCNN, s, fx.train_x, fx.train_y) for s in (4, 5)]
    ckpts_b = fx.ckptsB[:]
    for s in (6, 7):
        path = work / f"b{s}.pt"
        torch.save(train(BatchNormCNN, s, fx.train_x, fx.train_y), path)
        ckpts_b.append(str(path))
    md = ModelDiff(fx.modelA, fx.modelB, ckpts_a, ckpts_b, fx.train_loader, work / "cache",
                   proj_dim=PROJ_DIM, progress=False)
    ab = md.get_A_minus_B(fx.val_loader, 2)
    ba = md.get_B_minus_A(fx.val_loader, 2)
    for r in (ab, ba):
        sig = r["significance"]
        assert sig["computed"] and sig["splits"] == 3 and sig["reason"] == "", sig
        assert len(sig["verdict"]) == 2 and len(sig["noise_floor"]) == 2, sig
        assert all(v in ("above the noise floor", "not distinguishable from seed noise")
                   for v in sig["verdict"]), sig
        assert sig["above_noise_floor"] == [bool(x > 1) for x in sig["floor_ratio"]], sig
    # The CLI on the same models: saved architectures and checkpoints, data as .npy.
    data = []
    for name, x, y in (("train", fx.train_x, fx.train_y), ("val", fx.val_x, fx.val_y)):
        np.save(work / f"{name}_x.npy", x.numpy())
        np.save(work / f"{name}_y.npy", y.numpy())
    data = ["--train-images", work / "train_x.npy", "--train-labels", work / "train_y.npy",
            "--val-images", work / "val_x.npy", "--val-labels", work / "val_y.npy"]
    torch.jit.script(SmallCNN()).save(str(work / "arch_a.pt"))
    torch.jit.trace(BatchNormCNN().eval(), fx.train_x[:100]).save(str(work / "arch_b.pt"))
    files_a = []
    for i, sd in enumerate(ckpts_a):
        torch.save(sd, work / f"a{i}.pt")
        files_a.append(work / f"a{i}.pt")
    halves = {}
    for letter, ckpts in (("a", files_a), ("b", ckpts_b)):
        run_cli("trak", "--model", work / f"arch_{letter}.pt", "--checkpoints", *ckpts, *data,
                "--proj-dim", PROJ_DIM, "--threads", 2, "--halves", "-o", work / f"{letter}.npy")
        halves[letter] = [work / f"{letter}.split{s}.half{h}.npy" for s in (1, 2, 3)
                          for h in (1, 2)]
    run_cli("diff", "--scores-a", work / "a.npy", "--scores-b", work / "b.npy", "-c", 2,
            "--scores-a-halves", *halves["a"], "--scores-b-halves", *halves["b"],
            "--rotation", "none", "--out", work / "cli-diff")
    cli = json.loads((work / "cli-diff" / "summary.json").read_text())["significance"]
    assert cli["computed"] and cli["splits"] == 3, cli
    for got, key in ((ab, "a_minus_b"), (ba, "b_minus_a")):
        want = cli[key]
        for field in ("noise_floor", "half_explained_variance", "null_explained_variance"):
            np.testing.assert_allclose(got["significance"][field], want[field], rtol=2e-2,
                                       err_msg=f"{key} {field}")
        for c, ratio in enumerate(want["floor_ratio"]):
            if abs(ratio - 1) > 0.05:  # away from the boundary, the verdicts agree
                assert got["significance"]["verdict"][c] == want["verdict"][c], (key, c)
    # From the CLI's own files through the Python API: the CLI's numbers to float precision.
    load = lambda files: [(np.load(files[i]), np.load(files[i + 1])) for i in (0, 2, 4)]
    r = ModelDiff().get_A_minus_B_from_scores(np.load(work / "a.npy"), np.load(work / "b.npy"),
                                              2, halves_A=load(halves["a"]),
                                              halves_B=load(halves["b"]))
    for field in ("noise_floor", "half_explained_variance", "floor_ratio"):
        np.testing.assert_allclose(r["significance"][field], cli["a_minus_b"][field],
                                   rtol=1e-4, err_msg=field)
    assert r["significance"]["verdict"] == cli["a_minus_b"]["verdict"]
    # Without halves, or with only A's, or with two checkpoints: said, not guessed.
    plain = ModelDiff().get_A_minus_B_from_scores(np.load(work / "a.npy"),
                                                  np.load(work / "b.npy"), 2)
    assert not plain["significance"]["computed"]
    assert "halves_A" in plain["significance"]["reason"], plain["significance"]
    expect_value_error(["halves_A and halves_B"], ModelDiff().get_A_minus_B_from_scores,
                       np.load(work / "a.npy"), np.load(work / "b.npy"), 2,
                       halves_A=load(halves["a"]))
    two = fx.model_diff().get_A_minus_B(fx.val_loader, 2)["significance"]
    assert not two["computed"] and "has 2 checkpoints" in two["reason"], two


def main():
    case = globals().get("case_" + CASE)
    if case is None:
        print(f"unknown case {CASE}", file=sys.stderr)
        return 2
    if not FASHION.is_dir():
        print(f"no Fashion-MNIST in {FASHION} (Debian: dataset-fashion-mnist)", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 77  # CTest: skipped
    with tempfile.TemporaryDirectory(prefix="modeldiff-trak-python-") as tmp:
        case(pathlib.Path(tmp))
    print(f"python.trak_{CASE}: ok")
    return 0


if __name__ == "__main__" and CASE != "child":
    sys.exit(main())
