"""Decoded audio a bounded window at a time, streamed through an ffmpeg pipe.

Speech recognition holds one window (REELSEARCH["ASR_WINDOW_SECONDS"], 10 min by default)
of 16 kHz mono float32 samples, never the whole track: two hours of audio would be 460 MB
as one array, and several times that while it is decoded and filtered. `WindowReader`
hands out windows on the file's timeline (`Window.offset` is the time of its first
sample); the caller says where the next window starts (`advance(to)`), at most the end of
the current one, so a word cut by a window's end can be read again whole in the next.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import ffmpeg
import numpy as np

from .errors import PermanentError, tool_detail
from .media import open_graph

SAMPLE_BYTES = 2  # signed 16-bit


class AudioStream:
    """A file's audio as mono float32 samples at `rate`, read from an ffmpeg graph's pipe."""

    def __init__(self, path: Path, rate: int) -> None:
        self.path, self.rate = path, rate
        self.proc: subprocess.Popen | None = None
        self.stderr_path: Path | None = None

    def __enter__(self) -> AudioStream:
        graph = ffmpeg.input(str(self.path)).output("pipe:", vn=None, format="s16le", ac=1,
                                                     ar=self.rate)
        self.proc = open_graph(graph)
        return self

    def read(self, count: int) -> np.ndarray:
        """Return the next `count` samples (fewer at the end of the audio)."""
        assert self.proc is not None and self.proc.stdout is not None, "use `with AudioStream`"
        wanted = count * SAMPLE_BYTES
        data = bytearray()
        while len(data) < wanted:
            block = self.proc.stdout.read(wanted - len(data))
            if not block:
                break
            data += block
        usable = len(data) - len(data) % SAMPLE_BYTES
        return np.frombuffer(bytes(data[:usable]), dtype="<i2").astype(np.float32) / 32768.0

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if kind is not None:
            proc.kill()
        _, stderr = proc.communicate(timeout=60)
        if kind is None and proc.returncode != 0:
            detail = tool_detail(stderr.decode(errors="replace"), self.path)
            raise PermanentError(f"The extracted audio could not be read back ({detail}): "
                                 "reprocess the video.")


@dataclass(frozen=True)
class Window:
    """A stretch of audio: its samples and where the first one lies on the timeline."""

    offset: float
    samples: np.ndarray
    rate: int
    last: bool  # no audio follows it

    @property
    def end(self) -> float:
        """Return the time just after the window's last sample."""
        return self.offset + len(self.samples) / self.rate


class WindowReader:
    """Hand out windows of at most `seconds` of a stream, the next from where the caller says."""

    def __init__(self, stream: AudioStream, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("a window must be longer than 0 s")
        self.stream, self.size = stream, max(1, int(seconds * stream.rate))
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0  # samples before the buffer
        self._ended = False

    def window(self) -> Window:
        """Return the current window, filled up to its size from the stream."""
        missing = self.size - len(self._buffer)
        if missing > 0 and not self._ended:
            more = self.stream.read(missing)
            self._ended = len(more) < missing
            self._buffer = np.concatenate([self._buffer, more]) if len(self._buffer) else more
        return Window(self._offset / self.stream.rate, self._buffer, self.stream.rate,
                      self._ended)

    def advance(self, to: float) -> None:
        """Drop the audio before `to` seconds (at least one sample, at most the window)."""
        cut = round(to * self.stream.rate) - self._offset
        cut = min(max(cut, 1), len(self._buffer))
        self._buffer = self._buffer[cut:].copy()
        self._offset += cut
