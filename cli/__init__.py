"""The `preau` command: parses arguments, calls one function of `preau.node`, reports errors."""
