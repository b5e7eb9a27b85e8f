"""ModelDiff.save(result_dir): the folders `modeldiff diff` and `modeldiff run` write, so that
`modeldiff-gui result_dir` opens them.

From models and loaders (image batches B x C x H x W, C = 1 or 3), a run folder:
    run.json                 format "modeldiff-run": the project (datasets, A and B given by
                             their scores), each algorithm's checkpoints' target accuracy, the
                             comparison below
    data/train_images.npy    N x C x H x W float32, the training loader's inputs in order (the
                             GUI shows float images min-max scaled), train_labels.npy N int64
    data/val_images.npy, val_labels.npy   the same for the validation loader
    scores/A.npy, B.npy      T x N float32 TRAK scores (row = validation example)
    diff/diff.h5, summary.json   what `modeldiff diff` writes for these scores
Otherwise (from scores, or inputs that are not images), the diff result folder alone:
result_dir/diff.h5 and summary.json. Every file is staged and renamed into place.
"""
import hashlib
import json
import os
import pathlib
import shutil

import numpy as np

from ._modeldiff import __version__
from ._modeldiff import model_diff as _model_diff


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_loader(data, folder, stem):
    """The loader's inputs and labels, streamed into .npy files; checks it yields what it did."""
    images = np.lib.format.open_memmap(folder / f"{stem}_images.npy", mode="w+",
                                       dtype=np.float32, shape=(data.count, *data.example_shape))
    labels = np.empty(data.count, dtype=np.int64)
    batches = data.batches()
    at = 0
    for x, y in batches:
        if at + len(y) > data.count:
            break  # more examples than the first pass: check_same says so
        images[at:at + len(y)] = x
        labels[at:at + len(y)] = y
        at += len(y)
    data.check_same(batches)
    images.flush()
    del images
    np.save(folder / f"{stem}_labels.npy", labels)


def _is_image_data(data):
    shape = data.example_shape
    return len(shape) == 3 and shape[0] in (1, 3)


def write(result_dir, scores, options, train=None, target=None, reports=None, labels=("A", "B")):
    """scores: (A's, B's) T x N float32 numpy; options: model_diff's keyword arguments;
    train, target: LoaderData of the loaders the scores came from (None: from scores)."""
    result_dir = pathlib.Path(result_dir).absolute()
    staging = result_dir.with_name(f".{result_dir.name}.staging-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        run = train is not None and target is not None and _is_image_data(train) and \
            _is_image_data(target)
        if not run:
            _model_diff(scores[0], scores[1], **options, out_dir=str(staging / "diff"))
            for f in (staging / "diff").iterdir():
                f.rename(staging / f.name)
            (staging / "diff").rmdir()
        else:
            _write_run(result_dir, staging, scores, options, train, target, reports, labels)
        if result_dir.exists():
            shutil.rmtree(result_dir)
        staging.rename(result_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return result_dir


def _write_run(result_dir, staging, scores, options, train, target, reports, labels):
    for sub in ("data", "scores"):
        (staging / sub).mkdir()
    _write_loader(train, staging / "data", "train")
    _write_loader(target, staging / "data", "val")
    provenance = {"command_line": "modeldiff (Python): ModelDiff.save"}
    for key, letter, s in (("a", "A", scores[0]), ("b", "B", scores[1])):
        path = staging / "scores" / f"{letter}.npy"
        np.save(path, s)
        provenance[key] = {"path": str(result_dir / "scores" / path.name),
                           "sha256": _sha256(path), "format": "npy"}
    _model_diff(scores[0], scores[1], **options, out_dir=str(staging / "diff"),
                provenance=provenance)
    data = {stem: {"images": str(result_dir / "data" / f"{stem}_images.npy"),
                   "labels": str(result_dir / "data" / f"{stem}_labels.npy")}
            for stem in ("train", "val")}
    project = {
        "name": result_dir.name, "output": str(result_dir), "threads": 0,
        "data": data,
        "A": {"label": labels[0], "scores": str(result_dir / "scores" / "A.npy")},
        "B": {"label": labels[1], "scores": str(result_dir / "scores" / "B.npy")},
        "diff": {"components": options["components"], "top_k": options["top_k"],
                 "per_class": False, "raw_rows": not options["normalize_rows"]},
    }
    algorithms = {}
    for letter, label in zip("AB", labels):
        checkpoints = (reports or {}).get(letter, [])
        accuracy = [c["target_accuracy"] for c in checkpoints]
        algorithms[letter] = {
            "label": label, "checkpoints": [], "val_accuracy": accuracy,
            "mean_val_accuracy": float(np.mean(accuracy)) if accuracy else None,
            "scores": f"scores/{letter}.npy"}
        attributed = [c["attributed"] for c in checkpoints if c["attributed"]]
        if attributed:
            algorithms[letter]["attributed"] = attributed[0]
    record = {"format": "modeldiff-run", "version": __version__, "project": project,
              "num_train": train.count, "num_val": target.count, "algorithms": algorithms,
              "comparisons": [{"title": "all validation examples", "folder": "diff",
                               "targets": target.count}]}
    (staging / "run.json").write_text(json.dumps(record, indent=2) + "\n")
