"""The contract suite: tests generated from the kit's schemas and catalog that check any server
claiming to be DashScope: the embedded fake by default, the real endpoints (or another fake)
when DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point at them.

    pytest contract_tests                 # or: dashscope-contract run [options]
"""
