"""CS182 Fall 2023 "Transformer for Summarization" parts I and II: staff reference."""
