"""The one HTTP client of the tools (benchmarks/http_client.py): the exact request bytes,
keep-alive reuse, Content-Length framing, and unreadable or cut answers as errors, for
the replay's pool (``Client``) and the load generator (``loadgen``) alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from benchmarks import loadgen
from benchmarks.http_client import Client, ProtocolError, RequestError, Target, connect, encode

Answer = Callable[[bytes], bytes]  # request head -> the raw answer


async def _serve(answer: Answer, keep_alive: bool) -> tuple[asyncio.Server, list[int]]:
    """A server that reads request heads and writes ``answer(head)``, then hangs up unless
    ``keep_alive``; counts connections (``opened[0]``)."""
    opened = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                writer.write(answer(head))
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, opened


def _run(
    answer: Answer, scenario: Callable[[int], Awaitable[object]], keep_alive: bool = True
) -> tuple[object, int]:
    """``scenario(port)`` against a server answering ``answer``: its result, and how many
    connections the server saw."""

    async def main() -> tuple[object, int]:
        server, opened = await _serve(answer, keep_alive)
        try:
            result = await asyncio.wait_for(scenario(server.sockets[0].getsockname()[1]), 10)
        finally:
            server.close()
        return result, opened[0]

    return asyncio.run(main())


def ok(body: bytes = b'{"status":"ready"}', extra: bytes = b"") -> Answer:
    return lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_requests_are_encoded_as_both_callers_sent_them() -> None:
    assert loadgen.encode_requests("127.0.0.1", 8000, "/v1/predict", [b"{}"]) == [
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ]
    assert encode("GET", "/readyz", "[::1]:80", headers="X-API-Key: k\r\n", framed=False) == (
        b"GET /readyz HTTP/1.1\r\nHost: [::1]:80\r\nX-API-Key: k\r\n\r\n"
    )


def test_a_kept_alive_connection_serves_every_request_and_reads_the_body() -> None:
    async def scenario(port: int) -> list[tuple[int, bytes]]:
        client = Client(Target("127.0.0.1", port), 4, 2.0, api_key="k")
        answers = [await client.request("POST", "/v1/predict", b"{}") for _ in range(5)]
        client.close()
        return [(a.status, a.body) for a in answers]

    answers, opened = _run(ok(), scenario)
    assert answers == [(200, b'{"status":"ready"}')] * 5 and opened == 1


def test_an_answer_split_across_reads_is_framed_by_content_length() -> None:
    body = b"x" * 100_000

    async def scenario(port: int) -> list[int]:
        conn = await connect("127.0.0.1", port)
        raw = loadgen.encode_requests("127.0.0.1", port, "/", [b""], method="GET")[0]
        sizes = [len((await conn.exchange(raw)).body) for _ in range(3)]
        conn.close()
        return sizes

    sizes, opened = _run(ok(body), scenario)
    assert sizes == [100_000] * 3 and opened == 1


def test_connection_close_is_honoured_by_the_pool() -> None:
    async def scenario(port: int) -> int:
        client = Client(Target("127.0.0.1", port), 4, 2.0)
        for _ in range(3):
            assert (await client.request("GET", "/readyz")).status == 200
        client.close()
        return client.replaced_idle

    replaced, opened = _run(ok(extra=b"Connection: close\r\n"), scenario)
    assert replaced == 0 and opened == 3  # a new connection each time, none counted as idle


@pytest.mark.parametrize(
    ("answer", "kind", "detail"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "protocol",
         "Transfer-Encoding chunked"),
        (b"garbage\r\n\r\n", "protocol", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "protocol", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\n\r\n{}", "protocol", "without Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "connection", "closed"),  # cut
    ],
)  # fmt: skip
def test_unreadable_or_cut_answers_are_errors(answer: bytes, kind: str, detail: str) -> None:
    async def scenario(port: int) -> RequestError:
        client = Client(Target("127.0.0.1", port), 1, 2.0)
        with pytest.raises(RequestError) as failed:
            await client.request("GET", "/readyz")
        client.close()
        return failed.value

    error, _ = _run(lambda _: answer, scenario, keep_alive=False)
    assert isinstance(error, RequestError) and error.kind == kind and detail in str(error)


def test_the_load_generator_counts_an_unreadable_answer_as_an_error() -> None:
    async def scenario(port: int) -> loadgen.Run:
        requests = loadgen.encode_requests("127.0.0.1", port, "/", [b""], method="GET")
        return await loadgen.closed_loop("127.0.0.1", port, requests, 2, 0.2)

    run, _ = _run(lambda _: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", scenario)
    assert isinstance(run, loadgen.Run) and run.count == 0 and run.errors == 2


def test_a_protocol_error_is_a_broken_connection_to_the_load_generator() -> None:
    assert issubclass(ProtocolError, ConnectionError)
