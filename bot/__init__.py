"""guidebot's platform-neutral core: what the bot says and does."""
