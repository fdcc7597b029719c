"""Platform edges: Slack, Teams and the console, converting to and from the core."""
