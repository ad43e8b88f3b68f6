"""The `mt2kd` command line: one module per subcommand in `commands/`, the parser in `main`."""
