"""Smart-charging mathematics: charging profiles, composite schedules, load allocation.

Pure: no asyncio, no I/O, no clock reads (time is passed in). Nothing here knows
of `edge` or `drivers`.
"""
