"""One module per top-level command's flow: preflight checks, then the writes in their safe order.

Flows import the core and the adapters, never each other.
"""
