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
        """query: FloatTensor[N, Dq], keys: FloatTensor[N, S, K] -> scores FloatTensor[N, S]."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Context vectors and attention weights for one query per row.

        query: FloatTensor[N, Dq]; keys: FloatTensor[N, S, K] from `project_keys(memory)`;
        memory: FloatTensor[N, S, Dm]; mask: BoolTensor[N, S], True at real source positions
        (every row needs at least one).
        Returns (context FloatTensor[N, Dm], weights FloatTensor[N, S]); the weights of a row
        sum to one over its valid positions and are exactly zero on padding.
        """
        scores = self.score(query, keys).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return context, weights


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
        """query [N, Dq], keys [N, S, Dq] -> [N, S] dot products."""
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)


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
        """query [N, Dq], keys [N, S, hidden_size] -> [N, S]."""
        energy = torch.tanh(keys + self.query_layer(query).unsqueeze(1))
        return self.energy_layer(energy).squeeze(2)


def build_attention(
    kind: AttentionType, query_size: int, memory_size: int, hidden_size: int | None = None
) -> Attention:
    """The attention module for kind; hidden_size (concat only) defaults to query_size."""
    if kind in ("general", "dot"):
        return LuongAttention(query_size, memory_size, kind)
    if kind == "concat":
        return BahdanauAttention(query_size, memory_size, hidden_size or query_size)
    raise ValueError(f"attention must be 'general', 'dot' or 'concat', got {kind!r}")
