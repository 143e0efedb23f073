"""The command line of the executor: click (and run's argparse) live here and nowhere below."""
