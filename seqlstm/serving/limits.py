"""What one request to the server may hold: `ServingLimits`, one field per `seqlstm serve` flag.

The limits bound the work one request can ask for, so that one client cannot hold a model's
worker for minutes or the server's memory for gigabytes. Each is checked before the request
reaches a model: the body size by `seqlstm.serving.request_gate` (413), the rest by the request
schemas of `seqlstm.serving.schemas` (422, naming the field and the limit), which also put
them into the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ServingLimits:
    """Request limits; the defaults are those of ``seqlstm serve``.

    The defaults are generous for real sentences (the longest CoNLL-2003 test sentence has 124
    words, the longest Multi30k test source 151 characters) and keep the worst request to a
    few seconds of one core: 256 sentences of 256 words for the tagger, or 16-beam search
    over 256 sentences, or 1,000 new tokens.
    """

    max_body_bytes: int = 1 << 20  # the request body as sent, JSON and all
    max_sentences: int = 256  # per request; for documents, their sentences together
    max_words: int = 256  # per sentence: words as the tagger reads them, or space-separated
    max_chars: int = 2048  # per sentence or prompt
    max_new_tokens: int = 1000  # generation: tokens added to a prompt
    max_beam_size: int = 16  # translation: beam size (and so n-best)

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 1:
                raise ValueError(f"{field.name} must be >= 1, got {getattr(self, field.name)}")
