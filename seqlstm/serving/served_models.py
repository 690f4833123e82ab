"""A model behind its batcher: what a request of each task asks of the model, and what one
batched model call is.

`ServedTagger`, `ServedTranslator` and `ServedLanguageModel` each own one model and one
`DynamicBatcher`. A request is a payload with a key (the call options it needs); the batcher
groups the payloads of one key, and the served model's ``_call`` runs them as one call of the
model's own public method, then splits the results back per request:

- tag: the sentences of all requests in one ``tag`` call (each sentence is read alone, so
  it does not matter which other sentences share the call), or the documents of all requests
  in one ``tag_documents`` call (each document is read with its own context only). Key:
  sentences or documents.
- translate: the sentences of all requests with the same beam size, n-best and length penalty
  in one ``translate`` call (beam search keeps each sentence's beams apart).
- generate: greedy requests (temperature 0) with the same max_new_tokens and multiline in one
  ``generate`` call (a row's continuation does not depend on the other prompts); unseeded
  sampled requests with equal settings in one call. Seeded sampling is not batched: the
  sampler draws for all rows of a call from one torch.Generator, so a prompt's text would
  depend on its place in the batch; a request with a seed runs alone, as
  ``generate(prompt, ..., seed=seed)``, and gives the same text as that direct call.

Batching changes which sentences share a call, and float32 results on the CPU depend a little
on the shapes of the matrix products (a row of a batch of 5 and the same row alone differ in
the last bits). Tags, entities, translations and greedy continuations came out the same as
from a direct call in every check (300 CoNLL-2003 test sentences tagged alone and together
with the trained tagger, 80 Multi30k sentences translated alone and together at beams 1 and
5, 16 Tiny Shakespeare prompts continued greedily alone and together), while token
confidences and entity scores moved by up to 1.2e-4 and translation scores by up to 2.3e-5:
as between two direct calls, ``tag([s])`` and ``tag([s, t])``. Int8 models are not batch
invariant: dynamic quantization scales a layer's input by the range of the whole batch (2 of
those 300 sentences got other tags in one call of 64 than alone, and confidences moved by up
to 0.14); with ``seqlstm serve --max-batch-sentences 1`` every sentence runs alone, as in
``tag([s])``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar, TypeVar

from seqlstm.pretrained import PretrainedModel
from seqlstm.quantization import is_quantized
from seqlstm.serving.batching import DynamicBatcher
from seqlstm.serving.schemas import (
    EntityResponse,
    GenerateResponse,
    ModelHealth,
    ScoredTranslation,
    TaggedSentenceResponse,
    TagResponse,
    TranslateResponse,
)
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggedSentence
from seqlstm.tasks.translation.translator import Seq2SeqLSTM

T = TypeVar("T")

# probabilities and scores in responses, as `seqlstm tag --output-format jsonl` writes them
DECIMALS = 4


class ServedModel(ABC):
    """A model and its batcher; ``task`` names the route (POST /task)."""

    task: ClassVar[str]
    model_class: ClassVar[type[PretrainedModel]]

    def __init__(
        self, name: str, model: PretrainedModel, max_batch_sentences: int, max_wait_s: float
    ) -> None:
        if not isinstance(model, self.model_class):
            raise TypeError(f"a {type(self).__name__} serves a {self.model_class.__name__}")
        self.name = name
        self.model = model
        # the model's own batch size: a batch of requests is one batch of sentences
        self.batch_size = max_batch_sentences
        self.batcher: DynamicBatcher[Any, Any] = DynamicBatcher(
            self.task, self._call, max_batch_sentences, max_wait_s
        )

    @abstractmethod
    def _call(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        """One model call for the payloads of requests that share ``key``; one result each."""

    def health(self) -> ModelHealth:
        return ModelHealth(
            task=self.task,
            route=f"/{self.task}",
            name=self.name,
            model_class=type(self.model).__name__,
            int8=is_quantized(self.model),
            requests=self.batcher.requests,
            model_calls=self.batcher.calls,
        )


class ServedTagger(ServedModel):
    task = "tag"
    model_class = BiLSTMCRFTagger
    model: BiLSTMCRFTagger

    async def tag(self, request: Any) -> TagResponse:
        """The response to a TagRequest of `request_models` (validated)."""
        if request.sentences is not None:
            size = len(request.sentences)
            tagged = await self.batcher.submit("sentences", request.sentences, size)
            return TagResponse(sentences=tagged)
        size = sum(len(document) for document in request.documents)
        tagged = await self.batcher.submit("documents", request.documents, size)
        return TagResponse(documents=tagged)

    def _call(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        model = self.model
        if key == "sentences":
            tagged = model.tag([s for sentences in payloads for s in sentences], self.batch_size)
            return _regroup([_tagged(t) for t in tagged], [len(p) for p in payloads])
        documents = [document for request in payloads for document in request]
        by_document = model.tag_documents(documents, self.batch_size)
        responses = [[_tagged(t) for t in document] for document in by_document]
        return _regroup(responses, [len(p) for p in payloads])


class ServedTranslator(ServedModel):
    task = "translate"
    model_class = Seq2SeqLSTM
    model: Seq2SeqLSTM

    async def translate(self, request: Any) -> TranslateResponse:
        """The response to a TranslateRequest of `request_models` (validated)."""
        key = (request.beam_size, request.n_best, request.length_penalty)
        return await self.batcher.submit(key, request.sentences, len(request.sentences))

    def _call(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        model = self.model
        beam_size, n_best, length_penalty = key
        sentences = [sentence for request in payloads for sentence in request]
        options = dict(
            beam_size=beam_size, length_penalty=length_penalty, batch_size=self.batch_size
        )
        if n_best == 1:
            texts = model.translate(sentences, **options)
            return [
                TranslateResponse(translations=group)
                for group in _regroup(texts, [len(p) for p in payloads])
            ]
        # only Translation objects carry the scores; their attention is not used
        nbest = model.translate(sentences, n_best=n_best, return_attention=True, **options)
        return [
            TranslateResponse(
                translations=[translations[0].text for translations in group],
                n_best=[
                    [ScoredTranslation(text=t.text, score=round(t.score, DECIMALS)) for t in ts]
                    for ts in group
                ],
            )
            for group in _regroup(nbest, [len(p) for p in payloads])
        ]


class ServedLanguageModel(ServedModel):
    task = "generate"
    model_class = LSTMLanguageModel
    model: LSTMLanguageModel

    async def generate(self, request: Any) -> GenerateResponse:
        """The response to a GenerateRequest of `request_models` (validated)."""
        return await self.batcher.submit(_generation_key(request), request)

    def _call(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        model = self.model
        # the requests of one key decode alike (see _generation_key): the first one's settings
        first = payloads[0]
        texts = model.generate(
            [request.prompt for request in payloads],
            first.max_new_tokens,
            temperature=first.temperature,
            top_k=first.top_k,
            top_p=first.top_p,
            seed=first.seed,
            multiline=first.multiline,
        )
        return [GenerateResponse(text=text) for text in texts]


def _generation_key(request: Any) -> Hashable:
    """Requests with equal keys may share a generate call: greedy ones continue each prompt
    as they would alone, unseeded sampled ones are random draws either way, and a seeded
    one gets a key of its own."""
    if request.temperature == 0.0:  # greedy: top_k, top_p and the seed play no part
        return ("greedy", request.max_new_tokens, request.multiline)
    settings = (
        request.max_new_tokens,
        request.temperature,
        request.top_k,
        request.top_p,
        request.multiline,
    )
    if request.seed is None:
        return ("sampled", *settings)
    # a key no other request has: seeded sampling runs alone (module docstring)
    return ("seeded", request.seed, *settings, object())


SERVED_MODELS: dict[str, type[ServedModel]] = {
    served.model_class.__name__: served
    for served in (ServedTagger, ServedTranslator, ServedLanguageModel)
}


def _tagged(tagged: TaggedSentence) -> TaggedSentenceResponse:
    return TaggedSentenceResponse(
        tokens=tagged.tokens,
        tags=tagged.tags,
        confidences=[round(c, DECIMALS) for c in tagged.confidences],
        entities=[
            EntityResponse(
                text=e.text,
                type=e.type,
                start=e.start,
                end=e.end,
                score=round(e.score, DECIMALS),
                token_start=e.token_start,
                token_end=e.token_end,
            )
            for e in tagged.entities
        ],
    )


def _regroup(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """Consecutive runs of ``items`` of the given sizes."""
    groups, start = [], 0
    for size in sizes:
        groups.append(list(items[start : start + size]))
        start += size
    return groups


def served_model(
    name: str, model: PretrainedModel, max_batch_sentences: int, max_wait_s: float
) -> ServedModel:
    """The ServedModel for ``model`` (a tagger, translator or language model), batching up to
    ``max_batch_sentences`` sentences (or prompts) per call and waiting up to ``max_wait_s``
    for a batch to fill."""
    served = SERVED_MODELS.get(type(model).__name__)
    if served is None:
        raise ValueError(
            f"{name}: a {type(model).__name__} cannot be served; seqlstm serve serves "
            f"{', '.join(SERVED_MODELS)}"
        )
    return served(name, model, max_batch_sentences, max_wait_s)
