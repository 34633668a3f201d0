"""The fake's rules, free of HTTP: the task state machine. Pure functions over an injected time."""
