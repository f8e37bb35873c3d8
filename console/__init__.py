"""The operations console: the flow from a write to an email, topics, tables, dead letters,
notifications and workers, in the browser (`python -m console`, port 3006) and as commands
(`python -m console deadletters list`)."""
