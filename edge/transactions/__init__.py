"""Transactions between their messages, and what their meter values say.

- `active`: the index of ongoing transactions (by id and by id tag).
- `meter_values`: reading sampledValue lists: the energy register, currents per phase.
"""
