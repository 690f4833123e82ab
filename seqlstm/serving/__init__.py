"""seqlstm.serving: the models over HTTP, JSON in and out (``seqlstm serve``).

The stack is FastAPI on uvicorn, installed with the optional extra ``seqlstm[serve]``
(``pip install "seqlstm[serve]"``), not a hand-written HTTP server:

- FastAPI validates each request against a pydantic model before the model sees it, answers
  a bad one with 422 and errors naming the field and what was expected, and derives the
  OpenAPI schema from the same models, so the limits and the documentation cannot drift apart;
- uvicorn is a production-grade asyncio HTTP/1.1 server (keep-alive, pipelining, graceful
  shutdown on SIGINT/SIGTERM) that these concerns would otherwise have to be rewritten for;
- both are pure Python on top of pydantic and starlette, and small (a few MB), and the models
  never need them: they stay an extra, and ``import seqlstm`` and the rest of the
  ``seqlstm`` command run without them.

Modules, one concept each: `limits` (what a request may hold), `schemas` (the JSON of requests
and responses), `request_gate` (body size and type, before FastAPI reads a body), `batching`
(concurrent requests grouped into one model call, in one worker thread per model),
`served_models` (what one batched call of each task is), `app` (`create_app`: routes, errors,
health). The serving layer imports seqlstm.tasks; nothing in the library imports it.
"""

from seqlstm.serving.app import create_app
from seqlstm.serving.limits import ServingLimits

__all__ = ["ServingLimits", "create_app"]
