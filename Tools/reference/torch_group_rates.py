#!/usr/bin/env python3
"""PyTorch's optimizer values with per-group learning rates, for
Tests/PKOptimTests/GroupLearningRateTests.swift.

The tiny problem of torch_optimizers.py (the same W0, GRADS and per-step rates LRS) split into two
tensors, `a` = W0[0:2] and `b` = W0[2:3], in two param groups: `a` at the base rate (lr = LRS[0],
the optimizer's weight decay), `b` in a group with lr = B_LR (multiplier B_LR / LRS[0] = 0.3) and
its own weight decay B_WD. Before each step every group's lr is set to its initial lr times the
schedule factor LRS[t] / LRS[0], as an LRScheduler does. float64, single-tensor code path
(foreach=False). Prints, for each case, the parameters (a then b) after each step, as Swift array
literals to paste into the test.

Needs torch (values pasted in the test were produced with 2.13.0+cpu):
    python3 Tools/reference/torch_group_rates.py
"""
import torch

W0 = [0.5, -1.0, 2.0]
GRADS = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.1, -0.3]]
LRS = [0.1, 0.05, 0.2]
B_LR = 0.03

# name, optimizer class, keyword arguments (lr = LRS[0]), group b's weight decay
CASES = [
    ("sgd", torch.optim.SGD, {}, 0.0),
    ("momentumL2", torch.optim.SGD, {"momentum": 0.9, "weight_decay": 0.01}, 0.0),
    ("momentumDampened", torch.optim.SGD, {"momentum": 0.9, "dampening": 0.1}, 0.02),
    ("nesterov", torch.optim.SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, 0.05),
    ("adamL2", torch.optim.Adam, {"betas": (0.8, 0.95), "eps": 1e-3, "weight_decay": 0.01}, 0.0),
    ("adamW", torch.optim.AdamW, {"betas": (0.8, 0.95), "eps": 1e-3, "weight_decay": 0.5}, 0.1),
    ("rmspropMomentum", torch.optim.RMSprop, {"alpha": 0.9, "momentum": 0.9, "weight_decay": 0.01}, 0.0),
]


def literal(values):
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def main():
    print(f"// torch {torch.__version__}")
    for name, cls, kwargs, b_wd in CASES:
        a = torch.tensor(W0[:2], dtype=torch.float64, requires_grad=True)
        b = torch.tensor(W0[2:], dtype=torch.float64, requires_grad=True)
        opt = cls([{"params": [a]}, {"params": [b], "lr": B_LR, "weight_decay": b_wd}],
                  lr=LRS[0], foreach=False, **kwargs)
        initial = [g["lr"] for g in opt.param_groups]
        steps = []
        for g, lr in zip(GRADS, LRS):
            for group, lr0 in zip(opt.param_groups, initial):
                group["lr"] = lr0 * (lr / LRS[0])
            a.grad = torch.tensor(g[:2], dtype=torch.float64)
            b.grad = torch.tensor(g[2:], dtype=torch.float64)
            opt.step()
            steps.append(literal(a.detach().tolist() + b.detach().tolist()))
        print(f'"{name}": [')
        for s in steps:
            print(f"    {s},")
        print("],")


if __name__ == "__main__":
    main()
