"""No crash on any input: every exception that reaches `modeldiff`'s main ends as one line on
stderr and an exit status (2 bad input, 1 internal error, 3 out of memory, 130 cancelled),
never std::terminate (exit 134) or a signal (run by CTest: test_cli_errors.py EXE CASE).

Cases: `injected` throws each real exception type where a command would
(MODELDIFF_INJECT_EXCEPTION); the others feed real bad input that once ended in a terminate or
a segmentation fault.
"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

EXE = sys.argv[1]
CASE = sys.argv[2]
ROOT = pathlib.Path(__file__).resolve().parents[2]
ARCH = ROOT / "resources" / "demo" / "demo_cnn.pt"
KNOWN_HDF5_CRASHES = ROOT / "tests" / "fuzz" / "known_hdf5_crashes"
SHARED = pathlib.Path(os.environ.get("MODELDIFF_SHARED_FIXTURES", "../shared/fixtures"))


def run_failing(*args, status, env=None):
    """Runs the CLI; asserts `status` and one error line; returns that line.

    Warnings may come before it: the BLAS check warns on a busy machine (a slow GEMM), which
    is the machine's state, not the input's, so they are not counted.
    """
    proc = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    lines = [l for l in proc.stderr.splitlines()
             if l.strip() and not l.startswith("modeldiff: warning: ")]
    where = f"{args} {env or ''}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == status, f"exit {proc.returncode}, expected {status}: {where}"
    assert len(lines) == 1, f"expected one line on stderr: {where}"
    assert "terminate" not in proc.stderr and "Exception raised from" not in proc.stderr, where
    return lines[0]


def has_torch():
    """Whether this build has LibTorch: its --help lists the trak subcommand."""
    out = subprocess.run([EXE, "--help"], capture_output=True, text=True).stdout
    return re.search(r"^\s+trak\s", out, re.MULTILINE) is not None


def case_injected(work):
    kinds = {"input": (2, "injected.npy: injected bad input"),
             "filesystem": (2, "/injected/path: Permission denied"),
             "opencv": (1, "internal error (OpenCV): injected OpenCV error"),
             "runtime": (1, "internal error: injected runtime error"),
             "unknown": (1, "internal error: an exception of unknown type"),
             "bad_alloc": (3, "out of memory"),
             "cancelled": (130, "cancelled")}
    if has_torch():
        kinds["torch"] = (1, "internal error (LibTorch): injected LibTorch error")
        kinds["torch_out_of_memory"] = (3, "out of memory on the device: CUDA out of memory")
    ref = SHARED / "modeldiff_ref_seed0"
    for kind, (status, text) in kinds.items():
        line = run_failing("diff", "--scores-a", ref / "scores_A.npy", "--scores-b",
                           ref / "scores_B.npy", "--out", work / "out", status=status,
                           env={"MODELDIFF_INJECT_EXCEPTION": kind})
        assert line.startswith("modeldiff: ") and text in line, (kind, line)
    assert not (work / "out").exists()


def case_corrupt_hdf5(work):
    """Files that crash libhdf5 itself: an error naming the file, not a dead process."""
    ref = SHARED / "modeldiff_ref_seed0"
    line = run_failing("diff", "--scores-a", KNOWN_HDF5_CRASHES / "stab_group_local_heap_segv.h5",
                       "--scores-b", ref / "scores_B.npy", "--out", work / "out", status=2)
    assert "stab_group_local_heap_segv.h5" in line and "corrupt HDF5 file" in line, line
    for name in ("enum_datatype_heap_overread.h5", "dense_group_bad_link_address.h5"):
        proc = subprocess.run([EXE, "diff", "--scores-a", str(KNOWN_HDF5_CRASHES / name),
                               "--scores-b", str(ref / "scores_B.npy"), "--out",
                               str(work / "out2")], capture_output=True, text=True)
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        assert name in proc.stderr, proc.stderr


def write_data(work):
    rng = np.random.default_rng(0)
    np.save(work / "img28.npy", rng.integers(0, 255, (12, 28, 28), dtype=np.uint8))
    np.save(work / "img32.npy", rng.integers(0, 255, (12, 32, 32), dtype=np.uint8))
    np.save(work / "labels.npy", np.arange(12) % 10)
    np.save(work / "labels_beyond.npy", np.arange(12) % 10 + 3)
    torch.save(torch.jit.load(str(ARCH)).state_dict(), work / "ckpt.pt")


def case_model_mismatch(work):
    """Images of the wrong size for the model and labels beyond its classes (both once exit
    134): exit 2 and one line naming the model file."""
    write_data(work)
    common = ["--model", ARCH, "--checkpoints", work / "ckpt.pt", "--proj-dim", 32,
              "-o", work / "s.npy"]
    line = run_failing("trak", *common, "--train-images", work / "img32.npy", "--train-labels",
                       work / "labels.npy", "--val-images", work / "img32.npy", "--val-labels",
                       work / "labels.npy", status=2)
    assert str(ARCH) in line and "cannot take inputs of shape 1 x 1 x 32 x 32" in line, line
    line = run_failing("trak", *common, "--train-images", work / "img28.npy", "--train-labels",
                       work / "labels_beyond.npy", "--val-images", work / "img28.npy",
                       "--val-labels", work / "labels.npy", status=2)
    assert str(ARCH) in line and "not one of the model's classes" in line, line
    assert "found 10" in line, line
    assert not (work / "s.npy").exists()


def case_transform_errors(work):
    """The paste that was a segmentation fault (x=-2,y=-2) is clipped and runs; parameters that
    are not valid are exit 2 and one line naming the key."""
    write_data(work)
    pgm = work / "p.pgm"
    pgm.write_bytes(b"P5\n3 3\n255\n" + bytes([200] * 9))
    common = ["--model-a", ARCH, "--checkpoints-a", work / "ckpt.pt", "--model-b", ARCH,
              "--checkpoints-b", work / "ckpt.pt", "--images", work / "img28.npy", "--labels",
              work / "labels.npy", "--target-class", 6, "--threads", 1]
    proc = subprocess.run([EXE, "counterfactual", *map(str, common), "--transform",
                           f"paste:image={pgm},x=-2,y=-2", "--out", str(work / "cf")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (work / "cf" / "effects.json").exists()
    for spec, key in ((f"paste:image={pgm},x=-2.5,y=0", "paste.x"),
                      ("noise:sigma=3,seed=-1", "noise.seed"),
                      ("patch:x=0,y=0,size=1e9", "patch.size")):
        line = run_failing("counterfactual", *common, "--transform", spec, "--out",
                           work / "cf2", status=2)
        assert key in line, (spec, line)


CASES = {"injected": case_injected, "corrupt_hdf5": case_corrupt_hdf5,
         "model_mismatch": case_model_mismatch, "transform_errors": case_transform_errors}

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        CASES[CASE](pathlib.Path(tmp))
    print(f"{CASE}: ok")
