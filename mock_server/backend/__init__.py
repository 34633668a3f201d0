"""The fake's backend verbs by family, each bound to one FakeDashScope (service.py), which holds
the state they share: generation, the task API, and files (results and uploads)."""
