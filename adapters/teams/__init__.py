"""Microsoft Teams: Bot Framework activities in, Adaptive Cards out."""
