"""AdamW with decoupled weight decay (Loshchilov & Hutter, 2019). You implement `step`.

For each parameter p with gradient g, at step t (counting from 1):

    m  = beta1 * m + (1 - beta1) * g
    v  = beta2 * v + (1 - beta2) * g * g
    alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)    (only when correct_bias is True; else lr)
    p  = p - alpha * m / (sqrt(v) + eps)
    p  = p - lr * weight_decay * p                     (weight decay, after the Adam update)

Run optimizer_test.py to compare your implementation with the reference weights.
"""
from typing import Callable, Iterable, Optional, Tuple
import math

import torch
from torch.optim import Optimizer


class AdamW(Optimizer):
    def __init__(
        self,
        params: Iterable[torch.nn.parameter.Parameter],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[0]} - should be in [0.0, 1.0)")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter: {betas[1]} - should be in [0.0, 1.0)")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        correct_bias=correct_bias)
        super().__init__(params, defaults)

    def step(self, closure: Optional[Callable] = None):
        loss = None
        if closure is not None:
            loss = closure()

        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.is_sparse:
                    raise RuntimeError("AdamW does not support sparse gradients; use SparseAdam instead")

                # State should be stored in this dictionary
                state = self.state[p]

                # Access hyperparameters from the `group` dictionary
                alpha = group["lr"]

                # TODO: complete the implementation of AdamW here, reading and saving your
                # state in the `state` dictionary above. The hyperparameters can be read
                # from the `group` dictionary (lr, betas, eps, weight_decay, correct_bias).
                #
                # 1- Update the first and second moments of the gradients ("exp_avg",
                #    "exp_avg_sq"), keeping a step counter ("step").
                # 2- Apply bias correction (if correct_bias): use the "efficient version"
                #    given at the end of section 2 of https://arxiv.org/abs/1412.6980,
                #    i.e. fold the corrections into the step size.
                # 3- Update the parameters (p.data).
                # 4- After that main update, apply weight decay, scaled by the learning rate
                #    (not by the bias-corrected step size).
                raise NotImplementedError

        return loss
