"""Test bench: real sshd targets in containers (filled in by the harness work)."""
