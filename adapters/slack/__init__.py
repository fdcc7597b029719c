"""Slack: Events API and interactivity payloads in, Block Kit out, over HTTP or Socket Mode."""
