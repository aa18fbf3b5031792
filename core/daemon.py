"""Running a daemon's main coroutine: SIGTERM and SIGINT cancel it, and cleanup runs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


def run(main: Callable[[], Awaitable[object]]) -> None:
    """`asyncio.run(main())`, where SIGTERM/SIGINT cancel the main task so its cleanup (finally, exit stacks) runs."""

    async def wrapper() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
        try:
            await main()
        except asyncio.CancelledError:
            pass

    asyncio.run(wrapper())
