import copy

import pytest
import torch
from torch import nn

from subtask_distill.optim import AdamW, one_cycle


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def batches(count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 3, 8, 8, generator=generator) for _ in range(count)]


def train(model: nn.Module, optimizer, inputs: list[torch.Tensor]) -> None:
    for x in inputs:
        loss = model(x).logsumexp(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adamw_matches_torch_bit_for_bit(weight_decay, foreach):
    """Swapping torch.optim.AdamW for this one must not change a single number of the study."""
    ours, reference = small_model(), small_model()
    train(ours, AdamW(ours.parameters(), lr=3e-3, weight_decay=weight_decay), batches(20, seed=1))
    train(reference, torch.optim.AdamW(reference.parameters(), lr=3e-3, weight_decay=weight_decay, foreach=foreach),
          batches(20, seed=1))

    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_learning_rate_decay_matches_torch_step_lr():
    ours, reference = small_model(), small_model()
    optimizer = AdamW(ours.parameters(), lr=1e-2)
    reference_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, foreach=True)
    scheduler = torch.optim.lr_scheduler.StepLR(reference_optimizer, step_size=2, gamma=0.3)
    for epoch in range(1, 8):
        train(ours, optimizer, batches(3, seed=epoch))
        train(reference, reference_optimizer, batches(3, seed=epoch))
        if epoch % 2 == 0:  # what the training loop does after each epoch
            optimizer.lr *= 0.3
        scheduler.step()
        assert optimizer.lr == reference_optimizer.param_groups[0]["lr"]

    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_one_cycle_matches_torch_one_cycle_lr_bit_for_bit():
    """The teacher's schedule: learning rate and beta1 at every step, and the weights they lead to."""
    ours, reference = small_model(), small_model()
    optimizer = AdamW(ours.parameters(), lr=4e-3, weight_decay=0.01)
    reference_optimizer = torch.optim.AdamW(reference.parameters(), lr=4e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(reference_optimizer, max_lr=4e-3, epochs=3, steps_per_epoch=7)
    for step, x in enumerate(batches(21, seed=2)):
        optimizer.lr, optimizer.beta1 = one_cycle(step, 21, 4e-3)
        group = reference_optimizer.param_groups[0]
        assert (optimizer.lr, optimizer.beta1) == (group["lr"], group["betas"][0])
        train(ours, optimizer, [x])
        train(reference, reference_optimizer, [x])
        scheduler.step()

    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_adamw_continues_from_its_state_dict_exactly():
    """What a resumed training job relies on."""
    inputs = batches(10, seed=1)
    uninterrupted = small_model()
    train(uninterrupted, AdamW(uninterrupted.parameters(), lr=3e-3), inputs)

    resumed = small_model()
    optimizer = AdamW(resumed.parameters(), lr=3e-3)
    train(resumed, optimizer, inputs[:4])
    saved_model, saved_optimizer = copy.deepcopy(resumed.state_dict()), optimizer.state_dict()
    train(resumed, optimizer, inputs[4:7])  # the work a kill loses
    resumed.load_state_dict(saved_model)
    optimizer = AdamW(resumed.parameters(), lr=3e-3)
    optimizer.load_state_dict(saved_optimizer)
    train(resumed, optimizer, inputs[4:])

    for a, b in zip(resumed.parameters(), uninterrupted.parameters()):
        assert torch.equal(a, b)


def test_adamw_rejects_the_state_of_other_parameters():
    optimizer = AdamW(small_model().parameters(), lr=1e-3)
    other = AdamW(nn.Linear(3, 2).parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="does not match"):
        optimizer.load_state_dict(other.state_dict())


def test_adamw_leaves_a_parameter_without_gradient_alone_as_torch_does():
    """A layer that a loss does not reach (e.g. in a new student) keeps its weights and its step count."""
    ours, reference = small_model(), small_model()
    optimizer = AdamW(ours.parameters(), lr=3e-3)
    reference_optimizer = torch.optim.AdamW(reference.parameters(), lr=3e-3, foreach=True)
    for step, x in enumerate(batches(8, seed=3)):
        for model, opt in ((ours, optimizer), (reference, reference_optimizer)):
            opt.zero_grad()
            # Only the first layer gets gradients in the first three steps; the last layer starts later.
            (model[0](x).square().mean() if step < 3 else model(x).logsumexp(dim=1).mean()).backward()
            opt.step()

    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)
