"""TRAK scores of two algorithms from nn.Modules, checkpoints and DataLoaders, by the C++ core.

Each model is scripted (torch.jit.script), or traced with a batch of the training loader when
scripting fails; each checkpoint is loaded into it (strictly) and the module crosses to C++ as
the bytes of a TorchScript archive. The loaders are iterated here and each (inputs, labels)
batch is handed to the core's featurizer as it comes: the dataset is never held in memory.

Per checkpoint, features are cached under scores_save_dir in the folder layout of
`modeldiff trak --cache` (features-<key>/: train_features N x k, target_features T x k,
out_to_loss N, target_accuracy 1, float32 .npy), written to a staging folder and renamed into
place whole. The key is a SHA-256 of content only: the model's TorchScript code and the
checkpoint's tensors, the bytes of every batch of both loaders (inputs as float32, labels as
int64, in order), the settings the features depend on and the checkpoint's position (which
seeds its projection), never a path.
"""
import collections.abc
import copy
import hashlib
import io
import os
import pathlib
import sys
import time
import zipfile

import numpy as np
import torch

from . import _modeldiff, _trak

_CACHE_FILES = ("train_features.npy", "target_features.npy", "out_to_loss.npy",
                "target_accuracy.npy")


def _describe(value):
    """What a batch (or a part of one) is, for error messages."""
    if torch.is_tensor(value) or isinstance(value, np.ndarray):
        shape = " x ".join(str(d) for d in value.shape) or "scalar"
        return f"{type(value).__name__} {shape} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, collections.abc.Mapping):
        return f"a {type(value).__name__} with keys {list(value)[:8]}"
    if isinstance(value, (tuple, list)):
        parts = ", ".join(_describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)} items ({parts})"
    return f"a {type(value).__name__}"


def batch_arrays(batch, loader_name, index):
    """(inputs: float32 C-contiguous numpy B x ..., labels: int64 numpy B) of one batch."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"{loader_name}: batch {index} is not (inputs, labels): it is "
                         f"{_describe(batch)}")
    inputs, labels = batch
    if torch.is_tensor(inputs):
        inputs = inputs.detach().cpu().numpy() if inputs.is_floating_point() else None
    elif isinstance(inputs, np.ndarray) and inputs.dtype.kind != "f":
        inputs = None
    if not isinstance(inputs, np.ndarray) or inputs.ndim < 2:
        raise ValueError(f"{loader_name}: batch {index} is not (inputs, labels) with inputs a "
                         f"floating-point batch B x ...: it is {_describe(batch)}")
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != inputs.shape[:1]:
        raise ValueError(f"{loader_name}: batch {index} is not (inputs, labels) with "
                         f"{inputs.shape[0]} integer class labels: it is {_describe(batch)}")
    return (np.ascontiguousarray(inputs, dtype=np.float32),
            np.ascontiguousarray(labels, dtype=np.int64))


class LoaderPass:
    """One pass over a loader: its batches as arrays, and the fingerprint of what it yielded
    (complete once the pass is done)."""

    def __init__(self, loader, name):
        self.name = name
        try:
            self._iterator = iter(loader)
        except TypeError:
            raise ValueError(f"{name}: {_describe(loader)} is not iterable; expected a "
                             f"DataLoader yielding (inputs, labels) batches") from None
        self._inputs, self._labels = hashlib.sha256(), hashlib.sha256()
        self.count = 0
        self.example_shape = None

    def __iter__(self):
        for index, batch in enumerate(self._iterator):
            x, y = batch_arrays(batch, self.name, index)
            if self.example_shape is None:
                self.example_shape = x.shape[1:]
            elif x.shape[1:] != self.example_shape:
                raise ValueError(f"{self.name}: batch {index} has examples of shape "
                                 f"{tuple(x.shape[1:])}, the first batch "
                                 f"{tuple(self.example_shape)}")
            self._inputs.update(memoryview(x).cast("B"))
            self._labels.update(memoryview(y).cast("B"))
            self.count += x.shape[0]
            yield x, y

    def fingerprint(self):
        shape = "x".join(str(d) for d in (self.count, *(self.example_shape or ())))
        return hashlib.sha256(f"{self._inputs.hexdigest()}|{shape}|"
                              f"{self._labels.hexdigest()}".encode()).hexdigest()


class LoaderData:
    """A loader and what its first pass saw: the number of examples, their shape, the
    fingerprint, and the first batch (for tracing). Later passes must yield the same."""

    def __init__(self, loader, name):
        self.loader, self.name = loader, name
        data = LoaderPass(loader, name)
        self.first_batch = None
        for x, _ in data:
            if self.first_batch is None:
                self.first_batch = torch.from_numpy(x.copy())
        if data.count == 0:
            raise ValueError(f"{name}: the loader yielded no examples")
        self.count, self.example_shape = data.count, data.example_shape
        self.fingerprint = data.fingerprint()

    def batches(self):
        """A new pass; check_same(pass) after it."""
        return LoaderPass(self.loader, self.name)

    def check_same(self, data):
        if data.fingerprint() != self.fingerprint:
            raise ValueError(f"{self.name}: the loader yielded other data than on its first pass "
                             f"({data.count} examples, first pass {self.count}); TRAK needs the "
                             f"same examples in the same order on every pass (shuffle=False, no "
                             f"random augmentation)")


def _unwrap_state_dict(sd):
    """A state dict as torch.save'd by trainers: nested under 'model'/'state_dict'/
    'model_state_dict', possibly with DataParallel's 'module.' prefix."""
    while isinstance(sd, collections.abc.Mapping) and not all(torch.is_tensor(v)
                                                              for v in sd.values()):
        inner = [k for k in ("model", "state_dict", "model_state_dict")
                 if isinstance(sd.get(k), collections.abc.Mapping)]
        if not inner:
            break
        sd = sd[inner[0]]
    if isinstance(sd, collections.abc.Mapping) and sd and all(
            isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_checkpoint(ckpt, name):
    """The state dict of a checkpoint: an in-memory mapping of tensors, a module, or a path to
    a torch.save'd file."""
    if isinstance(ckpt, (str, os.PathLike)):
        path = pathlib.Path(ckpt)
        try:
            ckpt = torch.load(path, map_location="cpu")
        except FileNotFoundError:
            raise ValueError(f"{name}: no such file {path}") from None
        except Exception as e:
            raise ValueError(f"{name}: {path} cannot be read by torch.load: {e}") from None
    if isinstance(ckpt, torch.nn.Module):
        ckpt = ckpt.state_dict()
    sd = _unwrap_state_dict(ckpt)
    if not isinstance(sd, collections.abc.Mapping) or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise ValueError(f"{name}: not a state dict (a mapping of names to tensors): it is "
                         f"{_describe(sd)}")
    return sd


def _shape(t):
    return " x ".join(str(d) for d in t.shape) or "scalar"


class PreparedModel:
    """An algorithm's model as TorchScript, with its checkpoints checked against it."""

    def __init__(self, model, checkpoints, label, example_inputs):
        self.label = label
        if isinstance(checkpoints, (str, os.PathLike, collections.abc.Mapping)):
            raise ValueError(f"model{label}_ckpts: expected a list of checkpoints, found "
                             f"{_describe(checkpoints)}")
        self.checkpoints = list(checkpoints)
        if not self.checkpoints:
            raise ValueError(f"model{label}_ckpts: no checkpoints")
        self.module = self._script(model, example_inputs)
        self.keys = [self.cache_key(i) for i in range(len(self.checkpoints))]

    def _script(self, model, example_inputs):
        name = f"model{self.label}"
        if isinstance(model, torch.jit.ScriptModule):
            buffer = io.BytesIO()
            torch.jit.save(model, buffer)  # a copy: checkpoints are loaded into it
            buffer.seek(0)
            return torch.jit.load(buffer, map_location="cpu").eval()
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{name}: expected a torch.nn.Module, found {_describe(model)}")
        module = copy.deepcopy(model).cpu().eval()
        try:
            return torch.jit.script(module)
        except Exception as script_error:
            try:
                with torch.no_grad():
                    return torch.jit.trace(module, example_inputs, check_trace=False)
            except Exception as trace_error:
                raise ValueError(f"{name}: cannot be scripted ({script_error}) nor traced with "
                                 f"a batch of the training loader ({trace_error})") from None

    def checkpoint_name(self, i):
        c = self.checkpoints[i]
        where = f" ({c})" if isinstance(c, (str, os.PathLike)) else ""
        return f"model{self.label}_ckpts[{i}]{where}"

    def load(self, i):
        """The module with checkpoint i loaded (strictly)."""
        name = self.checkpoint_name(i)
        sd = load_checkpoint(self.checkpoints[i], name)
        want = self.module.state_dict()
        missing = [k for k in want if k not in sd]
        unexpected = [k for k in sd if k not in want]
        mismatched = [f"{k}: model {_shape(want[k])}, checkpoint {_shape(sd[k])}"
                      for k in want if k in sd and want[k].shape != sd[k].shape]
        if missing or unexpected or mismatched:
            problems = []
            for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                ("mismatched shapes", mismatched)):
                if items:
                    more = f" and {len(items) - 6} more" if len(items) > 6 else ""
                    problems.append(f"{what}: {', '.join(items[:6])}{more}")
            raise ValueError(f"{name} does not fit model{self.label}: {'; '.join(problems)}")
        self.module.load_state_dict(sd, strict=True)
        return self.module

    def archive(self, i):
        """The TorchScript archive of the module with checkpoint i."""
        buffer = io.BytesIO()
        torch.jit.save(self.load(i), buffer)
        return buffer.getvalue()

    def cache_key(self, i):
        """SHA-256 of the module's code and checkpoint i's tensors. torch.jit.save's bytes are
        not the same in every process (the order of some code follows Python's string hashing),
        so code files count by their sorted lines; debug information (source positions) is
        left out."""
        digest = hashlib.sha256()
        with zipfile.ZipFile(io.BytesIO(self.archive(i))) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith(".debug_pkl"):
                    continue
                content = archive.read(member)
                if "/code/" in member:
                    content = b"\n".join(sorted(content.splitlines()))
                digest.update(member.split("/", 1)[-1].encode() + b"\0")
                digest.update(hashlib.sha256(content).digest())
        return digest.hexdigest()


def _read_cache(entry, n, t):
    try:
        arrays = [np.load(entry / f) for f in _CACHE_FILES]
    except (OSError, ValueError):
        return None  # no entry, or a damaged one: recomputed
    train, target, q, acc = arrays
    if (train.ndim != 2 or target.ndim != 2 or train.shape[0] != n or target.shape[0] != t
            or target.shape[1] != train.shape[1] or q.shape != (n,) or acc.size != 1):
        return None
    return {"train_features": train.astype(np.float32, copy=False),
            "target_features": target.astype(np.float32, copy=False),
            "out_to_loss": q.astype(np.float32, copy=False), "target_accuracy": float(acc[0])}


def _write_cache(entry, features):
    """Stages the entry beside its place and renames it there: complete or absent."""
    staging = entry.with_name(f".{entry.name}.staging-{os.getpid()}")
    try:
        staging.mkdir(parents=True, exist_ok=True)
        for name, key in zip(_CACHE_FILES, ("train_features", "target_features", "out_to_loss")):
            np.save(staging / name, np.ascontiguousarray(features[key], dtype=np.float32))
        np.save(staging / _CACHE_FILES[3],
                np.array([features["target_accuracy"]], dtype=np.float32))
        if entry.exists():
            for f in entry.iterdir():
                f.unlink()
            entry.rmdir()
        staging.rename(entry)
    finally:
        if staging.exists():
            for f in staging.iterdir():
                f.unlink()
            staging.rmdir()


class _Progress:
    """tqdm when it is importable, else one line per step on stderr; nothing when off."""

    def __init__(self, enabled):
        self.enabled = enabled
        try:
            import tqdm
            self._tqdm = tqdm.tqdm if enabled else None
        except ImportError:
            self._tqdm = None
        self._bar = None

    def start(self, description, total):
        self._description, self._start = description, time.perf_counter()
        if self._tqdm is not None:
            self._bar = self._tqdm(total=total, desc=description, unit="ex", leave=False)

    def advance(self, count):
        if self._bar is not None:
            self._bar.update(count)

    def done(self, message):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.enabled:
            print(f"modeldiff: {self._description}: {message}", file=sys.stderr, flush=True)

    def seconds(self):
        return time.perf_counter() - self._start


class TrakScorer:
    """T x N TRAK scores of prepared models on a training loader and target loaders."""

    def __init__(self, settings, settings_key, lambda_, out_to_loss, cache_dir, progress,
                 batch_size):
        self.settings, self.settings_key = settings, settings_key
        self.settings_batch_size = batch_size
        self.lambda_, self.out_to_loss = lambda_, out_to_loss
        self.cache_dir = None if cache_dir is None else pathlib.Path(cache_dir)
        self.progress = _Progress(progress)
        self.reports = {}
        # Per model label, after scores(): ([(half 1, half 2)] of 3 splits, (checkpoints,
        # checkpoints)), or why there are none (fewer than 4 checkpoints).
        self.halves = {}

    def scores(self, model, train, target):
        """T x N float32 numpy scores of `model` (PreparedModel); `train`, `target`:
        LoaderData."""
        m = len(model.checkpoints)
        ensemble = _trak.Ensemble(target.count, train.count, self.lambda_)
        report = []
        # Significance of directions: the ensemble's sums over four blocks of checkpoints give
        # the half ensembles of three splits without any further TRAK work (core/trak/trak.h).
        why = _modeldiff.significance_absence(model.label, m)
        cuts = _modeldiff.block_cuts(m) if not why else None
        if cuts is not None:
            ensemble.record_blocks(cuts)
        for i in range(m):
            description = f"{model.label} checkpoint {i + 1}/{m}"
            key = hashlib.sha256(f"{model.keys[i]}|{train.fingerprint}|{target.fingerprint}|"
                                 f"{self.settings_key}|{i}".encode()).hexdigest()
            entry = None if self.cache_dir is None else self.cache_dir / f"features-{key[:24]}"
            self.progress.start(description, train.count + target.count)
            features = None if entry is None else _read_cache(entry, train.count, target.count)
            if features is not None:
                self.progress.done("features from cache")
            else:
                features = self._featurize(model, i, train, target)
                if entry is not None:
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    _write_cache(entry, features)
                self.progress.done(f"featurized {train.count} training and {target.count} "
                                   f"target examples in {self.progress.seconds():.1f} s")
            dropped = ensemble.add(features["train_features"], features["target_features"],
                                   features["out_to_loss"], model.checkpoint_name(i))
            report.append({"checkpoint": model.checkpoint_name(i),
                           "target_accuracy": features["target_accuracy"],
                           "from_cache": "attributed" not in features,
                           "kernel_dropped": dropped,
                           "attributed": features.get("attributed", "")})
        self.reports[model.label] = report
        if cuts is None:
            self.halves[model.label] = why
        else:
            score_sums, out_to_loss_sums = ensemble.take_blocks()
            pairs, sizes = _modeldiff.block_halves(
                score_sums, cuts, out_to_loss_sums if self.out_to_loss else None)
            self.halves[model.label] = (pairs, sizes)
            del score_sums, out_to_loss_sums
        return ensemble.scores(self.out_to_loss)

    def _featurize(self, model, i, train, target):
        featurizer = _trak.StreamingFeaturizer(model.archive(i), model.checkpoint_name(i),
                                               self.settings, i)
        # Loader batches are joined up to one featurizer batch per LibTorch thread before they
        # are handed over (the featurizer shares its batches among that many workers; a
        # loader's batch of 100 would keep one of them busy). A bounded buffer: still streamed.
        chunk = self.settings_batch_size * max(1, torch.get_num_threads())
        for data, is_train in ((train, True), (target, False)):
            batches = data.batches()
            pending, count = [], 0
            for x, y in batches:
                pending.append((x, y))
                count += len(y)
                if count >= chunk:
                    self._hand_over(featurizer, pending, is_train)
                    pending, count = [], 0
            if pending:
                self._hand_over(featurizer, pending, is_train)
            data.check_same(batches)
        return featurizer.finish()

    def _hand_over(self, featurizer, pending, is_train):
        if len(pending) == 1:
            x, y = pending[0]
        else:
            x = np.concatenate([b[0] for b in pending])
            y = np.concatenate([b[1] for b in pending])
        featurizer.add(x, y, is_train)
        self.progress.advance(len(y))
