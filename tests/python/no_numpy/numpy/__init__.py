# Put first on PYTHONPATH by the python.test_model_without_numpy test: numpy then cannot be
# imported, and the package must fall back to plain lists.
raise ImportError("numpy is hidden for this test run")
