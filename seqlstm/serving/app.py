"""`create_app`: the FastAPI application that serves seqlstm models over HTTP.

    POST /tag        (a tagger)            sentences or documents -> tags, entities, confidences
    POST /translate  (a translator)        sentences, beam_size, n_best -> translations
    POST /generate   (a language model)    prompt, max_new_tokens, sampling, seed -> text
    GET  /health                           the models, their routes and traffic
    GET  /openapi.json, /docs              the machine-readable schema, and a page for it

Only the routes of the models served exist (a server without a translator answers
``POST /translate`` with 404). One model per task: the route is the task, and a client never
has to know which model is behind it; to serve two taggers, start two servers.

Errors are JSON ``{"detail": ...}``: 422 with the list of validation errors (FastAPI's own
format: each with ``loc``, ``msg``, ``type``), 413 and 415 from `RequestGate`, 500 with one
line when a model call raises (the traceback goes to the server's log; the worker and the
other requests of its batch carry on), 503 while the server shuts down.
"""

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from seqlstm.pretrained import PretrainedModel, seqlstm_version
from seqlstm.serving.batching import BatcherClosed, ModelCallError
from seqlstm.serving.limits import ServingLimits
from seqlstm.serving.request_gate import RequestGate
from seqlstm.serving.schemas import (
    GenerateResponse,
    HealthResponse,
    TagResponse,
    TranslateResponse,
    error_responses,
    request_models,
)
from seqlstm.serving.served_models import (
    ServedLanguageModel,
    ServedModel,
    ServedTagger,
    ServedTranslator,
    served_model,
)

# the defaults of `seqlstm serve`
MAX_BATCH_SENTENCES = 64
MAX_WAIT_MS = 2.0


def create_app(
    models: Mapping[str, PretrainedModel],
    limits: ServingLimits | None = None,
    max_batch_sentences: int = MAX_BATCH_SENTENCES,
    max_wait_ms: float = MAX_WAIT_MS,
) -> FastAPI:
    """The application serving ``models`` (name, e.g. the model directory -> a loaded tagger,
    translator or language model; at most one of each), with the request ``limits``.

    Concurrent requests to one model are batched (seqlstm.serving.batching): up to
    ``max_batch_sentences`` sentences (or prompts) per model call, waiting up to
    ``max_wait_ms`` milliseconds for a batch to fill. Raises ValueError for a model that
    cannot be served, for two models of one task and for no model at all.
    """
    limits = limits or ServingLimits()
    if not models:
        raise ValueError("give at least one model to serve")
    served: dict[str, ServedModel] = {}
    for name, model in models.items():
        one = served_model(name, model, max_batch_sentences, max_wait_ms / 1000)
        if one.task in served:
            raise ValueError(
                f"{served[one.task].name} and {name} are both for /{one.task}; serve one model "
                "per task (start a second server on another port for the other)"
            )
        served[one.task] = one

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # finish the batches in progress, refuse the queued requests; in threads, so the
        # event loop can still hand the last results to their requests
        await asyncio.gather(*(asyncio.to_thread(one.batcher.close) for one in served.values()))

    app = FastAPI(
        title="seqlstm",
        version=seqlstm_version(),
        summary="BiLSTM-CRF tagging, LSTM translation and generation, with dynamic batching",
        lifespan=lifespan,
    )
    app.add_middleware(RequestGate, max_body_bytes=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's format without each error's input, which would send a request of up to
        # max_body_bytes back whole, and its context, which repeats the message
        detail = [{key: e[key] for key in ("type", "loc", "msg")} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(ModelCallError)
    async def model_call_failed(request: Request, error: ModelCallError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=500)

    @app.exception_handler(BatcherClosed)
    async def shutting_down(request: Request, error: BatcherClosed) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    requests = request_models(limits)
    errors = error_responses(413, 415, 500, 503)
    tagger = served.get(ServedTagger.task)
    translator = served.get(ServedTranslator.task)
    language_model = served.get(ServedLanguageModel.task)

    if isinstance(tagger, ServedTagger):

        @app.post(
            "/tag", response_model=TagResponse, response_model_exclude_none=True, responses=errors
        )
        async def tag(request: requests.tag) -> TagResponse:
            """Tag sentences (each read alone) or documents (each sentence read with its
            neighbours in the same document)."""
            return await tagger.tag(request)

    if isinstance(translator, ServedTranslator):

        @app.post(
            "/translate",
            response_model=TranslateResponse,
            response_model_exclude_none=True,
            responses=errors,
        )
        async def translate(request: requests.translate) -> TranslateResponse:
            """Translate sentences with beam search (beam_size 1: greedy)."""
            return await translator.translate(request)

    if isinstance(language_model, ServedLanguageModel):

        @app.post("/generate", response_model=GenerateResponse, responses=errors)
        async def generate(request: requests.generate) -> GenerateResponse:
            """Continue a prompt: greedy (temperature 0) or sampled, reproducibly with a
            seed."""
            return await language_model.generate(request)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """The models served, their routes and their traffic so far."""
        return HealthResponse(status="ok", models=[one.health() for one in served.values()])

    return app
