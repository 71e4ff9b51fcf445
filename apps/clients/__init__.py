"""The client-compatibility harness: vLLM's benchmark, GuideLLM, AIPerf and the OpenAI SDK against a pdsim cluster
(`make clients`); each tool in its own cached virtual environment. Not part of the test suite."""
