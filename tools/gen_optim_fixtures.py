"""Writes test/fixtures/sgd.json: torch.optim.SGD trajectories for fixed gradients.

Run: .venv-ref/bin/python tools/gen_optim_fixtures.py
"""
import json
import pathlib

import torch

CASES = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    {"lr": 0.02, "momentum": 0.5, "maximize": True},
]


def main():
    torch.manual_seed(0)
    p0 = torch.randn(5, dtype=torch.float64)
    grads = [torch.randn(5, dtype=torch.float64) for _ in range(4)]
    out = {"torch": torch.__version__, "p0": p0.tolist(), "grads": [g.tolist() for g in grads], "cases": []}
    for opts in CASES:
        p = p0.clone().requires_grad_(True)
        opt = torch.optim.SGD([p], **opts)
        traj = []
        for g in grads:
            p.grad = g.clone()
            opt.step()
            traj.append(p.detach().tolist())
        out["cases"].append({"options": opts, "trajectory": traj})
    path = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "sgd.json"
    path.write_text(json.dumps(out, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    main()
