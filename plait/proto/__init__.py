"""The `jina` wire protocol (see PROTOCOL.md facts); generated modules come from `make proto`."""
