"""The thin HTTP layer of the faked API: parse the request, call a FakeDashScope verb, render."""
