"""The scenarios: each starts its servers, measures ours against a baseline, and stops them."""
