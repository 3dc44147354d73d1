"""Local speech: the eSpeak NG library bundled by the ``espeakng-loader`` wheel, via ctypes.

No system packages: the wheel carries ``libespeak-ng.so`` and its data directory. The library
keeps global state and is not thread-safe, so one lock serialises synthesis; it runs in a
worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from typing import Any, Final

import espeakng_loader

from coursemesh.customgen.app.ports import Pcm, SpeechError
from coursemesh.customgen.domain.intake import Voice

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_CHARS_UTF8: Final = 1
_RATE: Final = 1  # espeakRATE (words per minute)
_PITCH: Final = 3  # espeakPITCH (0-100)
# Slow, low and even: a hypnotherapy voice, not a screen reader.
_VOICES: Final[dict[Voice, tuple[bytes, int, int]]] = {
    "calm_female": (b"en-us+f3", 140, 40),
    "calm_male": (b"en-us+m3", 135, 30),
    "neutral": (b"en-us", 145, 45),
}

_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The process-wide eSpeak NG instance."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0))
        if self.sample_rate <= 0:
            raise SpeechError("eSpeak NG failed to initialise")
        self._chunks: list[bytes] = []
        # Keep a reference: ctypes would otherwise free the trampoline under the library.
        self._callback: Any = _Callback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self._lock = threading.Lock()

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = keep going

    def synthesize(self, text: str, voice: Voice) -> Pcm:
        name, rate, pitch = _VOICES[voice]
        encoded = text.encode()
        with self._lock:
            self._chunks = []
            if self._lib.espeak_SetVoiceByName(name) != 0:
                raise SpeechError(f"eSpeak NG has no voice {name!r}")
            self._lib.espeak_SetParameter(_RATE, rate, 0)
            self._lib.espeak_SetParameter(_PITCH, pitch, 0)
            status = self._lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, 0, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            samples = b"".join(self._chunks)
            self._chunks = []
        if status != 0 or not samples:
            raise SpeechError(f"eSpeak NG synthesis failed (status {status})")
        return Pcm(samples, self.sample_rate)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


class EspeakSynthesizer:
    """``SpeechSynthesizer`` on the bundled eSpeak NG."""

    async def synthesize(self, text: str, voice: Voice) -> Pcm:
        return await asyncio.to_thread(lambda: _get_engine().synthesize(text, voice))
