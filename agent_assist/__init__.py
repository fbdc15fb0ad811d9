"""The agent-assist command, its settings and the process that serves calls."""
