"""advisor: decides and explains (CLI, cost models, recommendation, report); never needs torch."""
