"""The benchmark: a balanced, reviewed test set (`bench build`, `bench review`) and the scorer
that reads any model's answers to it (`score`)."""
