"""The built-in studies (`modeldiff demo STUDY --quick`) and training from a checkpoint
(`train --init`, a project's "init" / "pretrain"). Run by CTest: test_studies.py EXE CASE."""
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

EXE = sys.argv[1]
CASE = sys.argv[2]
ARCH = pathlib.Path(__file__).resolve().parents[2] / "resources" / "demo" / "demo_cnn.pt"
FM = pathlib.Path("/usr/share/datasets/fashion-mnist")
LABELS = {"augmentation": ("augmented", "not augmented"),
          "pretraining": ("pre-trained", "from scratch"),
          "sgd": ("lr 0.1, batch 32", "lr 0.05, batch 512")}


def run(*args, expect=0):
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != expect:
        raise AssertionError(f"exit {proc.returncode} (expected {expect}) for {args}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def read_json(path):
    return json.loads(pathlib.Path(path).read_text())


def case_studies_quick(work):
    """Each study at its smoke-test size into a clean folder: report, diffs and record."""
    for study, (label_a, label_b) in LABELS.items():
        printed = json.loads(run("demo", study, "--quick", "--print-project").stdout)
        assert printed["A"]["label"] == label_a and printed["B"]["label"] == label_b
        assert printed["A"]["architecture"].startswith("resnet9:width=16"), printed["A"]
        out = work / study
        proc = run("demo", study, "--quick", "--threads", 2, "-o", out)
        assert "report:" in proc.stdout
        rec = read_json(out / "run.json")
        n = rec["num_train"]
        assert rec["num_val"] == 200 and n == (300 if study == "pretraining" else 500), rec
        for key, label in (("A", label_a), ("B", label_b)):
            algo = rec["algorithms"][key]
            assert algo["label"] == label and algo["trained"] == 2, algo
            assert all(0 <= a <= 1 for a in algo["val_accuracy"]), algo
            s = np.load(out / "scores" / f"{key}.npy")
            assert s.shape == (200, n) and np.isfinite(s).all()
        assert len(rec["comparisons"]) == 11, rec["comparisons"]  # all + ten classes
        for c in rec["comparisons"]:
            summary = read_json(out / c["folder"] / "summary.json")
            assert summary, c
            with h5py.File(out / c["folder"] / "diff.h5", "r") as f:
                assert f["a_minus_b"]["directions"].shape[1] == n
                assert f.attrs["label_a"] == label_a and f.attrs["label_b"] == label_b
        index = (out / "report" / "index.html").read_text()
        assert label_a in index and label_b in index
        project = rec["project"]
        check_finding_reproduces(work / ("cf-" + study), study, out, rec)
        if study == "augmentation":
            assert project["A"]["train"]["augment"] and not project["B"]["train"]["augment"]
            # --models 3 on the same folder: one more model each, the first two kept, and a
            # third checkpoint in every TRAK ensemble.
            again = run("demo", study, "--quick", "--models", 3, "--threads", 2, "-o", out)
            rec3 = read_json(out / "run.json")
            for key in ("A", "B"):
                algo = rec3["algorithms"][key]
                assert algo["trained"] == 1 and algo["reused"] == 2, algo
                assert len(algo["val_accuracy"]) == 3, algo
                assert rec3["project"][key]["train"]["models"] == 3
            run("demo", study, "--quick", "--models", 0, "--print-project", expect=2)
        if study == "sgd":
            a, b = project["A"]["train"], project["B"]["train"]
            assert a["lr"] > b["lr"] and a["batch_size"] < b["batch_size"]
        if study == "pretraining":
            pre = project["A"]["train"]["pretrain"]
            # Disjoint from the training set: the same seeded permutation after its positions.
            assert pre["data"]["subset_offset"] == n and pre["data"]["subset_seed"] == 0
            ckpt = out / "models" / "A-pretrain" / "model_0.pt"
            assert ckpt.exists()
            recipe = read_json(out / "models" / "A" / "recipe.json")
            assert recipe["init_sha256"] == hashlib.sha256(
                ckpt.read_bytes()).hexdigest()
            assert "init_sha256" not in read_json(out / "models" / "B" / "recipe.json")
            # A rerun keeps the pre-trained model and the fine-tuned ones.
            again = run("demo", study, "--quick", "--threads", 2, "-o", out)
            log = again.stdout + again.stderr
            assert "pre-trained pre-trained on" in log and "kept from an earlier run" in log, log
            rec2 = read_json(out / "run.json")
            assert rec2["algorithms"]["A"]["trained"] == 0 and rec2["algorithms"]["A"]["reused"] == 2
    run("demo", "nosuchstudy", "--quick", "--print-project", expect=2)


# What each study's full-size project records: the verdict, and where the 95% interval of the
# A-minus-B effect lies (+1: above 0, 0: around 0, -1: below 0).
VERDICTS = {"augmentation": ("supported", +1), "sgd": ("rejected", 0),
            "pretraining": ("rejected", -1)}


def check_finding_reproduces(work, study, out, rec):
    """The study's finding, re-measured by the run, is what `modeldiff counterfactual` measures
    from the saved models and images; the full-size project records its measured effect."""
    (finding,) = rec["project"]["findings"]
    assert "effect" not in finding and "verdict" not in finding  # quick: nothing recorded
    (measured,) = rec["findings"]
    assert "skipped" not in measured and measured["images"] == finding["images"]["direction_k"]
    full = json.loads(run("demo", study, "--print-project").stdout)["findings"][0]
    low, high = full["effect"]["ci95"]
    assert low <= full["effect"]["mean"] <= high, full
    verdict, side = VERDICTS[study]
    assert full["verdict"] == verdict, full
    assert {+1: low > 0, 0: low < 0 < high, -1: high < 0}[side], full
    # The full project names its direction by class (the first showing mostly that class), the
    # quick one, where no direction need show one class, by number: the same set.
    assert (full["transform"], full["target_class"]) == (finding["transform"],
                                                         finding["target_class"])
    assert full["direction"].split(":")[0] == finding["direction"].split(":")[0], full
    assert full["direction"].endswith(f":class={full['target_class']}"), full
    assert measured["component"] == 1, measured
    models = []
    for key in ("A", "B"):
        models += ["--model-" + key.lower(), rec["project"][key]["architecture"],
                   "--checkpoints-" + key.lower(), *rec["algorithms"][key]["checkpoints"]]
    run("counterfactual", *models, "--images", out / rec["val_images"]["images"],
        "--labels", out / rec["val_images"]["labels"], "--transform", finding["transform"],
        "--target-class", finding["target_class"], "--direction-of", out / "diff" / "all",
        "--direction", finding["direction"], "--direction-k", finding["images"]["direction_k"],
        "-o", work)
    effects = read_json(work / "effects.json")
    (d,) = effects["a_minus_b"]
    low, high = measured["effect"]["ci95"]
    assert low <= d["mean_delta_p"] <= high, (measured, d)
    assert abs(d["mean_delta_p"] - measured["effect"]["mean"]) < 1e-6, (measured, d)
    for row, key in zip(effects["results"], ("A", "B")):
        assert abs(row["mean_delta_p"] - measured["delta_p"][key]) < 1e-6, (measured, row)


def small_data(work):
    """A small 3-class 28 x 28 dataset (.npy) and two state dicts of the demo CNN that differ
    from the seeded initialisation (weights scaled, buffers as the architecture has them)."""
    rng = np.random.default_rng(0)
    labels = np.arange(120) % 3
    x = rng.integers(0, 40, size=(120, 28, 28), dtype=np.uint8)
    for i, y in enumerate(labels):
        x[i, 4 + 8 * y:8 + 8 * y, 4:24] = 200
    np.save(work / "x.npy", x)
    np.save(work / "y.npy", labels.astype(np.int64))
    model = torch.jit.load(str(ARCH))
    params = dict(model.named_parameters())
    for m in range(2):
        torch.manual_seed(m)
        state = {k: (torch.randn_like(v) * 0.05 if k in params else v.clone())
                 for k, v in model.state_dict().items()}
        torch.save(state, work / f"init{m}.pt")
    return list(params)


def case_train_init(work):
    """`train --init`: training starts from the checkpoint's weights (a step of lr 1e-12 leaves
    them as they were, the seeded initialisation is far away), and the init is part of the
    recipe by content: another init checkpoint is refused in the same folder, and in a project
    another init retrains while the same one is kept."""
    params = small_data(work)
    common = ["--model", ARCH, "--train-images", work / "x.npy", "--train-labels", work / "y.npy",
              "--epochs", 1, "--batch-size", 40, "--lr", 1e-12, "--momentum", 0,
              "--weight-decay", 0, "--threads", 2]
    run("train", *common, "--init", work / "init0.pt", "--out", work / "ft")
    run("train", *common, "--out", work / "scratch")
    init = torch.load(work / "init0.pt")
    tuned = torch.load(work / "ft" / "model_0.pt")
    scratch = torch.load(work / "scratch" / "model_0.pt")
    for k in params:
        assert torch.allclose(tuned[k], init[k], atol=1e-6), k
    assert max((scratch[k] - init[k]).abs().max().item() for k in params) > 0.01
    record = read_json(work / "ft" / "train.json")
    assert record["recipe"]["init"]["sha256"] == hashlib.sha256(
        (work / "init0.pt").read_bytes()).hexdigest()
    proc = run("train", *common, "--init", work / "init1.pt", "--out", work / "ft", expect=2)
    assert "init" in proc.stderr and "another recipe" in proc.stderr, proc.stderr

    project = {
        "name": "init test", "output": "out",
        "data": {"train": {"images": "x.npy", "labels": "y.npy"},
                 "val": {"images": "x.npy", "labels": "y.npy", "subset": 30}},
        "A": {"label": "scratch", "architecture": str(ARCH),
              "train": {"models": 2, "epochs": 1, "batch_size": 40}},
        "B": {"label": "fine-tuned", "architecture": str(ARCH),
              "train": {"models": 2, "epochs": 1, "batch_size": 40, "lr": 0.01,
                        "init": "init0.pt"}},
        "trak": {"proj_dim": 64}, "diff": {"components": 2, "class_components": 1},
        "findings": [{"comparison": "all", "direction": "b_minus_a:1",
                      "hypothesis": "HYPOTHESIS-TEXT", "transform": "patch:x=1,y=1,size=3",
                      "target_class": 1}],
    }
    def run_project():
        (work / "p.json").write_text(json.dumps(project))
        proc = run("run", work / "p.json", "--threads", 2)
        return proc, read_json(work / "out" / "run.json")["algorithms"]["B"]
    proc, b = run_project()
    assert b["trained"] == 2
    index = (work / "out" / "report" / "index.html").read_text()
    assert "HYPOTHESIS-TEXT" in index and "not measured" in index
    proc, b = run_project()
    assert b["trained"] == 0 and b["reused"] == 2
    project["B"]["train"]["init"] = "init1.pt"
    proc, b = run_project()
    assert b["trained"] == 2 and "init_sha256" in proc.stdout + proc.stderr, proc.stdout
    # Both an init and a pre-training: refused, naming the key.
    project["B"]["train"]["pretrain"] = {"data": {"images": "x.npy", "labels": "y.npy"}}
    (work / "p.json").write_text(json.dumps(project))
    assert "B.train.pretrain" in run("run", work / "p.json", expect=2).stderr


def case_validate_quick(work):
    """`modeldiff validate --quick` on one planted case and one null case: the table's shares
    are those of `modeldiff diff --top-k 50` on the case's own scores against the images the
    run planted (the principal directions with --rotation none, the raw-rows variant with
    --raw-rows, the varimax variant, the runs' default, with --rotation varimax); the run
    itself used varimax; a rerun reuses every model and
    gives the same table; an unknown case is refused naming the known ones."""
    listed = run("validate", "--list").stdout.split("\n")
    names = [line.split()[0] for line in listed if line.strip()]
    assert names[:2] == ["patch-cnn", "patch-resnet"] and len(names) == 8, names
    assert sum("(null)" in line for line in listed) == 2, listed
    out = work / "v"
    args = ["validate", "--quick", "-o", out, "--case", "patch-cnn", "--case", "null-cnn",
            "--threads", 2]
    printed = run(*args).stdout
    table = read_json(out / "validation.json")
    assert [c["name"] for c in table["cases"]] == ["patch-cnn", "null-cnn"], table
    assert (out / "validation.md").read_text() in printed
    patch, null = table["cases"]
    assert not patch["null"] and null["null"]
    assert list(patch["variants"]) == ["residual PCA", "raw rows", "varimax", "per class"]
    record = read_json(out / "patch-cnn" / "run.json")
    planted = set(record["planted"]["patched_train_indices"])
    run_summary = read_json(out / "patch-cnn" / "diff" / "all" / "summary.json")
    assert run_summary["settings"]["rotation"] == "varimax", run_summary["settings"]
    assert patch["planted_train"] == len(planted) == record["planted"]["patched_train"]
    assert abs(patch["chance"] - len(planted) / record["num_train"]) < 1e-12
    scores = [out / "patch-cnn" / "scores" / f"{x}.npy" for x in "AB"]
    shape = np.load(scores[0]).shape  # T x N
    assert shape == (record["num_val"], record["num_train"]), shape
    for variant, extra in (("residual PCA", ["--rotation", "none"]),
                           ("raw rows", ["--rotation", "none", "--raw-rows"]),
                           ("varimax", ["--rotation", "varimax"])):
        d = work / variant.replace(" ", "_")
        run("diff", "--scores-a", scores[0], "--scores-b", scores[1], "-c", 5, "--top-k", 50,
            "-o", d, *extra)
        tops = read_json(d / "summary.json")["a_minus_b"]["top_train"][:3]
        want = [sum(j in planted for j in top) / len(top) for top in tops]
        got = patch["variants"][variant]["all"]
        assert np.allclose(got, want, atol=1e-12), (variant, got, want)
        assert patch["variants"][variant]["found"] == (max(want) >= table["found_share"])
        in_class = patch["variants"][variant]["in_class"]
        assert patch["variants"][variant]["found_in_class"] == (
            max(in_class) >= table["found_share"]), (variant, in_class)
    for variant in patch["variants"].values():
        assert len(variant["all"]) == 3 and all(0 <= x <= 1 for x in variant["all"]), variant
    assert null["directions"] > 0 and null["significance"] == "", null
    # A rerun trains nothing and computes the same table.
    run(*args)
    again = read_json(out / "validation.json")
    for before, after in zip(table["cases"], again["cases"]):
        assert before["variants"] == after["variants"], (before, after)
    rerun = read_json(out / "patch-cnn" / "run.json")["algorithms"]
    assert rerun["A"]["trained"] == 0 and rerun["A"]["reused"] == 4, rerun["A"]
    refused = run("validate", "--quick", "-o", work / "x", "--case", "no-such", expect=2)
    assert "patch-cnn" in refused.stderr and "no-such" in refused.stderr, refused.stderr


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        globals()["case_" + CASE](pathlib.Path(d))
