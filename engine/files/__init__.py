"""Files users share with the agent and files its code makes: checks and limits
(`limits.py`), per-tenant storage on disk with one row each (`store.py`), what the model is
told about them (`context.py`) and neutralising the CSV files we post (`safety.py`).
See docs/ARCHITECTURE.md, "Files"."""
