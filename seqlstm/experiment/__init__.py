"""What every recipe shares: its command line, the run skeleton and the results files."""
