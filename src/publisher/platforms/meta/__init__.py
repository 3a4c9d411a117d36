"""What Facebook and Instagram share of Meta's Graph API: its error codes (errors.py)."""
