"""The policy server's HTTP interface (FastAPI, served by uvicorn; ray_app.py serves the same routes on Ray).

    POST /                     Pensieve/Genet protocol, one player: the JSON report in, the next bitrate
    POST /pensieve/{name}      index out as plain text ("REFRESH" after the last chunk, which ends the
                               session); a report with lastRequest 0 starts the player's session
    POST /sessions             open a session: {"session": id}; 503 at the limit of open sessions
    POST /sessions/{id}/decide the report in, {"quality", "decided_by", "done", "processing_ms"} out
    DELETE /sessions/{id}      close it (idle sessions also expire)
    GET /stats, GET /health

Every answer carries the header X-Processing-Ms: the time from the request reaching its handler to the
answer being ready. Bad input gets a 4xx whose body is {"error": "<one line>"}; other sessions are unaffected.
"""
import asyncio
import json
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse

from .reports import ReportError
from .service import PolicyService

DEFAULT_PLAYER = "default"


async def read_json(request: Request):
    body = await request.body()
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ReportError(f"the body is not JSON ({error.msg} at character {error.pos})", status=400) from None
    except UnicodeDecodeError:
        raise ReportError("the body is not JSON (not UTF-8 text)", status=400) from None


def create_app(service: PolicyService, background=None) -> FastAPI:
    """`background`: the coroutine functions to run while the app serves (the local LLM batcher's loop)."""

    @asynccontextmanager
    async def lifespan(app):
        tasks = [asyncio.create_task(job()) for job in (background or [])]
        tasks.append(asyncio.create_task(expire_idle_sessions(service)))
        yield
        if service.llm is not None:  # graceful shutdown: what is queued is still decided
            await service.llm.drain()
        for task in tasks:
            task.cancel()
        if service.llm is not None:
            service.llm.shutdown()

    app = FastAPI(title="Trailblazer ABR policy server", lifespan=lifespan)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])

    @app.exception_handler(ReportError)
    async def report_error(request, error: ReportError):
        headers = {"Retry-After": "1"} if error.status == 503 else None
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)

    @app.post("/sessions", status_code=201)
    async def open_session():
        return {"session": service.open_session()}

    @app.post("/sessions/{session_id}/decide")
    async def decide(session_id: str, request: Request):
        arrival = time.perf_counter()
        answer = await service.decide(session_id, await read_json(request))
        processing_ms = (time.perf_counter() - arrival) * 1000.0
        return JSONResponse({**answer, "processing_ms": processing_ms},
                            headers={"X-Processing-Ms": f"{processing_ms:.3f}"})

    @app.delete("/sessions/{session_id}")
    async def close_session(session_id: str):
        service.close_session(session_id)
        return {"closed": session_id}

    @app.post("/")
    @app.post("/pensieve/{player}")
    async def pensieve(request: Request, player: str = DEFAULT_PLAYER):
        arrival = time.perf_counter()
        payload = await read_json(request)
        session_id = f"pensieve:{player}"
        if isinstance(payload, dict) and payload.get("lastRequest") == 0:
            service.open_session(session_id)
        answer = await service.decide(session_id, payload)
        if answer["done"]:
            service.close_session(session_id)
        processing_ms = (time.perf_counter() - arrival) * 1000.0
        return PlainTextResponse("REFRESH" if answer["done"] else str(answer["quality"]),
                                 headers={"X-Processing-Ms": f"{processing_ms:.3f}"})

    @app.get("/stats")
    async def stats():
        return service.stats()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    return app


async def expire_idle_sessions(service: PolicyService) -> None:
    while True:
        await asyncio.sleep(min(5.0, service.limits.session_idle_s / 4))
        service.expire_idle()
