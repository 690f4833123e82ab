"""The JSON the server reads and writes, as pydantic models.

FastAPI validates every request body against its model before a handler runs, answers a
request that does not fit with 422 and a list of errors, each naming the field (``loc``) and
what was expected (``msg``), and builds the OpenAPI schema (``GET /openapi.json``) from the
same models. Request models are strict: unknown fields are errors (``extra="forbid"``: a
misspelt ``beam`` for ``beam_size`` must not be ignored silently), and values are not
converted (``"5"`` is not a beam size, ``true`` not a number).

The request models depend on the server's `ServingLimits` (how many sentences, how long),
so `request_models(limits)` builds them for one server; their JSON schema then states the
server's own limits. The response models do not depend on them.

Sentences and words follow the models' own definitions: a tagger sentence is raw text (split
into words by seqlstm.text.words, entity offsets into the text) or a list of words (offsets
into the words joined by single spaces); a document is a list of such sentences, read with
context. Empty sentences and prompts are allowed, as the models allow them (an empty sentence
gets no tags, an empty source the empty translation, an empty prompt starts from BOS); an
empty list of sentences is not.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from seqlstm.serving.limits import ServingLimits
from seqlstm.text.words import tokenize

# the settings `seqlstm translate` and `seqlstm generate` default to
DEFAULT_BEAM_SIZE = 5
DEFAULT_MAX_NEW_TOKENS = 200

_STRICT = ConfigDict(extra="forbid", strict=True)


class RequestModels(NamedTuple):
    """The request models of one server: the bodies of POST /tag, /translate, /generate."""

    tag: type[BaseModel]
    translate: type[BaseModel]
    generate: type[BaseModel]


def request_models(limits: ServingLimits) -> RequestModels:
    """The request models with ``limits`` built in (see the module docstring)."""
    sentence_limits = (
        f"at most {limits.max_words} words and {limits.max_chars} characters (words joined by "
        "single spaces)"
    )

    def check_tagger_sentence(sentence: str | list[str]) -> str | list[str]:
        if isinstance(sentence, str):
            _check_size(len(tokenize(sentence)), len(sentence), limits)
            return sentence
        if any(not word for word in sentence):
            raise ValueError("a word must be a non-empty string")
        _check_size(len(sentence), sum(map(len, sentence)) + len(sentence) - 1, limits)
        return sentence

    def check_source(sentence: str) -> str:
        _check_size(len(sentence.split()), len(sentence), limits)
        return sentence

    TaggerSentence = Annotated[
        str | list[str],
        AfterValidator(check_tagger_sentence),
        Field(
            description="raw text (split into words by the tagger) or a list of non-empty "
            f"words; {sentence_limits}"
        ),
    ]
    Sentences = Annotated[
        list[TaggerSentence], Field(min_length=1, max_length=limits.max_sentences)
    ]

    class TagRequest(BaseModel):
        """Sentences to tag, each read alone, or documents, each sentence read with the other
        sentences of its document as context (for a tagger trained with context); give
        exactly one of the two."""

        model_config = _STRICT
        sentences: Sentences | None = Field(
            None, description=f"sentences, each read alone; 1 to {limits.max_sentences}"
        )
        documents: (
            Annotated[
                list[Annotated[list[TaggerSentence], Field(min_length=1)]],
                Field(min_length=1, max_length=limits.max_sentences),
            ]
            | None
        ) = Field(
            None,
            description="documents, each a non-empty list of sentences; at most "
            f"{limits.max_sentences} sentences in all",
        )

        @model_validator(mode="after")
        def _one_input(self) -> TagRequest:
            if (self.sentences is None) == (self.documents is None):
                raise ValueError(
                    "give either 'sentences' (a list of sentences, each read alone) or "
                    "'documents' (a list of documents, each a list of sentences), not "
                    + ("both" if self.sentences is not None else "neither")
                )
            if self.documents is not None:
                count = sum(len(document) for document in self.documents)
                if count > limits.max_sentences:
                    raise ValueError(
                        f"the documents have {count} sentences; at most "
                        f"{limits.max_sentences} are allowed in one request"
                    )
            return self

    class TranslateRequest(BaseModel):
        """Source sentences to translate, with the beam search settings."""

        model_config = _STRICT
        sentences: Annotated[
            list[
                Annotated[
                    str,
                    AfterValidator(check_source),
                    Field(description=f"a source sentence; {sentence_limits}"),
                ]
            ],
            Field(min_length=1, max_length=limits.max_sentences),
        ]
        beam_size: int = Field(
            min(DEFAULT_BEAM_SIZE, limits.max_beam_size),
            ge=1,
            le=limits.max_beam_size,
            description="beam size; 1 is greedy search",
        )
        n_best: int = Field(
            1,
            ge=1,
            le=limits.max_beam_size,
            description="translations per sentence, best first, at most beam_size; above 1 "
            "the response adds them with their scores",
        )
        length_penalty: float = Field(
            1.0,
            ge=0.0,
            allow_inf_nan=False,
            description="GNMT length penalty exponent; 0 ranks by log-probability alone",
        )

        @model_validator(mode="after")
        def _n_best_fits(self) -> TranslateRequest:
            if self.n_best > self.beam_size:
                raise ValueError(
                    f"n_best ({self.n_best}) must be at most beam_size ({self.beam_size})"
                )
            return self

    class GenerateRequest(BaseModel):
        """A prompt to continue, with the sampling settings."""

        model_config = _STRICT
        prompt: str = Field(
            "",
            max_length=limits.max_chars,
            description="text to continue; empty: start a text afresh",
        )
        max_new_tokens: int = Field(
            min(DEFAULT_MAX_NEW_TOKENS, limits.max_new_tokens),
            ge=0,
            le=limits.max_new_tokens,
            description="tokens to add at most (an end of line counts as one)",
        )
        temperature: float = Field(
            1.0, ge=0.0, allow_inf_nan=False, description="0 is greedy decoding"
        )
        top_k: int | None = Field(None, ge=1, description="sample among the k likeliest tokens")
        top_p: float | None = Field(
            None, gt=0.0, le=1.0, description="nucleus sampling: the probability mass kept"
        )
        seed: int | None = Field(
            None,
            ge=0,
            le=2**64 - 1,
            description="random seed: the same seed gives the same text as "
            "LSTMLanguageModel.generate(prompt, ..., seed=seed)",
        )
        multiline: bool = Field(
            False,
            description="read and write text as lines: go on past the end of a line, which "
            "comes out as a newline (False: stop there)",
        )

    return RequestModels(TagRequest, TranslateRequest, GenerateRequest)


def _check_size(words: int, chars: int, limits: ServingLimits) -> None:
    if words > limits.max_words:
        raise ValueError(
            f"a sentence may have at most {limits.max_words} words; this one has {words}"
        )
    if chars > limits.max_chars:
        raise ValueError(
            f"a sentence may have at most {limits.max_chars} characters; this one has {chars}"
        )


# ----------------------------------------------------------------------------- responses


class EntityResponse(BaseModel):
    """An entity: its text, type, character offsets (end exclusive; into the raw text, or into
    the words joined by single spaces), word offsets (end exclusive) and the probability that
    exactly this entity is in the sentence."""

    text: str
    type: str
    start: int
    end: int
    score: float
    token_start: int
    token_end: int


class TaggedSentenceResponse(BaseModel):
    """A tagged sentence: its words, their tags and tag confidences (marginal probabilities),
    and its entities. Probabilities are rounded to 4 decimals."""

    tokens: list[str]
    tags: list[str]
    confidences: list[float]
    entities: list[EntityResponse]


class TagResponse(BaseModel):
    """``sentences`` for a request with sentences, ``documents`` (one list of tagged sentences
    per document) for one with documents, in the order given."""

    sentences: list[TaggedSentenceResponse] | None = None
    documents: list[list[TaggedSentenceResponse]] | None = None


class ScoredTranslation(BaseModel):
    """A translation and the length-normalised log-probability the beam ranked it by."""

    text: str
    score: float


class TranslateResponse(BaseModel):
    """The best translation of each sentence, in order, and with n_best > 1 the n best of
    each (best first, with scores rounded to 4 decimals)."""

    translations: list[str]
    n_best: list[list[ScoredTranslation]] | None = None


class GenerateResponse(BaseModel):
    """The (normalised) prompt followed by its continuation."""

    text: str


class ModelHealth(BaseModel):
    """One served model: its route, where it was loaded from, and its traffic so far
    (requests / model_calls is the mean batch size)."""

    task: Literal["tag", "translate", "generate"]
    route: str
    name: str
    model_class: str
    int8: bool
    requests: int
    model_calls: int


class HealthResponse(BaseModel):
    status: Literal["ok"]
    models: list[ModelHealth]


class ErrorResponse(BaseModel):
    """A request the server did not run: the reason, on one line."""

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of routes that can answer ``codes`` with an
    ErrorResponse."""
    descriptions = {
        413: "the request body is larger than the server allows",
        415: "the request body is not JSON (Content-Type: application/json)",
        500: "the model call raised; the server and its other requests carry on",
        503: "the server is shutting down",
    }
    return {code: {"model": ErrorResponse, "description": descriptions[code]} for code in codes}
