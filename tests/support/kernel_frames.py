"""What goes between a JupyterLab page and its kernels, read off the page's websockets.

``KernelTraffic(page)`` (made before the notebook opens, so it sees the kernel's websocket)
decodes each frame, JSON or JupyterLab's binary ``v1.kernel.websocket.jupyter.org`` framing,
into a :class:`Frame`: its direction, channel, message type and, for a Bokeh view's comm
messages, what the page sent (``jsevent`` kind, attribute, UI event name).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "KernelTraffic", "decode"]


@dataclass(frozen=True)
class Frame:
    sent: bool  # page -> kernel
    channel: str
    msg_type: str
    jsevent: str = ""  # what a Bokeh view sent: ColumnsStreamed, ModelChanged, MessageSent
    attr: str = ""  # of a ModelChanged
    event: str = ""  # of a MessageSent: rangesupdate, reset, ...


def decode(payload: str | bytes, sent: bool) -> Frame | None:
    """One websocket frame as a :class:`Frame` (None for what is not a kernel message)."""
    if isinstance(payload, str):
        message = json.loads(payload)
        channel, header, content = message.get("channel"), message.get("header"), message.get("content")
    else:
        count = struct.unpack_from("<Q", payload, 0)[0]
        offsets = [struct.unpack_from("<Q", payload, 8 * (i + 1))[0] for i in range(count)] + [len(payload)]
        parts = [payload[offsets[i]:offsets[i + 1]] for i in range(count)]
        if len(parts) < 5:
            return None
        channel, header, content = parts[0].decode(), json.loads(parts[1]), json.loads(parts[4])
    if not isinstance(header, dict) or not isinstance(content, dict):
        return None
    inner = (content.get("data") or {}).get("content") if isinstance(content.get("data"), dict) else None
    inner = inner if isinstance(inner, dict) else {}
    if inner.get("event") != "jsevent":
        return Frame(sent, str(channel), str(header.get("msg_type")))
    msg_data = inner.get("msg_data") if isinstance(inner.get("msg_data"), dict) else {}
    return Frame(sent, str(channel), str(header.get("msg_type")), jsevent=str(inner.get("kind", "")),
                 attr=str(inner.get("attr", "")), event=str(msg_data.get("name", "")))


class KernelTraffic:
    """Every kernel message of ``page`` from now on, in :attr:`frames` (see the module doc)."""

    def __init__(self, page: Any) -> None:
        self.frames: list[Frame] = []
        page.on("websocket", self._watch)

    def _watch(self, socket: Any) -> None:
        if "/api/kernels/" not in socket.url:
            return
        socket.on("framesent", lambda payload: self._add(payload, True))
        socket.on("framereceived", lambda payload: self._add(payload, False))

    def _add(self, payload: str | bytes, sent: bool) -> None:
        try:
            frame = decode(payload, sent)
        except (ValueError, struct.error, UnicodeDecodeError):
            frame = None
        if frame is not None:
            self.frames.append(frame)

    def mark(self) -> int:
        """A point in the traffic, for :meth:`since`."""
        return len(self.frames)

    def since(self, mark: int) -> list[Frame]:
        return list(self.frames[mark:])

    @staticmethod
    def jsevents(frames: list[Frame]) -> list[Frame]:
        """What Bokeh views sent the kernel among ``frames``."""
        return [f for f in frames if f.sent and f.jsevent]
