#!/usr/bin/env python3
"""PyTorch's optimizer values on the tiny problem of Tests/PKOptimTests/TransformTests.swift.

P = 3 parameters starting at W0, three updates with the fixed gradients GRADS (set directly as
p.grad, so no model is involved) and the per-step learning rates LRS (set in the param group
before each step, as a schedule would). Everything in float64, single-tensor code path
(foreach=False). Prints, for each optimizer, the parameters after each step and the state
buffers after the last step, as Swift array literals to paste into the test.

Needs torch (any recent version; values were produced with 2.15.0):
    python3 Tools/reference/torch_optimizers.py
"""
import torch

W0 = [0.5, -1.0, 2.0]
GRADS = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.1, -0.3]]
LRS = [0.1, 0.05, 0.2]

CASES = [
    ("sgd", lambda p: torch.optim.SGD([p], lr=LRS[0], foreach=False)),
    ("sgdL2", lambda p: torch.optim.SGD([p], lr=LRS[0], weight_decay=0.01, foreach=False)),
    ("momentum", lambda p: torch.optim.SGD([p], lr=LRS[0], momentum=0.9, weight_decay=0.01, foreach=False)),
    ("momentumDampened", lambda p: torch.optim.SGD([p], lr=LRS[0], momentum=0.9, dampening=0.1, foreach=False)),
    ("nesterov", lambda p: torch.optim.SGD([p], lr=LRS[0], momentum=0.9, nesterov=True, weight_decay=0.01, foreach=False)),
    ("adam", lambda p: torch.optim.Adam([p], lr=LRS[0], foreach=False)),
    ("adamL2", lambda p: torch.optim.Adam([p], lr=LRS[0], betas=(0.8, 0.95), eps=1e-3, weight_decay=0.01, foreach=False)),
    ("adamW", lambda p: torch.optim.AdamW([p], lr=LRS[0], foreach=False)),
    ("adamWStrong", lambda p: torch.optim.AdamW([p], lr=LRS[0], betas=(0.8, 0.95), eps=1e-3, weight_decay=0.5, foreach=False)),
    ("rmsprop", lambda p: torch.optim.RMSprop([p], lr=LRS[0], foreach=False)),
    ("rmspropMomentum", lambda p: torch.optim.RMSprop([p], lr=LRS[0], alpha=0.9, momentum=0.9, weight_decay=0.01, foreach=False)),
]


def literal(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def main():
    print(f"// torch {torch.__version__}")
    for name, make in CASES:
        p = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
        opt = make(p)
        steps = []
        for g, lr in zip(GRADS, LRS):
            for group in opt.param_groups:
                group["lr"] = lr
            p.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
            steps.append(literal(p.detach().tolist()))
        state = opt.state[p]
        buffers = {k: literal(v.tolist()) for k, v in sorted(state.items()) if torch.is_tensor(v) and v.numel() == len(W0)}
        print(f'"{name}": TorchCase(weights: [')
        for s in steps:
            print(f"    {s},")
        print("], buffers: [")
        for k, v in buffers.items():
            print(f'    "{k}": {v},')
        print("]),")


if __name__ == "__main__":
    main()
