"""A live tail client for tests/tail_ws.rs, on the `websockets` library.

Usage: tail_ws_client.py URL [--api-key KEY [--key-as-subprotocol]] [--stall] [--rcvbuf BYTES]

Prints one JSON line per event on stdout:
  {"event": "connected", "subprotocol": P}    the upgrade succeeded (P: the one chosen)
  {"event": "rejected", "status": S, "body": B} the server answered S instead
  {"event": "frame", "frame": {...}}          a text frame from the server
  {"event": "closed", "code": C, "reason": R} the connection closed
With --api-key the key is sent as `Authorization: Bearer KEY` (a URL may carry it
as `?token=` instead); with --key-as-subprotocol too, it is offered as the
subprotocol `logpool.key.KEY` next to `logpool.tail.v1`, as the console does. With --stall the client takes no frame until a line arrives on stdin (the socket
keeps a small receive buffer, so the server soon cannot send more).
"""

import argparse
import asyncio
import json
import socket
import sys
import urllib.parse

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def wait_for_stdin_line():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--api-key")
    parser.add_argument("--key-as-subprotocol", action="store_true")
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--rcvbuf", type=int, default=0)
    args = parser.parse_args()

    url = urllib.parse.urlparse(args.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf:
        # Set before connecting so that the TCP window never grows past it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.connect((url.hostname, url.port))
    headers = {}
    subprotocols = None
    if args.api_key and args.key_as_subprotocol:
        subprotocols = ["logpool.tail.v1", f"logpool.key.{args.api_key}"]
    elif args.api_key:
        headers["Authorization"] = f"Bearer {args.api_key}"
    try:
        ws = await websockets.connect(
            args.url,
            additional_headers=headers,
            subprotocols=subprotocols,
            sock=sock,
            max_size=None,
            # Buffer few frames in the library either, when stalled.
            max_queue=4,
            open_timeout=10,
        )
    except InvalidStatus as error:
        response = error.response
        emit(
            {
                "event": "rejected",
                "status": response.status_code,
                "body": response.body.decode("utf-8", "replace"),
            }
        )
        return
    emit({"event": "connected", "subprotocol": ws.subprotocol})
    if args.stall:
        await wait_for_stdin_line()
        emit({"event": "resumed"})
    try:
        async for message in ws:
            emit({"event": "frame", "frame": json.loads(message)})
    except ConnectionClosed:
        pass
    close = ws.close_code, ws.close_reason
    emit({"event": "closed", "code": close[0], "reason": close[1]})


if __name__ == "__main__":
    asyncio.run(main())
