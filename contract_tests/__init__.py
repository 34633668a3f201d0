"""The contract suite: tests generated from the kit's schemas and catalog that check any server
claiming to be DashScope: the embedded fake by default, the real endpoints (or another fake)
when DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point at them.

    pytest contract_tests                 # or: dashscope-contract run [options]
"""

import importlib.util

INSTALL_HINT = "pip install 'dashscope-image-kit[contract]'"
# What the suite needs beyond the kit itself: the [contract] extra. A plain install runs the fake,
# the admin client and the pytest plugin without them.
NEEDS = ("pytest", "hypothesis", "hypothesis_jsonschema")


def missing_dependencies() -> str | None:
    """One line saying what to install when the [contract] extra is missing, else None."""
    missing = []
    for name in NEEDS:
        try:  # found, not imported: importing Hypothesis while pytest loads a conftest warns
            found = importlib.util.find_spec(name) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(name.replace("_", "-"))
    return f"the contract suite needs {', '.join(missing)}: {INSTALL_HINT}" if missing else None
