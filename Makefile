# Shortcuts; ./dev does the work (it needs nothing but Python 3.11 and bash).
.PHONY: chat test setup bench
chat:
	./dev chat
test:
	./dev test
setup:
	./dev setup
bench:
	.venv/bin/python bench/pipeline.py
