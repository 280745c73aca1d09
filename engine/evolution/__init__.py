"""The evolution engine: reflect, propose, validate, route, announce, watch."""
