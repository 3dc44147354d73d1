"""Hosted speech over HTTP.

Contract: ``POST <TTS_HTTP_URL>`` with JSON ``{"text": …, "voice": …}`` (and ``Authorization:
Bearer <TTS_HTTP_API_KEY>`` when set) answers ``200`` with ``audio/wav``: 16-bit PCM, mono.
"""

from __future__ import annotations

import io
import wave

import httpx

from coursemesh.customgen.app.ports import Pcm, SpeechError
from coursemesh.customgen.domain.intake import Voice


class HttpSpeechSynthesizer:
    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 120.0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    async def synthesize(self, text: str, voice: Voice) -> Pcm:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url, json={"text": text, "voice": voice}, headers=self.headers
                )
        except httpx.HTTPError as exc:
            raise SpeechError(f"TTS request failed: {exc!r}") from exc
        if response.status_code != 200:
            raise SpeechError(f"TTS answered {response.status_code}")
        try:
            with wave.open(io.BytesIO(response.content), "rb") as wav:
                if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                    raise SpeechError("TTS must answer 16-bit mono WAV")
                return Pcm(wav.readframes(wav.getnframes()), wav.getframerate())
        except (wave.Error, EOFError) as exc:
            raise SpeechError(f"TTS answered an unreadable WAV: {exc}") from exc
