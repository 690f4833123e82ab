"""The served routes against direct model calls, batching, /health and the OpenAPI schema.

The models are the small saved model directories of tests/fixtures/models_0_1 (a tagger
trained with document context, a translator and a character LM), loaded once; each test
builds its own app, whose batchers' worker threads end with the app's lifespan.
"""

import asyncio
import json

import pytest
from locations import FIXTURES

pytest.importorskip("fastapi")  # seqlstm.serving is the `serve` extra
pytest.importorskip("httpx")  # FastAPI's TestClient runs on it
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from seqlstm.serving import ServingLimits, create_app  # noqa: E402
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel  # noqa: E402
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger  # noqa: E402
from seqlstm.tasks.translation.translator import Seq2SeqLSTM  # noqa: E402

MODELS = FIXTURES / "models_0_1"
SENTENCES = [
    "EU rejects German call to boycott British lamb .",
    ["Peter", "Blackburn"],
    "BRUSSELS 1996-08-22",
    "",
    "The European Commission said on Thursday it disagreed with German advice .",
]
SOURCES = ["a red cat sleeps", "", "the old dog eats", "two big birds"]


@pytest.fixture(scope="module")
def tagger():
    return BiLSTMCRFTagger.from_pretrained(MODELS / "tagger")


@pytest.fixture(scope="module")
def translator():
    return Seq2SeqLSTM.from_pretrained(MODELS / "translator")


@pytest.fixture(scope="module")
def lm():
    return LSTMLanguageModel.from_pretrained(MODELS / "char_lm")


@pytest.fixture
def models(tagger, translator, lm):
    return {"tagger": tagger, "translator": translator, "lm": lm}


def tagged(sentence):
    """The JSON the server writes for a TaggedSentence."""
    return {
        "tokens": list(sentence.tokens),
        "tags": sentence.tags,
        "confidences": [round(c, 4) for c in sentence.confidences],
        "entities": [
            {
                "text": e.text,
                "type": e.type,
                "start": e.start,
                "end": e.end,
                "score": round(e.score, 4),
                "token_start": e.token_start,
                "token_end": e.token_end,
            }
            for e in sentence.entities
        ],
    }


def post_concurrently(app, requests, then=()):
    """POST (path, body) requests at once, then the requests ``then`` one after the other,
    within one lifespan of the app; all the responses."""

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                responses = await asyncio.gather(*(client.post(p, json=b) for p, b in requests))
                return [*responses, *[await client.post(p, json=b) for p, b in then]]

    return asyncio.run(main())


def spy(monkeypatch, model, method):
    """Record the arguments of every call of model.method; the list of (args, kwargs)."""
    calls = []
    original = getattr(model, method)

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, method, recorded)
    return calls


# ----------------------------------------------------------------------------- one request


def test_tag_sentences_and_documents_are_the_direct_calls(models, tagger):
    documents = [SENTENCES[:3], SENTENCES[3:]]
    with TestClient(create_app(models)) as client:
        response = client.post("/tag", json={"sentences": SENTENCES})
        assert response.status_code == 200
        assert response.json() == {"sentences": [tagged(t) for t in tagger.tag(SENTENCES)]}
        response = client.post("/tag", json={"documents": documents})
        assert response.status_code == 200
        expected = [[tagged(t) for t in d] for d in tagger.tag_documents(documents)]
        assert response.json() == {"documents": expected}
    # the fixture tagger reads documents with context, so the two differ: both routes are used
    assert expected != [[tagged(t) for t in tagger.tag(d)] for d in documents]
    entity = response.json()["documents"][0][0]["entities"][0]
    assert SENTENCES[0][entity["start"] : entity["end"]] == entity["text"]


def test_translate_is_the_direct_call(models, translator):
    with TestClient(create_app(models)) as client:
        response = client.post("/translate", json={"sentences": SOURCES, "beam_size": 3})
        assert response.json() == {"translations": translator.translate(SOURCES, beam_size=3)}
        body = {"sentences": SOURCES, "beam_size": 3, "n_best": 2, "length_penalty": 0.5}
        response = client.post("/translate", json=body)
    nbest = translator.translate(
        SOURCES, beam_size=3, n_best=2, length_penalty=0.5, return_attention=True
    )
    assert response.json() == {
        "translations": [ts[0].text for ts in nbest],
        "n_best": [[{"text": t.text, "score": round(t.score, 4)} for t in ts] for ts in nbest],
    }


@pytest.mark.parametrize(
    "settings",
    [
        {"temperature": 0.0},
        {"temperature": 0.8, "top_k": 5, "seed": 3},
        {"temperature": 1.2, "top_p": 0.9, "seed": 2**64 - 1, "multiline": True},
    ],
)
def test_generate_is_the_direct_call(models, lm, settings):
    with TestClient(create_app(models)) as client:
        body = {"prompt": "the quick", "max_new_tokens": 30, **settings}
        response = client.post("/generate", json=body)
    assert response.json() == {"text": lm.generate("the quick", 30, **settings)}


# ----------------------------------------------------------------------------- batching


def test_concurrent_tag_requests_share_model_calls(models, tagger, monkeypatch):
    calls = spy(monkeypatch, tagger, "tag")
    app = create_app(models, max_batch_sentences=6, max_wait_ms=200)
    bodies = [
        {"sentences": [f"{SENTENCES[n % 5 or 2]} {n}", ["Peter", "Blackburn", str(n)]]}
        for n in range(9)
    ]
    responses = post_concurrently(app, [("/tag", body) for body in bodies])
    # 18 sentences, at most 6 per call: 3 calls, each of three whole requests
    assert [len(args[0]) for args, _ in calls] == [6, 6, 6]
    monkeypatch.undo()
    served = {
        json.dumps(sentence): result
        for body, response in zip(bodies, responses, strict=True)
        for sentence, result in zip(body["sentences"], response.json()["sentences"], strict=True)
    }
    for args, kwargs in calls:  # each call's results are exactly a direct call's on its batch
        direct = [tagged(t) for t in tagger.tag(*args, **kwargs)]
        assert [served[json.dumps(sentence)] for sentence in args[0]] == direct
    for body, response in zip(bodies, responses, strict=True):
        # and the same tags and entities as the request's own call; confidences may move in
        # the last float bits with the company a sentence keeps (seqlstm.serving.served_models)
        alone = [tagged(t) for t in tagger.tag(body["sentences"])]
        for got, expected in zip(response.json()["sentences"], alone, strict=True):
            assert got["tags"] == expected["tags"]
            assert [e["text"] for e in got["entities"]] == [e["text"] for e in expected["entities"]]
            assert got["confidences"] == pytest.approx(expected["confidences"], abs=1e-3)


def test_documents_and_sentences_are_never_one_call(models, tagger, monkeypatch):
    sentence_calls = spy(monkeypatch, tagger, "tag")
    document_calls = spy(monkeypatch, tagger, "tag_documents")
    app = create_app(models, max_wait_ms=200)
    requests = [("/tag", {"sentences": SENTENCES[:2]}), ("/tag", {"documents": [SENTENCES[:2]]})]
    requests *= 3
    responses = post_concurrently(app, requests)
    assert len(sentence_calls) == len(document_calls) == 1
    monkeypatch.undo()
    alone = {"sentences": [tagged(t) for t in tagger.tag(SENTENCES[:2])]}
    together = {"documents": [[tagged(t) for t in tagger.tag_documents([SENTENCES[:2]])[0]]]}
    assert [r.json() for r in responses] == [alone, together] * 3


def test_translations_share_calls_only_with_equal_settings(models, translator, monkeypatch):
    calls = spy(monkeypatch, translator, "translate")
    app = create_app(models, max_wait_ms=200)
    settings = [{"beam_size": 1}, {"beam_size": 3}, {"beam_size": 3, "n_best": 2}]
    requests = [
        ("/translate", {"sentences": [s], **settings[n % 3]}) for n, s in enumerate(SOURCES * 3)
    ]
    responses = post_concurrently(app, requests)
    assert len(calls) == 3
    assert sorted((kw["beam_size"], kw.get("n_best", 1), len(args[0])) for args, kw in calls) == [
        (1, 1, 4),
        (3, 1, 4),
        (3, 2, 4),
    ]
    monkeypatch.undo()
    for args, kwargs in calls:  # each call is the direct call of its sentences
        direct = translator.translate(*args, **kwargs)
        texts = [t if isinstance(t, str) else t[0].text for t in direct]
        matching = [
            r.json()["translations"][0]
            for (_, body), r in zip(requests, responses, strict=True)
            if body.get("beam_size") == kwargs["beam_size"]
            and body.get("n_best", 1) == kwargs.get("n_best", 1)
        ]
        assert matching == texts


def test_greedy_prompts_share_a_call_and_seeded_ones_run_alone(models, lm, monkeypatch):
    calls = spy(monkeypatch, lm, "generate")
    app = create_app(models, max_wait_ms=200)
    prompts = ["the", "pack my", "how", "", "quick brown"]
    greedy = [
        ("/generate", {"prompt": p, "max_new_tokens": 20, "temperature": 0.0}) for p in prompts
    ]
    seeded = [
        ("/generate", {"prompt": p, "max_new_tokens": 20, "temperature": 0.9, "seed": 7})
        for p in prompts
    ]
    responses = post_concurrently(app, greedy + seeded)
    sizes = sorted(len(args[0]) for args, _ in calls)
    assert sizes == [1, 1, 1, 1, 1, 5]
    monkeypatch.undo()
    batch = next(args[0] for args, _ in calls if len(args[0]) == 5)
    expected = dict(zip(batch, lm.generate(batch, 20, temperature=0.0), strict=True))
    assert [r.json()["text"] for r in responses[:5]] == [expected[p] for p in prompts]
    # a seeded request gives exactly the text of the direct call with its seed
    for prompt, response in zip(prompts, responses[5:], strict=True):
        assert response.json()["text"] == lm.generate(prompt, 20, temperature=0.9, seed=7)


def test_a_failing_model_call_fails_its_request_only(models, tagger, monkeypatch):
    original = tagger.tag

    def tag(sentences, batch_size=64):
        if "boom" in sentences:
            raise RuntimeError("the model broke\nin two lines")
        return original(sentences, batch_size)

    monkeypatch.setattr(tagger, "tag", tag)
    app = create_app(models, max_wait_ms=200)
    requests = [("/tag", {"sentences": [s]}) for s in ("EU rejects it", "boom", "Peter Blackburn")]
    # then the server and its worker carry on
    then = [("/tag", {"sentences": ["boom"]}), ("/tag", {"sentences": ["EU"]})]
    ok, failed, also_ok, failed_again, ok_again = post_concurrently(app, requests, then)
    statuses = [r.status_code for r in (ok, failed, also_ok, failed_again, ok_again)]
    assert statuses == [200, 500, 200, 500, 200]
    assert failed.json() == {
        "detail": "tag: the model call failed: RuntimeError: the model broke in two lines"
    }
    assert ok.json()["sentences"] == [tagged(t) for t in original(["EU rejects it"])]


def test_int8_models_are_served(tagger):
    quantized = BiLSTMCRFTagger.from_pretrained(MODELS / "tagger", quantize="int8")
    with TestClient(create_app({"int8 tagger": quantized})) as client:
        response = client.post("/tag", json={"sentences": SENTENCES})
        health = client.get("/health").json()
    assert response.json() == {"sentences": [tagged(t) for t in quantized.tag(SENTENCES)]}
    assert health["models"][0]["int8"] is True


# ----------------------------------------------------------------------------- health, schema


def test_health_lists_the_models_and_their_traffic(models):
    app = create_app({"tagger": models["tagger"], "lm": models["lm"]}, max_wait_ms=200)
    post_concurrently(app, [("/tag", {"sentences": ["EU"]})] * 4)
    with TestClient(app) as client:
        health = client.get("/health").json()
        assert client.post("/translate", json={"sentences": ["a"]}).status_code == 404
    assert health == {
        "status": "ok",
        "models": [
            {
                "task": "tag",
                "route": "/tag",
                "name": "tagger",
                "model_class": "BiLSTMCRFTagger",
                "int8": False,
                "requests": 4,
                "model_calls": 1,
            },
            {
                "task": "generate",
                "route": "/generate",
                "name": "lm",
                "model_class": "LSTMLanguageModel",
                "int8": False,
                "requests": 0,
                "model_calls": 0,
            },
        ],
    }


def test_the_openapi_schema_states_routes_and_limits(models):
    limits = ServingLimits(max_sentences=7, max_beam_size=4, max_new_tokens=50, max_chars=99)
    with TestClient(create_app(models, limits)) as client:
        schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/tag", "/translate", "/generate", "/health"}
    components = schema["components"]["schemas"]
    tag = components["TagRequest"]
    assert tag["additionalProperties"] is False
    sentences = next(s for s in tag["properties"]["sentences"]["anyOf"] if s["type"] == "array")
    assert (sentences["minItems"], sentences["maxItems"]) == (1, 7)
    translate = components["TranslateRequest"]["properties"]
    assert (translate["beam_size"]["maximum"], translate["beam_size"]["default"]) == (4, 4)
    generate = components["GenerateRequest"]["properties"]
    assert generate["max_new_tokens"]["maximum"] == 50
    assert generate["prompt"]["maxLength"] == 99
    for path in ("/tag", "/translate", "/generate"):
        assert {"200", "413", "415", "422", "500"} <= set(
            schema["paths"][path]["post"]["responses"]
        )


def test_create_app_checks_its_models(models, tagger):
    with pytest.raises(ValueError, match="both for /tag"):
        create_app({"a": tagger, "b": tagger})
    with pytest.raises(ValueError, match="at least one model"):
        create_app({})
    from seqlstm.tasks.classic.classifier import LSTMClassifier

    classifier = LSTMClassifier.from_pretrained(MODELS / "classifier")
    with pytest.raises(ValueError, match="LSTMClassifier cannot be served"):
        create_app({"classifier": classifier})
