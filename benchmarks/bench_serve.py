"""Load test of `seqlstm serve` over loopback: a served tagger and translator under 1, 8 and 32
concurrent clients, and the server's memory over 10,000 requests.

Each model is served by its own `seqlstm serve` subprocess on a free loopback port, at one
torch thread (OMP_NUM_THREADS=1) and the default batching (up to 64 sentences per model call,
2 ms wait) and limits, with uvicorn's log at warning (no line per request). The clients are
threads of this process, each with its own keep-alive connection, sending its next request as
soon as the previous one is answered (see `_load`); every request carries one sentence, the
case where batching across requests matters:

- tagger: `POST /tag` with a CoNLL-2003 English test sentence as its list of words (the 3,453
  sentences in file order, cycled), answered with tags, confidences and entities;
- translator: `POST /translate` with a Multi30k test2016 English source at beam size 5.

Per task and number of clients: requests/s, words/s (the words of the sentences answered),
p50/p99 latency (ms, send to full response), errors (any status but 200, or a failed
connection; expected 0), the mean batch size the server formed (requests / model calls, from
/health), the server's RSS before and after, and the one-minute load average before. Each
setting is bounded in requests (REQUESTS) and in time (SETTING_TIME_CAP_S), after a few
untimed warm-up requests.

Memory: then 10,000 tagger requests at 32 clients, the server's RSS read after every 1,000;
the growth from the first reading (after 1,000 requests have warmed the allocator) to the last
must stay within MEMORY_BOUND_MIB (`memory_growth_within_bound`).

The models: the trained tagger of bench_tagging ($SEQLSTM_TAGGER_MODEL, else
runs/ner_cpu_seed1/model) and the trained translator of `seqlstm train translation
--config cpu` ($SEQLSTM_TRANSLATOR_MODEL, else runs/mt_en_de_cpu/model). --quick builds tiny
random models into a temporary directory and sends few requests: it checks that everything
runs, in seconds.

The machine has two cores that the clients and the server share, so the server never has a
core to itself: numbers are those of client and server together on this machine.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from seqlstm.data import read_conll
from seqlstm.tasks.tagging.tagger import BiLSTMCRFTagger, TaggerConfig
from seqlstm.tasks.translation.translator import Seq2SeqLSTM, TranslatorConfig
from seqlstm.text.tokenizer import SubwordTokenizer

ROOT = Path(__file__).resolve().parents[1]
CONLL_TEST = ROOT.parent / "shared" / "data" / "conll2003" / "test.txt"
MULTI30K_TEST = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.en"
TAGGER_ENV, TAGGER_DEFAULT = "SEQLSTM_TAGGER_MODEL", ROOT / "runs" / "ner_cpu_seed1" / "model"
TRANSLATOR_ENV = "SEQLSTM_TRANSLATOR_MODEL"
TRANSLATOR_DEFAULT = ROOT / "runs" / "mt_en_de_cpu" / "model"

CLIENTS = (1, 8, 32)
# requests per setting (task -> clients -> count); --quick sends QUICK_REQUESTS
REQUESTS = {
    "tag": {1: 500, 8: 2000, 32: 3000},
    "translate": {1: 100, 8: 400, 32: 800},
}
QUICK_REQUESTS = 48
SETTING_TIME_CAP_S = 90.0
WARMUP_REQUESTS = 8
BEAM_SIZE = 5
MEMORY_REQUESTS, MEMORY_CLIENTS, MEMORY_SAMPLE_EVERY = 10_000, 32, 1_000
QUICK_MEMORY_REQUESTS, QUICK_MEMORY_SAMPLE_EVERY = 400, 100
MEMORY_BOUND_MIB = 32.0
STARTUP_TIMEOUT_S = 120.0
JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT_S = 120.0


def run(quick: bool) -> dict:
    for path in (CONLL_TEST, MULTI30K_TEST):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: needed for the load test")
    rows = read_conll(CONLL_TEST)
    sources = [line for line in MULTI30K_TEST.read_text(encoding="utf-8").splitlines() if line]
    tag_bodies = [{"sentences": [row["tokens"]]} for row in rows]
    tag_words = [len(row["tokens"]) for row in rows]
    translate_bodies = [{"sentences": [s], "beam_size": BEAM_SIZE} for s in sources]
    translate_words = [len(s.split()) for s in sources]
    with tempfile.TemporaryDirectory() as scratch:
        if quick:
            tagger_dir, translator_dir = _tiny_models(rows, sources, Path(scratch))
        else:
            tagger_dir = _model_dir(TAGGER_ENV, TAGGER_DEFAULT)
            translator_dir = _model_dir(TRANSLATOR_ENV, TRANSLATOR_DEFAULT)
        results: dict = {
            "tagger_model": str(tagger_dir),
            "translator_model": str(translator_dir),
            "beam_size": BEAM_SIZE,
            "server_torch_threads": 1,
            "machine_cpu_count": os.cpu_count(),
        }
        with _served(tagger_dir, Path(scratch) / "tagger.log") as server:
            results.update(_settings(server, "tag", tag_bodies, tag_words, quick))
            results.update(_memory(server, tag_bodies, quick))
        with _served(translator_dir, Path(scratch) / "translator.log") as server:
            results.update(_settings(server, "translate", translate_bodies, translate_words, quick))
    return results


class _Server:
    """A running `seqlstm serve`: its URL and process."""

    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url = url
        self.process = process

    def rss_mib(self) -> float:
        """The server process's resident set size (Linux /proc), MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return round(int(kib) / 1024, 1)

    def traffic(self) -> tuple[int, int]:
        """(requests, model calls) of the served model so far, from /health."""
        with urllib.request.urlopen(f"{self.url}/health", timeout=30) as response:
            model = json.load(response)["models"][0]
        return model["requests"], model["model_calls"]


@contextmanager
def _served(model_dir: Path, log: Path) -> Iterator[_Server]:
    """`seqlstm serve --model model_dir` on a free loopback port, at one torch thread."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "seqlstm.cli", "serve", "--model", str(model_dir)]
    command += ["--port", str(port), "--log-level", "warning"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        server = _Server(f"http://127.0.0.1:{port}", process)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                try:
                    server.traffic()
                    break
                except OSError:  # not listening yet
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"seqlstm serve did not start: {log.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.2)
            yield server
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _settings(
    server: _Server, task: str, bodies: list[dict], words: list[int], quick: bool
) -> dict:
    """The load at each number of clients: rates, latencies, errors, batch size, memory."""
    results: dict = {f"{task}_server_rss_mib_before": server.rss_mib()}
    _load(server.url, task, bodies[:WARMUP_REQUESTS], words, clients=1)
    for clients in CLIENTS:
        count = QUICK_REQUESTS if quick else REQUESTS[task][clients]
        load_before = os.getloadavg()[0]
        requests_before, calls_before = server.traffic()
        measured = _load(server.url, task, _cycled(bodies, count), _cycled(words, count), clients)
        requests_after, calls_after = server.traffic()
        measured["mean_batch_requests"] = round(
            (requests_after - requests_before) / max(calls_after - calls_before, 1), 2
        )
        measured["load_average_before"] = round(load_before, 2)
        measured["server_rss_mib_after"] = server.rss_mib()
        results.update({f"{task}_clients{clients}_{k}": v for k, v in measured.items()})
    return results


def _memory(server: _Server, bodies: list[dict], quick: bool) -> dict:
    """The server's RSS after every MEMORY_SAMPLE_EVERY of MEMORY_REQUESTS tagger requests."""
    total = QUICK_MEMORY_REQUESTS if quick else MEMORY_REQUESTS
    every = QUICK_MEMORY_SAMPLE_EVERY if quick else MEMORY_SAMPLE_EVERY
    requests = _cycled(bodies, total)
    rss, errors, start = [], 0, time.perf_counter()
    for first in range(0, total, every):
        part = requests[first : first + every]
        measured = _load(server.url, "tag", part, [0] * len(part), MEMORY_CLIENTS, cap_s=None)
        errors += measured["errors"]
        rss.append(server.rss_mib())
    growth = round(rss[-1] - rss[0], 1)
    return {
        "memory_requests": total,
        "memory_clients": MEMORY_CLIENTS,
        "memory_wall_s": round(time.perf_counter() - start, 1),
        "memory_errors": errors,
        f"memory_rss_mib_every_{every}": rss,
        "memory_growth_mib": growth,
        "memory_bound_mib": MEMORY_BOUND_MIB,
        "memory_growth_within_bound": growth <= MEMORY_BOUND_MIB,
    }


def _load(
    url: str,
    task: str,
    bodies: list[dict],
    words: list[int],
    clients: int,
    cap_s: float | None = SETTING_TIME_CAP_S,
) -> dict:
    """Send ``bodies`` to POST /task from ``clients`` concurrent clients (stopping at ``cap_s``
    seconds); requests/s, words/s, p50/p99 latency and errors.

    Each client is a thread with one keep-alive connection (http.client), sending its next
    request when the previous one is answered. Threads and the standard library's client,
    not httpx's asyncio client: on this machine httpx spent 1.4 to 2.8 ms of CPU per request
    at 8 to 32 connections, http.client 0.13 ms, and the clients share the server's two
    cores, so a heavier client would measure itself.
    """
    payloads = [json.dumps(body).encode() for body in bodies]  # not the server's work
    address = urllib.parse.urlsplit(url)
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"next": 0, "errors": 0, "words": 0}
    start = time.perf_counter()
    deadline = None if cap_s is None else start + cap_s

    def client() -> None:
        connection = http.client.HTTPConnection(
            address.hostname, address.port, timeout=REQUEST_TIMEOUT_S
        )
        try:
            while True:
                with lock:
                    index = counts["next"]
                    if index >= len(payloads) or (deadline and time.perf_counter() > deadline):
                        return
                    counts["next"] += 1
                sent = time.perf_counter()
                try:
                    connection.request("POST", f"/{task}", payloads[index], JSON_HEADERS)
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()  # http.client reconnects on the next request
                elapsed = time.perf_counter() - sent
                with lock:
                    latencies.append(elapsed)
                    if ok:
                        counts["words"] += words[index]
                    else:
                        counts["errors"] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    milliseconds = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": counts["errors"],
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "words_per_s": round(counts["words"] / wall, 1),
        "latency_p50_ms": round(float(np.percentile(milliseconds, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(milliseconds, 99)), 1),
    }


def _cycled(items: list, count: int) -> list:
    """The first ``count`` items of ``items`` repeated."""
    return [items[i % len(items)] for i in range(count)]


def _model_dir(env: str, default: Path) -> Path:
    directory = Path(os.environ[env]) if os.environ.get(env) else default
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory}: no such model directory (set ${env} to a trained model's directory)"
        )
    return directory


def _tiny_models(rows: list[dict], sources: list[str], out: Path) -> tuple[Path, Path]:
    """A tiny random tagger and translator, saved into ``out``."""
    torch.manual_seed(0)
    texts = [" ".join(row["tokens"]) for row in rows[:300]]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=500, hard_vocab_limit=False)
    config = TaggerConfig(subword_dim=16, char_embedding_dim=8, char_filters=16, hidden_size=16)
    tagger = BiLSTMCRFTagger.build(config, tokenizer, rows[:64])
    tagger.save_pretrained(out / "tagger")
    tokenizer = SubwordTokenizer.train(sources[:300], vocab_size=500, hard_vocab_limit=False)
    sizes = dict(embedding_dim=32, encoder_hidden_size=16, decoder_hidden_size=32)
    translator = Seq2SeqLSTM(
        TranslatorConfig(**sizes, encoder_layers=1, decoder_layers=1), tokenizer
    )
    translator.save_pretrained(out / "translator")
    return out / "tagger", out / "translator"
