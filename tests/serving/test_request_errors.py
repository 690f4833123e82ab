"""Every kind of bad request gets a 4xx whose message says what was expected."""

import asyncio
import json

import pytest
from locations import FIXTURES

pytest.importorskip("fastapi")  # seqlstm.serving is the `serve` extra
pytest.importorskip("httpx")  # FastAPI's TestClient runs on it
from fastapi.testclient import TestClient  # noqa: E402

from seqlstm.serving import ServingLimits, create_app  # noqa: E402
from seqlstm.serving.request_gate import RequestGate  # noqa: E402
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel  # noqa: E402
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger  # noqa: E402
from seqlstm.tasks.translation.translator import Seq2SeqLSTM  # noqa: E402

MODELS = FIXTURES / "models_0_1"
LIMITS = ServingLimits(
    max_body_bytes=2000,
    max_sentences=3,
    max_words=5,
    max_chars=40,
    max_new_tokens=10,
    max_beam_size=3,
)


@pytest.fixture(scope="module")
def client():
    models = {
        "tagger": BiLSTMCRFTagger.from_pretrained(MODELS / "tagger"),
        "translator": Seq2SeqLSTM.from_pretrained(MODELS / "translator"),
        "lm": LSTMLanguageModel.from_pretrained(MODELS / "char_lm"),
    }
    with TestClient(create_app(models, LIMITS)) as client:
        yield client


def errors(response):
    """(loc, msg) of each validation error of a 422."""
    assert response.status_code == 422, response.text
    return [(tuple(e["loc"]), e["msg"]) for e in response.json()["detail"]]


@pytest.mark.parametrize(
    ("path", "body", "loc", "message"),
    [
        # wrong types, and no conversion of near misses
        ("/tag", {"sentences": "one sentence"}, ("body", "sentences"), "valid list"),
        ("/tag", {"sentences": [["EU", 5]]}, ("body", "sentences", 0), "valid"),
        ("/translate", {"sentences": ["a"], "beam_size": "5"}, ("body", "beam_size"), "integer"),
        ("/generate", {"temperature": True}, ("body", "temperature"), "valid number"),
        ("/generate", {"seed": 1.5}, ("body", "seed"), "valid integer"),
        ("/generate", {"prompt": None}, ("body", "prompt"), "valid string"),
        # missing and empty input
        ("/translate", {}, ("body", "sentences"), "Field required"),
        ("/tag", {"sentences": []}, ("body", "sentences"), "at least 1 item"),
        ("/tag", {"documents": [[]]}, ("body", "documents", 0), "at least 1 item"),
        ("/tag", {}, ("body",), "not neither"),
        ("/tag", {"sentences": ["a"], "documents": [["b"]]}, ("body",), "not both"),
        ("/tag", {"sentences": [["EU", ""]]}, ("body", "sentences", 0), "non-empty string"),
        # unknown fields
        ("/translate", {"sentences": ["a"], "beam": 3}, ("body", "beam"), "Extra inputs"),
        ("/generate", {"prompt": "a", "max_tokens": 3}, ("body", "max_tokens"), "Extra inputs"),
        # over the limits
        ("/tag", {"sentences": ["a"] * 4}, ("body", "sentences"), "at most 3 items"),
        ("/tag", {"documents": [["a", "b"], ["c", "d"]]}, ("body",), "4 sentences; at most 3"),
        (
            "/tag",
            {"sentences": ["one two three four five six"]},
            ("body", "sentences", 0),
            "at most 5 words; this one has 6",
        ),
        (
            "/tag",
            {"sentences": [["a", "b", "c", "d", "e", "f"]]},
            ("body", "sentences", 0),
            "at most 5 words",
        ),
        (
            "/tag",
            {"sentences": ["x" * 41]},
            ("body", "sentences", 0),
            "at most 40 characters; this one has 41",
        ),
        ("/translate", {"sentences": ["a b c d e f"]}, ("body", "sentences", 0), "at most 5 words"),
        (
            "/translate",
            {"sentences": ["a"], "beam_size": 4},
            ("body", "beam_size"),
            "less than or equal to 3",
        ),
        (
            "/translate",
            {"sentences": ["a"], "beam_size": 2, "n_best": 3},
            ("body",),
            "n_best (3) must be at most beam_size (2)",
        ),
        (
            "/translate",
            {"sentences": ["a"], "beam_size": 0},
            ("body", "beam_size"),
            "greater than or equal to 1",
        ),
        (
            "/generate",
            {"max_new_tokens": 11},
            ("body", "max_new_tokens"),
            "less than or equal to 10",
        ),
        ("/generate", {"prompt": "x" * 41}, ("body", "prompt"), "at most 40 characters"),
        ("/generate", {"top_p": 0.0}, ("body", "top_p"), "greater than 0"),
        ("/generate", {"top_k": 0}, ("body", "top_k"), "greater than or equal to 1"),
        ("/generate", {"temperature": -1.0}, ("body", "temperature"), "greater than or equal to 0"),
        ("/generate", {"seed": -1}, ("body", "seed"), "greater than or equal to 0"),
    ],
)
def test_invalid_requests_get_422_naming_the_field(client, path, body, loc, message):
    found = errors(client.post(path, json=body))
    assert any(got_loc[: len(loc)] == loc and message in msg for got_loc, msg in found), found


def test_malformed_json_is_a_422_naming_the_position(client):
    response = client.post(
        "/tag", content=b'{"sentences": [}', headers={"Content-Type": "application/json"}
    )
    assert errors(response) == [(("body", 15), "JSON decode error")]


def test_a_422_does_not_echo_the_request(client):
    response = client.post("/tag", json={"sentences": ["x" * 41]})
    assert response.status_code == 422
    assert "x" * 41 not in response.text


def test_a_body_without_a_json_content_type_is_a_415(client):
    for headers in ({}, {"Content-Type": "text/plain"}):
        response = client.post("/tag", content=b'{"sentences": ["EU"]}', headers=headers)
        assert response.status_code == 415
        assert "Content-Type: application/json" in response.json()["detail"]
    # application/*+json is JSON too, as FastAPI reads it
    response = client.post(
        "/tag", content=b'{"sentences": ["EU"]}', headers={"Content-Type": "application/x+json"}
    )
    assert response.status_code == 200


def test_an_oversized_body_is_a_413_with_or_without_its_length(client):
    body = json.dumps({"sentences": ["EU"] * 1000}).encode()
    response = client.post("/tag", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"the request body has {len(body)} bytes; this server takes at most 2000 "
        "(seqlstm serve --max-body-bytes)"
    }

    bad = client.post(
        "/tag", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": "x"}
    )
    assert bad.status_code == 400


def test_unknown_routes_and_methods(client):
    assert client.post("/classify", json={}).status_code == 404
    assert client.get("/tag").status_code == 405
    assert client.post("/tag", json={"sentences": ["EU"]}).status_code == 200  # still serving


def test_a_chunked_body_is_cut_off_once_over_the_limit():
    """Without a Content-Length the gate reads chunks only until the limit is passed."""
    received = []

    async def app(scope, receive, send):  # never reached
        raise AssertionError("the app must not run")

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 500, "more_body": True}  # endless

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/tag",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(RequestGate(app, max_body_bytes=2000)(scope, receive, send))
    assert len(received) == 5  # 2,500 bytes read, no more
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == {
        "detail": "the request body has more than 2500 bytes; this server takes at most 2000 "
        "(seqlstm serve --max-body-bytes)"
    }
