"""The link model that paces an emulated push: the stand-in bytes go out for real, as slowly as the real
cache's bytes would cross the modeled link (`pdsim.core.emulation.links`).

One `SharedLink` per prefill node is its network port: pushes at once share its bandwidth evenly (each gets
bandwidth / n while n are in flight, re-read every `quantum`), after the link's latency. Emulated seconds are
slept `dilation` times longer, as the emulated runner's steps are. The decode side's port is not modeled.
"""

from __future__ import annotations

import asyncio

from pdsim.core.emulation.links import Link

_QUANTUM_SECONDS = 0.5e-3  # emulated: how often a transfer re-reads how many share the link


class SharedLink:
    def __init__(self, link: Link, dilation: float) -> None:
        self.link = link
        self.dilation = dilation
        self._active = 0

    async def carry(self, nbytes: float) -> float:
        """Wait as long as `nbytes` take on the link now; returns the emulated seconds it took."""
        self._active += 1
        seconds = self.link.latency.value
        try:
            await asyncio.sleep(seconds * self.dilation)
            left = float(nbytes)
            while True:
                share = self.link.bandwidth.value / self._active
                if left <= share * _QUANTUM_SECONDS:  # the last stretch: ends the transfer (no float residue)
                    await asyncio.sleep(left / share * self.dilation)
                    return seconds + left / share
                await asyncio.sleep(_QUANTUM_SECONDS * self.dilation)
                left -= share * _QUANTUM_SECONDS
                seconds += _QUANTUM_SECONDS
        finally:
            self._active -= 1
