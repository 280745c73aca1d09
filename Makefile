# Shortcuts; ./dev does the work (it needs nothing but Python 3.11 and bash).
.PHONY: chat test setup bench
chat:
	./dev chat
test:
	./dev test
setup:
	./dev setup
bench:  # ingress (Slack, Telegram), pipeline and recovery on both stacks: one table
	.venv/bin/python bench/all.py
