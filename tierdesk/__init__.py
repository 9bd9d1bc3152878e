"""tierdesk: support contracts for the helpdesk. The command line lives in `tierdesk.cli`."""
