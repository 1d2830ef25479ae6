"""Data: synthesis of the embedded study and contamination with digits."""
