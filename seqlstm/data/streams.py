"""Language-model data: one token stream, cut into B parallel streams and truncated-BPTT windows.

A corpus becomes one long stream of token ids (`encode_stream`): every text is framed as
`BOS ids EOS`. EOS is a real prediction target (it is the line break, as in WikiText's
`<eos>`), BOS is context only: it lets `generate` start a text from nothing, but predicting it
right after an EOS is trivial, so it is never scored and would only flatter the perplexity.

`batchify` lays the stream out as B rows that are read left to right in parallel, and
`StreamBatches` walks over them in windows of `bptt` steps (truncated backpropagation through
time). The LSTM state at the end of one window is the initial state of the next one
(`LSTMLanguageModel.forward`, `evaluate_stream`), so a row is modelled as one long sequence
although gradients only flow back `bptt` steps. Under DDP the rows are shared out between the
ranks by `seqlstm.data.batching`'s one replica/rank rule.

Row b holds stream positions [b*L, (b+1)*L], one more than its L inputs: its last token is the
first token of row b+1. Each stream token from position 1 on is therefore the target of exactly
one prediction, and nothing is dropped at the end: the stream is padded to fill the last row,
and padding is never scored.

A stream shorter than one window is not an error: it gives one shorter window (T = L < bptt).
A stream needs at least two tokens, so that there is something to predict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlstm.data.batching import pad_sequences, rank_share, resolve_replicas
from seqlstm.errors import DataError
from seqlstm.text.tokenizer import SubwordTokenizer

# Target value of positions that are not predicted (padding, BOS); F.cross_entropy's default.
IGNORE_INDEX = -100


def frame_texts(tokenizer: SubwordTokenizer, texts: Iterable[str]) -> list[Tensor]:
    """Each text as `BOS ids EOS`: one LongTensor[n_i + 2] per text.

    Empty texts are kept (as `BOS EOS`): in line-based corpora such as WikiText an empty line is
    still a line break that the model has to predict.
    """
    framed = tokenizer.encode_batch(list(texts), add_bos=True, add_eos=True)
    return [torch.tensor(ids, dtype=torch.long) for ids in framed]


def join_stream(examples: Sequence[Tensor | Sequence[int]]) -> Tensor:
    """Framed texts (`frame_texts`) laid end to end as one stream: LongTensor[N]."""
    if not examples:
        return torch.zeros(0, dtype=torch.long)
    return torch.cat([torch.as_tensor(example, dtype=torch.long) for example in examples])


def encode_stream(tokenizer: SubwordTokenizer, texts: Iterable[str]) -> Tensor:
    """All texts as one stream `BOS t1 EOS BOS t2 EOS ...`: LongTensor[N]."""
    return join_stream(frame_texts(tokenizer, texts))


def text_lines(text: str) -> list[str]:
    """The lines of a text, split at "\\n" only, for `encode_stream` (one line, one EOS).

    A newline ends a line rather than starting one, so a text ending in "\\n" has no empty
    last line and sum(len(line) + 1 for line in lines) == len(text); a text that does not end
    in a newline gets one EOS more than it has newlines. Empty lines are kept.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def batchify(token_ids: Tensor | Sequence[int], batch_size: int, pad_id: int) -> Tensor:
    """Lay a stream of N tokens out as batch_size rows of L + 1 tokens: LongTensor[B, L + 1].

    L = ceil((N - 1) / B). Row b is stream[b*L : (b+1)*L + 1], so consecutive rows share one
    token and the targets `rows[:, 1:]` are the stream's tokens 1..N-1, each exactly once,
    followed by pad_id where the stream ran out.
    """
    stream = torch.as_tensor(token_ids, dtype=torch.long)
    if stream.dim() != 1:
        raise DataError(f"a token stream is one-dimensional, got shape {tuple(stream.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if stream.numel() < 2:
        raise DataError(
            f"the token stream has {stream.numel()} token(s); a language model needs at least "
            "2 (one input and one target)"
        )
    length = -(-(stream.numel() - 1) // batch_size)
    padded = F.pad(stream, (0, batch_size * length + 1 - stream.numel()), value=pad_id)
    # unfold with step L and size L + 1 gives the overlapping rows without a Python loop
    return padded.unfold(0, length + 1, length).contiguous()


def _targets(rows: Tensor, unscored_ids: Sequence[int]) -> Tensor:
    """Next-token targets of rows[B, L+1]: LongTensor[B, L], IGNORE_INDEX where not scored."""
    targets = rows[:, 1:].clone()
    for token_id in unscored_ids:
        targets[targets == token_id] = IGNORE_INDEX
    return targets


def _unscored(pad_id: int, bos_id: int | None) -> list[int]:
    return [pad_id] if bos_id is None else [pad_id, bos_id]


@dataclass
class LMBatch:
    """One truncated-BPTT window of B parallel streams.

    inputs: LongTensor[B, T]; targets: LongTensor[B, T], the next token, IGNORE_INDEX where
    nothing is scored; position: the window's first column in the rows, 0 when a new pass over
    the streams starts and the carried LSTM state must be reset. It is a Python int (the
    Trainer moves only the tensors) so that reading it never waits for the GPU.
    """

    inputs: Tensor
    targets: Tensor
    position: int


def text_batch(
    examples: Sequence[Tensor | Sequence[int]], pad_id: int, bos_id: int | None = None
) -> LMBatch:
    """Framed texts as one window of their own, a row each, read from the zero state.

    Row b is example b without its last token, right-padded with pad_id: inputs and targets
    LongTensor[B, max_len - 1], position 0. Each text is scored on its own (no state carried
    in from another text); padding and BOS are not scored. An example needs >= 2 tokens.
    """
    if not examples:
        raise DataError("a batch of texts needs at least one text")
    short = [i for i, example in enumerate(examples) if len(example) < 2]
    if short:
        raise DataError(
            f"example {short[0]} has fewer than 2 tokens; a framed text is at least BOS EOS"
        )
    rows, _ = pad_sequences(examples, pad_id)
    return LMBatch(
        inputs=rows[:, :-1], targets=_targets(rows, _unscored(pad_id, bos_id)), position=0
    )


class StreamBatches:
    """Truncated-BPTT windows over a token stream; the Trainer's `BatchSource`.

    The stream is cut into batch_size * num_replicas rows and rank r reads rows r,
    r + num_replicas, ... of them (`seqlstm.data.batching.rank_share`), batch_size rows, so
    all ranks step through the same number of windows and together read the stream once.
    num_replicas and rank default to the torch.distributed process group, or (1, 0) outside
    one (`resolve_replicas`). The windows are the same in every epoch: the order of a stream
    cannot be shuffled without destroying what the carried state models (epoch(e) is
    trivially deterministic in e).
    """

    def __init__(
        self,
        token_ids: Tensor | Sequence[int],
        batch_size: int,
        bptt: int,
        pad_id: int,
        bos_id: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if bptt < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        num_replicas, rank = resolve_replicas(num_replicas, rank)
        rows = batchify(token_ids, batch_size * num_replicas, pad_id)
        rows = rows[rank_share(list(range(rows.size(0))), num_replicas, rank)]
        self.inputs = rows[:, :-1]
        self.targets = _targets(rows, _unscored(pad_id, bos_id))
        self.bptt = bptt

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Tensor | Sequence[int]],
        batch_size: int,
        bptt: int,
        pad_id: int,
        bos_id: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> StreamBatches:
        """Windows over framed texts (`LSTMLanguageModel.encode`) laid end to end, in order."""
        stream = join_stream(examples)
        return cls(stream, batch_size, bptt, pad_id, bos_id, num_replicas, rank)

    def __len__(self) -> int:
        return -(-self.inputs.size(1) // self.bptt)

    def epoch(self, epoch: int) -> Iterator[LMBatch]:
        """The windows in stream order (the same for every epoch)."""
        for start in range(0, self.inputs.size(1), self.bptt):
            end = start + self.bptt
            yield LMBatch(
                inputs=self.inputs[:, start:end],
                targets=self.targets[:, start:end],
                position=start,
            )
