"""The multi-turn path: conversations with a stateful environment, and their checks against real state."""
