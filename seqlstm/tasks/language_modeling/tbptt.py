"""Truncated-BPTT training and evaluation of a language model over ``seqlstm.data.streams``.

The LSTM state at the end of one window is the initial state of the next one, so a row of
the stream is modelled as one long sequence although gradients only flow back ``bptt`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlstm.data.streams import IGNORE_INDEX, LMBatch, StreamBatches
from seqlstm.tasks.base import StepOutput


def token_nll(logits: Tensor, targets: Tensor) -> StepOutput:
    """Summed negative log-likelihood (nats) of the scored targets and how many there are.

    logits: FloatTensor[B, T, V]; targets: LongTensor[B, T] with IGNORE_INDEX where unscored.
    """
    loss = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return StepOutput(loss=loss, num_tokens=(targets != IGNORE_INDEX).sum())


def detach_hidden(hidden: list[tuple[Tensor, Tensor]]) -> list[tuple[Tensor, Tensor]]:
    """The same state, cut from the graph so backpropagation stops at the window boundary."""
    return [(h.detach(), c.detach()) for h, c in hidden]


class TBPTTStep:
    """Trainer step function that carries the LSTM state from one window to the next.

    The state is detached after every window (truncated BPTT) and reset when a batch has
    position 0, i.e. at the start of every epoch. The model is called as `model(inputs,
    hidden)`, so a DistributedDataParallel wrapper works. Use a fresh TBPTTStep per
    StreamBatches: the carried state belongs to one set of streams.
    """

    def __init__(self) -> None:
        self.hidden: list[tuple[Tensor, Tensor]] | None = None

    def __call__(self, model: nn.Module, batch: LMBatch) -> StepOutput:
        if batch.position == 0:
            self.hidden = None
        logits, hidden = model(batch.inputs, self.hidden)
        self.hidden = detach_hidden(hidden)
        return token_nll(logits, batch.targets)


@torch.no_grad()
def evaluate_stream(
    model: nn.Module, token_ids: Tensor | Sequence[int], batch_size: int, bptt: int
) -> tuple[float, int]:
    """(total nll in nats, number of scored tokens) of a stream, with carried state.

    Runs in eval mode (no dropout) and restores the model's mode afterwards. The model must
    have a `tokenizer` (for pad and BOS ids) and map (inputs[B, T], hidden) to
    (logits[B, T, V], hidden). Every stream token from position 1 on is scored once, except
    BOS and padding; the result does not depend on bptt, and depends on batch_size only
    through where rows start with a fresh state.
    """
    tokenizer = model.tokenizer
    batches = StreamBatches(token_ids, batch_size, bptt, tokenizer.pad_id, tokenizer.bos_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_nll = torch.zeros((), dtype=torch.float64, device=device)
    num_tokens = 0
    hidden = None
    try:
        for batch in batches.epoch(0):
            logits, hidden = model(batch.inputs.to(device), hidden)
            step = token_nll(logits.float(), batch.targets.to(device))
            total_nll += step.loss.double()
            num_tokens += int(step.num_tokens)
    finally:
        model.train(was_training)
    return float(total_nll), num_tokens
