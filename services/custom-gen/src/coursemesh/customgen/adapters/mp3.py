"""MP3 encoding with the ``lameenc`` wheel (LAME, no system packages)."""

from __future__ import annotations

import asyncio

import lameenc

from coursemesh.customgen.app.ports import EncodedAudio, Pcm


class Mp3Encoder:
    def __init__(self, bitrate_kbps: int = 64) -> None:
        self.bitrate_kbps = bitrate_kbps

    def encode_sync(self, pcm: Pcm) -> EncodedAudio:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(self.bitrate_kbps)
        encoder.set_in_sample_rate(pcm.sample_rate)
        encoder.set_channels(1)
        encoder.set_quality(5)  # LAME "good": speech needs no slower search
        body = bytes(encoder.encode(pcm.samples) + encoder.flush())
        # Duration from the samples, not from the MP3 (whose frames pad the end).
        return EncodedAudio(body, pcm.duration_ms, "audio/mpeg", "mp3")

    async def encode(self, pcm: Pcm) -> EncodedAudio:
        return await asyncio.to_thread(self.encode_sync, pcm)
