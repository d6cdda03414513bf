"""One module per `hayase` subcommand; each exposes `command`."""
