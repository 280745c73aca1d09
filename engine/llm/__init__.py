"""The LLM gateway (litellm) and the providers evobot registers with it."""

import os

# litellm downloads its price table at import time unless told not to (we have no network)
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
