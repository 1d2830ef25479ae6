"""The study's optimiser: AdamW, and the one-cycle schedule the teacher trains with.

Both compute exactly what ``torch.optim.AdamW`` and ``OneCycleLR`` compute
(tests compare them bit for bit). They are written out because constructing or
stepping a ``torch.optim`` optimiser imports torch's compiler stack
(``torch._dynamo``): that cost a student run on the embedded benchmark 3 of its
14 seconds (measured), and the demo trains 54 students.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch


class AdamW:
    """Decoupled-weight-decay Adam (Loshchilov & Hutter 2019) over one group of parameters; torch's defaults."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = list(params)
        if not self.params:
            raise ValueError("AdamW got no parameters")
        self.lr = lr
        self.weight_decay = weight_decay
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = [0] * len(self.params)  # per parameter, as torch counts them
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        # As in torch.optim, a parameter without a gradient is left alone and its step count stays.
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [p.grad for p in params]
        exp_avgs = [self.exp_avgs[i] for i in live]
        exp_avg_sqs = [self.exp_avg_sqs[i] for i in live]
        for i in live:
            self.steps[i] += 1
        steps = [self.steps[i] for i in live]
        if self.weight_decay != 0:
            torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - self.beta1)
        torch._foreach_mul_(exp_avg_sqs, self.beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - self.beta2)
        step_sizes = [(self.lr / (1 - self.beta1**n)) * -1 for n in steps]
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, [(1 - self.beta2**n) ** 0.5 for n in steps])
        torch._foreach_add_(denominators, self.eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "steps": list(self.steps),
            "exp_avgs": [t.clone() for t in self.exp_avgs],
            "exp_avg_sqs": [t.clone() for t in self.exp_avg_sqs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shapes = [p.shape for p in self.params]
        if [t.shape for t in state["exp_avgs"]] != shapes or [t.shape for t in state["exp_avg_sqs"]] != shapes:
            raise ValueError("AdamW state does not match the parameters")
        self.lr, self.steps = state["lr"], list(state["steps"])
        for mine, saved in zip(self.exp_avgs + self.exp_avg_sqs, state["exp_avgs"] + state["exp_avg_sqs"]):
            mine.copy_(saved)


def one_cycle(step: int, total_steps: int, max_lr: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4, momentum: tuple[float, float] = (0.85, 0.95)) -> tuple[float, float]:
    """The learning rate and beta1 of optimiser step ``step`` (from 0) under ``OneCycleLR``'s defaults.

    Cosine warm-up from max_lr / div_factor to max_lr over the first pct_start of the steps, then
    cosine decay to the initial rate / final_div_factor; beta1 moves the opposite way between the
    two ``momentum`` values (Smith & Topin 2019).
    """
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    low, high = momentum
    warmup_end = float(pct_start * total_steps) - 1
    if step <= warmup_end:
        pct = step / warmup_end
        return _cosine(initial_lr, max_lr, pct), _cosine(high, low, pct)
    pct = (step - warmup_end) / (total_steps - 1 - warmup_end)
    return _cosine(max_lr, min_lr, pct), _cosine(low, high, pct)


def _cosine(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
