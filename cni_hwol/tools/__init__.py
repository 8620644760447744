"""Operator commands: doctor, node-setup, offload-status (no CNI_COMMAND set)."""
