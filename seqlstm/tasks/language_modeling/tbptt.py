"""Truncated BPTT over ``seqlstm.data.streams``: the loss of a window, state carried between
windows, and the evaluation of a whole stream.

The LSTM state at the end of one window is the initial state of the next one, so a row of
the stream is modelled as one long sequence although gradients only flow back ``bptt`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlstm.data.streams import IGNORE_INDEX, StreamBatches
from seqlstm.tasks.base import StepOutput, evaluating

# One (h, c) pair per layer, each FloatTensor[1, B, H_layer].
Hidden = list[tuple[Tensor, Tensor]]


def token_nll(logits: Tensor, targets: Tensor) -> StepOutput:
    """Summed negative log-likelihood (nats) of the scored targets and how many there are.

    logits: FloatTensor[B, T, V]; targets: LongTensor[B, T] with IGNORE_INDEX where unscored.
    """
    loss = F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return StepOutput(loss=loss, num_tokens=(targets != IGNORE_INDEX).sum())


def detach_hidden(hidden: Hidden) -> Hidden:
    """The same state, cut from the graph so backpropagation stops at the window boundary."""
    return [(h.detach(), c.detach()) for h, c in hidden]


@torch.no_grad()
def evaluate_stream(
    model: nn.Module, token_ids: Tensor | Sequence[int], batch_size: int, bptt: int
) -> tuple[float, int]:
    """(total nll in nats, number of scored tokens) of a stream, with carried state.

    Runs in eval mode (no dropout) and restores the model's mode afterwards. The model must
    have a `tokenizer` (for pad and BOS ids) and a `logits(inputs[B, T], hidden)` method that
    returns (logits[B, T, V], hidden). Every stream token from position 1 on is scored once,
    except BOS and padding; the result does not depend on bptt, and depends on batch_size only
    through where rows start with a fresh state. The whole stream is read in this process,
    also under DDP (the evaluation runs on rank 0 only), and the state that `forward` carries
    between training windows is left alone.
    """
    tokenizer = model.tokenizer
    batches = StreamBatches(
        token_ids, batch_size, bptt, tokenizer.pad_id, tokenizer.bos_id, num_replicas=1, rank=0
    )
    device = next(model.parameters()).device
    total_nll = torch.zeros((), dtype=torch.float64, device=device)
    num_tokens = 0
    hidden = None
    with evaluating(model):
        for batch in batches.epoch(0):
            logits, hidden = model.logits(batch.inputs.to(device), hidden)
            step = token_nll(logits.float(), batch.targets.to(device))
            total_nll += step.loss.double()
            num_tokens += int(step.num_tokens)
    return float(total_nll), num_tokens
