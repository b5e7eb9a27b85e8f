"""Writes the TorchScript architecture of the demo CNN (Fashion-MNIST: 1 x 28 x 28 grayscale
images, 10 classes).

Usage: python3 make_demo_architecture.py OUT.pt

A small nn.Sequential of Conv2d, ReLU, MaxPool2d, Flatten and Linear, so that the demo stays
quick (TRAK follows any TorchScript classifier). Parameters (20,490 in all):
    0 Conv2d(1, 16, 3, padding=1)    16*1*9 + 16  =    160
    3 Conv2d(16, 32, 3, padding=1)   32*16*9 + 32 =  4,640
    7 Linear(32*7*7, 10)             1568*10 + 10 = 15,690
The initial weights come from torch.manual_seed(seed) (default 0), so every run writes the same
file. The file holds those initial weights; training replaces them through a checkpoint.
"""
import sys

import torch
from torch import nn

NUM_PARAMETERS = 20490


def build_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),  # 16 x 28 x 28
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 14 x 14
        nn.Conv2d(16, 32, 3, padding=1),  # 32 x 14 x 14
        nn.ReLU(),
        nn.MaxPool2d(2),  # 32 x 7 x 7
        nn.Flatten(),  # 1568
        nn.Linear(32 * 7 * 7, 10),  # 10 logits
    )


def save_architecture(path, seed: int = 0) -> None:
    model = build_model(seed).eval()
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMETERS
    torch.jit.script(model).save(str(path))


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: make_demo_architecture.py OUT.pt", file=sys.stderr)
        return 2
    save_architecture(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
